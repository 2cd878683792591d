"""opsadmin.settings, plus the alert settings this branch does not define yet.

SLACK_WEBHOOK_URL and PAGERDUTY_ROUTING_KEY come with the alerts app (jobs
branch). Until it is merged the inventory rightly reads them as missing, so
the check --deploy tests read them here; once merged, the real settings
win and this module only re-exports them.
"""

from opsadmin.env import env_secret
from opsadmin.settings import *  # noqa: F403

if "SLACK_WEBHOOK_URL" not in globals():
    SLACK_WEBHOOK_URL = env_secret("SLACK_WEBHOOK_URL", "")
if "PAGERDUTY_ROUTING_KEY" not in globals():
    PAGERDUTY_ROUTING_KEY = env_secret("PAGERDUTY_ROUTING_KEY", "")
