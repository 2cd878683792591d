from importlib import import_module

import pytest

from stuck.models import StuckRule


@pytest.fixture
def default_rules(db):
    """The rules migration 0002 seeds, which a transactional test's flush
    empties for the tests after it."""
    module = import_module("stuck.migrations.0002_default_rules")
    for rule in module.DEFAULT_RULES:
        StuckRule.objects.get_or_create(name=rule["name"], defaults=rule)
