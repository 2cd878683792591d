"""The rules detection starts with; operators change them in the admin."""

from django.db import migrations

DEFAULT_RULES = [
    {
        "name": "deposit pending",
        "item_kind": "deposit",
        "state": "pending",
        "after": 30,
        "unit": "minutes",
        "description": "The provider normally confirms a deposit within minutes.",
    },
    {
        "name": "withdrawal without payout",
        "item_kind": "withdrawal",
        "state": "requested",
        "after": 15,
        "unit": "minutes",
        "description": "A requested withdrawal gets its payout at once; a "
        "requested one has none (creating the payout moves it to processing).",
    },
    {
        "name": "payout never accepted",
        "item_kind": "payout",
        "state": "created",
        "after": 15,
        "unit": "minutes",
        "description": "Created but not accepted by the provider: submission "
        "failed or its answer was lost. A safe retry is the usual fix.",
    },
    {
        "name": "payout processing",
        "item_kind": "payout",
        "state": "processing",
        "after": 6,
        "unit": "hours",
        "description": "Accepted, but the provider's final webhook (paid or "
        "failed) has not come.",
    },
    {
        "name": "payout processing, late-webhook provider (example)",
        "item_kind": "payout",
        "state": "processing",
        "provider": "example-late-provider",
        "after": 3,
        "unit": "days",
        "is_active": False,
        "description": "How to give a provider whose final webhook is known to "
        "come days late its own limit: set its code and activate. While "
        "active it replaces 'payout processing' for that provider only.",
    },
    {
        "name": "webhook failed to apply",
        "item_kind": "webhook_delivery",
        "state": "failed",
        "after": 30,
        "unit": "minutes",
        "description": "A delivery failed on our side and no later delivery "
        "of the same event was applied.",
    },
]


def add_rules(apps, schema_editor):
    StuckRule = apps.get_model("stuck", "StuckRule")
    for rule in DEFAULT_RULES:
        StuckRule.objects.get_or_create(name=rule["name"], defaults=rule)


def remove_rules(apps, schema_editor):
    StuckRule = apps.get_model("stuck", "StuckRule")
    StuckRule.objects.filter(name__in=[r["name"] for r in DEFAULT_RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("stuck", "0001_initial")]

    operations = [migrations.RunPython(add_rules, remove_rules)]
