from tests.http_receiver import committed, receiver  # noqa: F401
