import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.checks import run_checks

PRODUCTION_ENV = {
    "OPSADMIN_ENV": "production",
    "SECRET_KEY": "k3" * 30 + "x9Qz",
    "ALLOWED_HOSTS": "ops.example.com",
    "DATABASE_URL": "postgres://ops@db.internal:5432/opsadmin",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "EMAIL_HOST": "smtp.example.com",
    "ALERT_EMAIL_TO": "oncall@example.com",
    "PROVIDER_CODES": "acme",
    "PROVIDER_ACME_BASE_URL": "https://api.acme.example/",
    "PROVIDER_ACME_API_KEY": "sk_live_example",
    "PROVIDER_ACME_WEBHOOK_SECRET": "whsec_example",
}


def test_check_deploy_reports_nothing_with_production_settings(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "OPSADMIN_VAR_DIR": str(tmp_path),
        **PRODUCTION_ENV,
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def _deploy_check_ids():
    return {m.id for m in run_checks(include_deployment_checks=True)}


def test_check_deploy_notices_a_missing_content_security_policy(settings):
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if "ContentSecurityPolicy" not in m
    ]

    assert "security.W001" in _deploy_check_ids()


def test_check_deploy_notices_a_policy_that_allows_inline_script(settings):
    settings.SECURITY_CONTENT_SECURITY_POLICY += "; script-src 'unsafe-inline'"

    assert "security.W002" in _deploy_check_ids()


def test_check_deploy_notices_a_missing_second_factor_wall(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "SecondFactor" not in m]

    assert "security.W003" in _deploy_check_ids()


@pytest.mark.django_db
def test_every_response_carries_the_policy(client):
    response = client.get("/admin/login/")

    assert response["Content-Security-Policy"] == (
        settings.SECURITY_CONTENT_SECURITY_POLICY
    )
    assert response["X-Frame-Options"] == "DENY"
