"""Keep the log lines one job run writes, to store them with the run."""

import logging
import threading

from django.conf import settings

# A runaway job must not fill memory or the JobRun table.
MAX_LINES = 2000
MAX_CHARS = 200_000


def _formatter() -> logging.Formatter:
    # The console's own formatter, so stored lines are rendered and redacted
    # exactly as the process logs them.
    config = dict(settings.LOGGING["formatters"]["structured"])
    factory = config.pop("()")
    return factory(**config)


class RunLogCapture(logging.Handler):
    """Collects records emitted by the thread that runs the job."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.thread_id = threading.get_ident()
        self.lines: list[str] = []
        self.chars = 0
        self.dropped = 0
        self.setFormatter(_formatter())

    def emit(self, record):
        if record.thread != self.thread_id:
            return
        if len(self.lines) >= MAX_LINES or self.chars >= MAX_CHARS:
            self.dropped += 1
            return
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.lines.append(line)
        self.chars += len(line)

    def __enter__(self):
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeHandler(self)

    def text(self) -> str:
        tail = [f"[{self.dropped} more lines not kept]"] if self.dropped else []
        return "\n".join(self.lines + tail)
