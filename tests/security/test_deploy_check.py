import pytest
from django.conf import settings
from django.core.checks import run_checks


def _deploy_check_ids():
    return {m.id for m in run_checks(include_deployment_checks=True)}


def test_the_project_settings_pass_our_deploy_checks():
    assert not {i for i in _deploy_check_ids() if i.startswith("opsadmin.")}


def test_check_deploy_notices_a_missing_content_security_policy(settings):
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if "ContentSecurityPolicy" not in m
    ]

    assert "opsadmin.W001" in _deploy_check_ids()


def test_check_deploy_notices_a_policy_that_allows_inline_script(settings):
    settings.SECURITY_CONTENT_SECURITY_POLICY += "; script-src 'unsafe-inline'"

    assert "opsadmin.W002" in _deploy_check_ids()


def test_check_deploy_notices_a_missing_second_factor_wall(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "SecondFactor" not in m]

    assert "opsadmin.W003" in _deploy_check_ids()


@pytest.mark.django_db
def test_every_response_carries_the_policy(client):
    response = client.get("/admin/login/")

    assert response["Content-Security-Policy"] == (
        settings.SECURITY_CONTENT_SECURITY_POLICY
    )
    assert response["X-Frame-Options"] == "DENY"
