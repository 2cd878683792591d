import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.checks import run_checks
from django.db import connection

from tests.factories import make_waiver
from tests.production import production_env

TEST_API_KEY = "sk_test_51Hq8c2f0a9b8c7d6e5f4a3b2c1"


def check_deploy(env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_check_deploy_reports_nothing_for_a_correct_production_environment(
    tmp_path,
):
    result = check_deploy(production_env(tmp_path, connection.settings_dict["NAME"]))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_check_deploy_reports_a_test_secret_without_a_waiver(tmp_path):
    env = production_env(
        tmp_path,
        connection.settings_dict["NAME"],
        PROVIDER_ACME_API_KEY=TEST_API_KEY,
    )

    result = check_deploy(env)

    assert result.returncode == 1
    assert (
        "waivers.E002) PROVIDER_ACME_API_KEY looks like a test or placeholder "
        "value: contains the test marker 'sk_test_'." in result.stderr
    )
    assert "51Hq8c2f0a9b8c7d6e5f4a3b2c1" not in result.stderr + result.stdout


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_check_deploy_accepts_a_test_secret_with_a_valid_waiver(
    tmp_path, settings, approver
):
    settings.PROVIDERS = {"acme": {"base_url": "", "api_key": "", "webhook_secret": ""}}
    make_waiver(secret="PROVIDER_ACME_API_KEY", risk="low", approved_by=approver)
    env = production_env(
        tmp_path,
        connection.settings_dict["NAME"],
        PROVIDER_ACME_API_KEY=TEST_API_KEY,
    )

    result = check_deploy(env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_check_deploy_does_not_accept_a_waiver_awaiting_approval(
    tmp_path, settings, roles
):
    settings.PROVIDERS = {"acme": {"base_url": "", "api_key": "", "webhook_secret": ""}}
    make_waiver(secret="PROVIDER_ACME_API_KEY", risk="low")
    env = production_env(
        tmp_path,
        connection.settings_dict["NAME"],
        PROVIDER_ACME_API_KEY=TEST_API_KEY,
    )

    result = check_deploy(env)

    assert result.returncode == 1
    assert "waivers.E002" in result.stderr


def test_check_deploy_says_when_it_could_not_read_the_register(tmp_path):
    # Nothing listens on port 1: the register cannot be read.
    env = production_env(tmp_path, "opsadmin", PAGERDUTY_ROUTING_KEY="")
    env["DATABASE_URL"] = env["DATABASE_URL"].replace(":5432/", ":1/")

    result = check_deploy(env)

    assert result.returncode == 1
    assert "waivers.W001) The waiver register and rotation dates could not be read" in (
        result.stderr
    )
    assert "waivers.E001) PAGERDUTY_ROUTING_KEY is missing" in result.stderr


def _ids():
    return {message.id for message in run_checks(include_deployment_checks=True)}


@pytest.mark.django_db
def test_a_missing_secret_is_an_error_in_production(settings, production_secrets):
    settings.PRODUCTION = True
    settings.SLACK_WEBHOOK_URL = ""

    assert "waivers.E001" in _ids()


@pytest.mark.django_db
def test_nothing_is_reported_outside_production(settings):
    settings.PRODUCTION = False
    settings.SLACK_WEBHOOK_URL = ""

    assert not {i for i in _ids() if i.startswith("waivers.")}
