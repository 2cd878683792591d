"""The scheduled jobs of finance (see jobs/registry.py)."""

from datetime import timedelta

from jobs.registry import job_register

job_register(
    name="payout_sweep",
    func="finance.services.payouts.payout_sweep",
    description="Starts, resubmits and polls payouts that lost their task "
    "or their webhook.",
    period=timedelta(minutes=1),
    grace=timedelta(minutes=10),
    max_run_time=timedelta(minutes=2),
    # Payouts keep their own retries; a few failed sweeps in a row are
    # worth a message, not a page.
    alert_after=5,
    route="chat",
    severity="warning",
)
