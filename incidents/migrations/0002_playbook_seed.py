"""The playbook as first agreed: severities, rotations (empty: staffed in the
admin), the escalation matrix, rollback authority and the tabletop scenarios.

docs/incident-playbook.md is generated from this data
(``manage.py incident_playbook``); a test fails when the two disagree.
"""

import datetime

from django.db import migrations

FIRST_MONDAY = datetime.date(2026, 1, 5)

SEVERITIES = [
    {
        "level": 1,
        "name": "Sev1",
        "title": "Critical",
        "meaning": (
            "Money cannot move or balances are wrong for many customers: "
            "deposits or payouts fail platform-wide, the ledger is out of "
            "balance, the payment provider is down with no way around it, or "
            "customer data or live credentials are exposed."
        ),
        "examples": (
            "The provider API rejects every payout; reconciliation finds "
            "wallet balances that do not match the ledger; a live API key is "
            "found in a public repository."
        ),
        "response_minutes": 5,
        "update_minutes": 30,
        "who_must_be_told": (
            "The on-call Incident commander (commands). The Head of "
            "Engineering and the Head of Operations. The Compliance officer, "
            "who decides on telling the regulator and partner banks. The "
            "Customer support lead, who owns what customers hear."
        ),
        "pages_at_night": True,
        "escalation_repeats": 2,
    },
    {
        "level": 2,
        "name": "Sev2",
        "title": "Major",
        "meaning": (
            "A money flow is degraded for a group of customers but funds are "
            "not lost: payouts at one provider or in one currency late past "
            "the 24-hour SLA, provider webhooks failing to apply, a "
            "reconciliation mismatch under investigation."
        ),
        "examples": (
            "Payouts stuck in processing for hours at one provider; deposit "
            "webhooks rejected after a signing-secret rotation; stuck cases "
            "above the alert threshold."
        ),
        "response_minutes": 15,
        "update_minutes": 60,
        "who_must_be_told": (
            "The on-call Incident commander. The Head of Operations. The "
            "Customer support lead. The Compliance officer once customer "
            "funds are late past the SLA."
        ),
        "pages_at_night": True,
        "escalation_repeats": 1,
    },
    {
        "level": 3,
        "name": "Sev3",
        "title": "Minor",
        "meaning": (
            "Partial degradation with a workaround and no money at risk: a "
            "scheduled job failing, one customer's operation stuck, an admin "
            "feature broken."
        ),
        "examples": (
            "The daily reconciliation report did not build; one withdrawal "
            "has no payout; the access review page errors."
        ),
        "response_minutes": 60,
        "update_minutes": 240,
        "who_must_be_told": (
            "The team channel. The Operations lead during business hours."
        ),
        "pages_at_night": False,
        "escalation_repeats": 0,
    },
    {
        "level": 4,
        "name": "Sev4",
        "title": "Low",
        "meaning": (
            "No customer impact: internal tooling, cosmetic problems, or a "
            "near miss worth recording and reviewing."
        ),
        "examples": "A typo in an alert; a dashboard slow to load.",
        "response_minutes": 1440,
        "update_minutes": 1440,
        "who_must_be_told": "Nobody beyond the team; listed in the weekly review.",
        "pages_at_night": False,
        "escalation_repeats": 0,
    },
]

ROTATIONS = [
    ("Primary on-call", "Operator", "First responder for every page."),
    ("Secondary on-call", "Operator", "Backs up the primary."),
    ("Incident commanders", "Incident commander", "Commands Sev1 and Sev2."),
    ("Approvers", "Approver", "Approves override requests out of hours."),
    ("Engineering management", "", "The last step of every Sev1 and Sev2 page."),
]

# (level, rotation, channels, wait minutes)
MATRIX = [
    (1, "Primary on-call", ("pagerduty", "slack"), 5),
    (1, "Secondary on-call", ("pagerduty", "slack"), 5),
    (1, "Incident commanders", ("pagerduty", "slack", "email"), 10),
    (1, "Engineering management", ("pagerduty", "email"), 15),
    (2, "Primary on-call", ("pagerduty", "slack"), 10),
    (2, "Secondary on-call", ("pagerduty", "slack"), 15),
    (2, "Incident commanders", ("pagerduty", "email"), 15),
    (3, "Primary on-call", ("slack", "email"), 30),
    (3, "Secondary on-call", ("slack", "email"), 60),
]

