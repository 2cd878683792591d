"""What the jobs app tells other apps about runs.

``job_failed`` is sent once a failed run has alerted, that is when its
failure streak reached the job's ``alert_after``, with the keyword
arguments ``job`` (the registry's ``Job``, its ``severity`` included),
``run`` (the ``JobRun``), ``consecutive_failures`` and ``muted`` (True when
a maintenance window held the alert). The incidents app declares an
incident from it. Receivers are called with ``send_robust``: one that
raises is logged and never hides the run or stops the others.
"""

from django.dispatch import Signal

job_failed = Signal()
