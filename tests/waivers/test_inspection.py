import pytest

from waivers.inspection import MISSING, OK, TEST_VALUE, secrets_inspect, value_problems
from waivers.inventory import secret_spec


@pytest.fixture
def spec(production_secrets):
    return secret_spec("PROVIDER_ACME_API_KEY")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("sk_test_4eC39HqLyjWDarjtT1zdp7dc", "contains the test marker 'sk_test_'"),
        ("sk_live_changeme_0a1b2c3d4e5f", "contains the placeholder 'changeme'"),
        ("sk_live_example_0a1b2c3d4e5f", "contains the placeholder 'example'"),
        ("sk_live_DUMMY_0a1b2c3d4e5f6a", "contains the placeholder 'dummy'"),
        ("sk_live_0a1b2c3d", "shorter than 20 characters"),
        ("a" * 10 + "b" * 10 + "c" * 5, "uses fewer than 6 distinct characters"),
    ],
)
def test_it_recognises_a_test_or_placeholder_value(spec, value, problem):
    assert problem in value_problems(spec, value)


def test_a_live_looking_value_has_no_problem(spec):
    assert value_problems(spec, "sk_live_51Hq8c2f0a9b8c7d6e5f4a3b2c1") == []


def test_django_insecure_keys_are_test_values(production_secrets):
    key = secret_spec("SECRET_KEY")

    assert "contains the test marker 'django-insecure'" in value_problems(
        key, "django-insecure-" + "q8f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8"
    )


def test_a_slack_url_must_be_slacks(production_secrets):
    slack = secret_spec("SLACK_WEBHOOK_URL")

    assert "does not start with https://hooks.slack.com/" in value_problems(
        slack, "https://hooks.chat.invalid/services/T04Q7LQ2D/B06H1K2M3N4/0a1b2c3d4e5f"
    )


def test_a_database_url_without_a_password_is_missing(settings, production_secrets):
    settings.DATABASE_URL = "postgres://opsadmin@db.internal:5432/opsadmin"

    status = {i.spec.name: i.status for i in secrets_inspect()}

    assert status["DATABASE_URL"] == MISSING
    assert status["SECRET_KEY"] == OK


def test_two_secrets_sharing_a_value_are_both_flagged(settings, production_secrets):
    settings.PAGERDUTY_ROUTING_KEY = production_secrets["SECRET_FINGERPRINT_KEY"][:32]
    settings.SECRET_FINGERPRINT_KEY = settings.PAGERDUTY_ROUTING_KEY

    found = {i.spec.name: i for i in secrets_inspect()}

    assert found["PAGERDUTY_ROUTING_KEY"].status == TEST_VALUE
    assert "has the same value as SECRET_FINGERPRINT_KEY" in (
        found["PAGERDUTY_ROUTING_KEY"].problems
    )


def test_a_fingerprint_is_keyed_and_does_not_contain_the_value(
    settings, production_secrets
):
    first = {i.spec.name: i.fingerprint for i in secrets_inspect()}
    settings.SECRET_FINGERPRINT_KEY = "b" * 8 + "0123456789abcdef" * 2

    second = {i.spec.name: i.fingerprint for i in secrets_inspect()}

    assert first["PAGERDUTY_ROUTING_KEY"] != second["PAGERDUTY_ROUTING_KEY"]
    assert production_secrets["PAGERDUTY_ROUTING_KEY"] not in first.values()
    assert len(first["PAGERDUTY_ROUTING_KEY"]) == 32


def test_each_provider_code_gets_its_own_secrets(settings, production_secrets):
    settings.PROVIDERS = {
        **settings.PROVIDERS,
        "beta": {"api_key": "", "webhook_secret": ""},
    }

    names = [i.spec.name for i in secrets_inspect()]

    assert "PROVIDER_BETA_API_KEY" in names
    assert "PROVIDER_BETA_WEBHOOK_SECRET" in names