OPERATOR, APPROVER, IC = "Operator", "Approver", "Incident commander"
AUTHORITY = {
    1: {"rollback": (OPERATOR, APPROVER, IC), "kill_switch": (OPERATOR, APPROVER, IC)},
    2: {"rollback": (APPROVER, IC), "kill_switch": (OPERATOR, APPROVER, IC)},
    3: {"rollback": (IC,), "kill_switch": (APPROVER, IC)},
    4: {"rollback": (IC,), "kill_switch": (IC,)},
}

SCENARIOS = [
    {
        "slug": "provider-outage",
        "title": "Payment provider outage",
        "level": 1,
        "summary": (
            "At 14:00 on a weekday the payment provider's API starts timing "
            "out. Payout submissions fail and deposit webhooks stop arriving."
        ),
        "objectives": (
            "Declare at the right severity within five minutes; reach the "
            "on-call through the matrix; decide whether to pause payout "
            "submission; give support a customer message; avoid duplicate "
            "payouts when the provider recovers."
        ),
        "injects": [
            (
                0,
                "Alerts: every payout submission to the provider has timed out "
                "(HTTP 504) for five minutes.",
                "Declare Sev1 (money cannot move), page, name the commander.",
            ),
            (
                10,
                "The provider's status page says 'investigating elevated "
                "errors'. Deposits of the last 20 minutes are still pending; "
                "customers write to support.",
                "Customer message through support; pause automatic retries.",
            ),
            (
                25,
                "The provider answers again, and its dashboard shows some "
                "payouts accepted twice.",
                "Check duplicates by provider reference and idempotency key; no "
                "manual re-submission; corrections only by two-person override.",
            ),
            (
                45,
                "The provider reports recovery. 340 payouts are processing and "
                "12 deposits have been pending for over an hour.",
                "Watch stuck detection close the cases; reconcile the day's "
                "settlement; resolve; schedule the review.",
            ),
        ],
    },
    {
        "slug": "payouts-stuck",
        "title": "Payouts stuck for hours",
        "level": 2,
        "summary": (
            "Stuck detection reports 180 EUR payouts processing for more than "
            "six hours at one provider: the final webhooks never came."
        ),
        "objectives": (
            "Link the stuck cases to the incident; find the cause in the "
            "webhook log; decide on replaying webhooks; know when the SLA "
            "breach raises the severity."
        ),
        "injects": [
            (
                0,
                "Stuck detection: 180 payouts processing past six hours at one "
                "provider, all in EUR.",
                "Declare Sev2, link the stuck cases, read the webhook log.",
            ),
            (
                15,
                "The webhook log shows every delivery since this morning's "
                "signing-secret rotation rejected with a bad signature.",
                "Identified: decide who fixes the secret; ask the provider to "
                "replay the webhooks.",
            ),
            (
                30,
                "Eleven payouts pass the 24-hour SLA in two hours. Support asks "
                "what to tell customers.",
                "Customer message; decide whether the breach makes it Sev1.",
            ),
            (
                50,
                "The replayed webhooks apply: 169 payouts become paid, 11 fail "
                "and go back to their wallets.",
                "Check the postings; mitigated; watch tomorrow's reconciliation.",
            ),
        ],
    },
    {
        "slug": "ledger-mismatch",
        "title": "Ledger mismatch found by reconciliation",
        "level": 2,
        "summary": (
            "The daily reconciliation report shows EUR provider clearing off "
            "by 1,240.50 against the settlement statement, with 37 settlement "
            "lines that match no internal payout."
        ),
        "objectives": (
            "Treat a money mismatch as an incident, not a ticket; raise the "
            "severity when customers are hit; order a rollback under the "
            "right authority; correct balances only through two-person "
            "overrides; involve Compliance."
        ),
        "injects": [
            (
                0,
                "Yesterday's reconciliation report: EUR provider clearing is "
                "1,240.50 off the statement; 37 lines have no internal payout.",
                "Declare Sev2 and link the reconciliation ticket.",
            ),
            (
                20,
                "Three customers complain that one withdrawal shows twice in "
                "their balance.",
                "Raise to Sev1 (balances wrong); decide a kill switch on EUR "
                "withdrawals.",
            ),
            (
                40,
                "An engineer finds yesterday's deploy retried postings with a "
                "fresh idempotency key.",
                "Order the rollback under the Sev1 authority; plan corrections "
                "as override requests; nobody edits the ledger by hand.",
            ),
            (
                60,
                "Compliance asks whether the regulator must be told.",
                "The Compliance officer decides; the decision goes on the "
                "timeline.",
            ),
        ],
    },
    {
        "slug": "leaked-api-key",
        "title": "Leaked API key",
        "level": 1,
        "summary": (
            "A live payment-provider API key is found in a commit pushed to a "
            "public repository three hours ago."
        ),
        "objectives": (
            "Contain first: rotate and revoke the key; decide on a payout "
            "kill switch while rotating; find calls we did not make; keep "
            "evidence and a timeline for the regulator."
        ),
        "injects": [
            (
                0,
                "A secret scanner reports a live provider API key in a public "
                "repository, pushed three hours ago.",
                "Declare Sev1; keep the circle small; rotate the key with the "
                "provider; decide the payout kill switch.",
            ),
            (
                10,
                "The provider's logs show four API calls from an unknown address "
                "in the last hour.",
                "Ask the provider to block the address; look for payouts we did "
                "not create; tell Compliance.",
            ),
            (
                30,
                "The new key is live and the old one revoked. A 2,000 EUR payout "
                "to an unknown account is processing.",
                "Stop it with the provider; preserve the evidence; check the "
                "audit log.",
            ),
            (
                60,
                "Legal asks for the timeline of events for the regulator by the "
                "end of the day.",
                "The incident timeline is the source; schedule the review.",
            ),
        ],
    },
]


