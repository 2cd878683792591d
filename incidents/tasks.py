from celery import shared_task

from incidents.services.paging import pages_advance


@shared_task(name="incidents.advance_pages")
def advance_pages() -> None:
    # Queued on commit when a page starts or a test step is all answered, so
    # the first step goes out now rather than at the next tick; the tick
    # (the incidents_tick job) is the schedule and the safety net.
    pages_advance()
