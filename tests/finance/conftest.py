from tests.sandbox.fixtures import celery_eager, sandbox

__all__ = ["celery_eager", "sandbox"]