def seed(apps, schema_editor):
    Severity = apps.get_model("incidents", "Severity")
    Rotation = apps.get_model("incidents", "Rotation")
    EscalationStep = apps.get_model("incidents", "EscalationStep")
    RollbackAuthority = apps.get_model("incidents", "RollbackAuthority")
    Scenario = apps.get_model("incidents", "Scenario")
    Inject = apps.get_model("incidents", "Inject")

    severities = {}
    for fields in SEVERITIES:
        severities[fields["level"]] = Severity.objects.create(**fields)

    rotations = {}
    for name, role, description in ROTATIONS:
        rotations[name] = Rotation.objects.create(
            name=name,
            role=role,
            description=description,
            time_zone="Europe/Berlin",
            handoff_weekday=0,
            handoff_time=datetime.time(9, 0),
            shift_days=7,
            starts_on=FIRST_MONDAY,
        )

    positions: dict[int, int] = {}
    for level, rotation, channels, wait in MATRIX:
        positions[level] = positions.get(level, 0) + 1
        EscalationStep.objects.create(
            severity=severities[level],
            position=positions[level],
            rotation=rotations[rotation],
            via_pagerduty="pagerduty" in channels,
            via_slack="slack" in channels,
            via_email="email" in channels,
            wait_minutes=wait,
        )

    for level, orders in AUTHORITY.items():
        for order, roles in orders.items():
            for role in roles:
                RollbackAuthority.objects.create(
                    severity=severities[level], order=order, role=role
                )

    for scenario in SCENARIOS:
        row = Scenario.objects.create(
            slug=scenario["slug"],
            title=scenario["title"],
            summary=scenario["summary"],
            objectives=scenario["objectives"],
            severity=severities[scenario["level"]],
        )
        for position, (offset, text, expected) in enumerate(
            scenario["injects"], start=1
        ):
            Inject.objects.create(
                scenario=row,
                position=position,
                offset_minutes=offset,
                text=text,
                expected_response=expected,
            )


def unseed(apps, schema_editor):
    for model in (
        "Inject",
        "Scenario",
        "RollbackAuthority",
        "EscalationStep",
        "Rotation",
        "Severity",
    ):
        apps.get_model("incidents", model).objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
