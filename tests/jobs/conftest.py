from datetime import timedelta

import pytest

from jobs import registry


@pytest.fixture
def register(monkeypatch):
    """Declare jobs for one test only, in an otherwise empty registry."""
    monkeypatch.setattr(registry, "_JOBS", {})

    def declare(name="nightly", func=lambda: {}, **fields):
        values = {
            "period": timedelta(hours=1),
            "grace": timedelta(minutes=10),
            "max_run_time": timedelta(minutes=5),
        }
        values.update(fields)
        return registry.job_register(name=name, func=func, **values)

    return declare
