"""Run one piece of work on several threads at once, each on its own connection."""

import threading

from django.db import connection


def run_concurrently(target, args_list):
    """Call ``target(*args)`` for each ``args`` on its own thread, all at once.

    Every thread waits at a barrier so the calls really overlap, and closes
    its database connection when done. Returns ``(results, errors)``, each in
    completion order.
    """
    results, errors = [], []
    start = threading.Barrier(len(args_list))

    def run(*args):
        try:
            start.wait()
            results.append(target(*args))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=args) for args in args_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors
