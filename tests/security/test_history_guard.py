"""No code path changes an audited model behind simple-history's back.

History is written by save() and delete() signals; QuerySet.update(),
bulk_update() and bulk_create() send none, and neither does hand-written
UPDATE SQL. This reads the project's own source (not tests, not migrations)
and fails on any such write to a model with HistoricalRecords. A write whose
model the scan cannot tell (a queryset held in a variable) must stand in the
allow-list below with the model it touches and why; the test checks that the
model named there really keeps no history.
"""

import ast
import re
from pathlib import Path

from django.apps import apps
from django.conf import settings

WRITES = {"update", "bulk_update", "bulk_create"}


def _retention_cleared_models() -> tuple[str, ...]:
    from jobs.retention import retention_targets

    return tuple(target.model for target in retention_targets() if target.clear)


# (file, function) -> (model labels, why they may be written in bulk)
ALLOWED = {
    ("finance/services/ledger.py", "ledger_post"): (
        ("finance.Wallet",),
        "the cached balance moves with a conditional UPDATE in the posting's "
        "transaction; its history is the ledger itself (no HistoricalRecords)",
    ),
    **{
        ("jobs/locks.py", name): (
            ("jobs.Job",),
            "the job lock is claimed, renewed and released with conditional "
            "UPDATEs; lock columns are machinery, not operator data",
        )
        for name in ("acquire", "renew", "release")
    },
    ("jobs/retention.py", "_purge_batch"): (
        _retention_cleared_models,
        "retention clears expired payloads in batches; every registered target "
        "that clears fields must be a model without history",
    ),
}

# (file, function) -> why it may create rows of audited models in bulk. Only
# bulk_create is excused here (test below): creating is not changing, and
# history records changes made by people; the first save() of a seeded row
# will start its history like any other.
CREATE_ONLY = {
    ("finance/seeding/writers.py", "write"): (
        "seed_demo loads generated demo rows (customers, operations) on "
        "SQLite in bulk; on PostgreSQL it uses COPY, which the scan cannot see"
    ),
    ("sandbox/demo.py", "_create"): (
        "the demo creates the sandbox provider's side of the seeded payouts "
        "and deposits in batches: the provider's rows, which keep no history"
    ),
}


def _audited():
    return {
        model.__name__: model
        for model in apps.get_models()
        if hasattr(model._meta, "simple_history_manager_attribute")
    }


def _source_files():
    base = Path(settings.BASE_DIR)
    for config in apps.get_app_configs():
        root = Path(config.path)
        if base not in root.parents or "site-packages" in root.parts:
            continue  # third-party code
        for path in root.rglob("*.py"):
            if "migrations" not in path.parts:
                yield path.relative_to(base).as_posix(), path


def _root_name(node):
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return node.id if isinstance(node, ast.Name) else None


def _looks_like_a_queryset_write(call: ast.Call) -> bool:
    if call.func.attr != "update":
        return True
    # QuerySet.update takes keywords only; dict.update(mapping) does not.
    return not call.args and bool(call.keywords)


def writes_in(source: str, name: str):
    """(file, function, model name or None, line) of each bulk write in source."""
    models = {model.__name__ for model in apps.get_models()}
    found = []
    for function in ast.walk(ast.parse(source, filename=name)):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in WRITES
                and _looks_like_a_queryset_write(node)
            ):
                continue
            root = _root_name(node.func.value)
            model = root if root in models else None
            found.append((name, function.name, model, node.lineno))
    return found


def bulk_writes():
    return [
        write
        for name, path in _source_files()
        for write in writes_in(path.read_text(), name)
    ]


def test_the_scan_sees_bulk_writes_and_ignores_dict_updates():
    source = (
        "def f(qs, d):\n"
        "    Customer.objects.filter(pk=1).update(is_blocked=True)\n"
        "    Payout.objects.bulk_update([], ['state'])\n"
        "    qs.update(state='paid')\n"
        "    d.update({'a': 1})\n"
    )

    assert [(m, line) for _, _, m, line in writes_in(source, "x.py")] == [
        ("Customer", 2),
        ("Payout", 3),
        (None, 4),
    ]


def test_no_code_writes_an_audited_model_in_bulk():
    audited = _audited()
    assert {"Customer", "Payout", "User"} <= set(audited)

    offenders = [
        f"{name}:{line} {function}() writes {model} in bulk"
        for name, function, model, line in bulk_writes()
        if model in audited
    ]

    assert offenders == []


def test_every_bulk_write_of_an_unknown_model_is_allow_listed():
    unknown = {
        (name, function): line
        for name, function, model, line in bulk_writes()
        if model is None
    }

    assert sorted(set(unknown) - set(ALLOWED) - set(CREATE_ONLY)) == []
    # An entry whose code is gone must go too, or it would excuse new code.
    assert sorted(set(ALLOWED) | set(CREATE_ONLY)) == sorted(set(unknown))


def test_create_only_entries_write_nothing_but_bulk_create():
    base = Path(settings.BASE_DIR)
    for name, function_name in CREATE_ONLY:
        tree = ast.parse((base / name).read_text())
        functions = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name == function_name
        ]
        writes = {
            node.func.attr
            for function in functions
            for node in ast.walk(function)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in WRITES
            and _looks_like_a_queryset_write(node)
        }
        assert writes == {"bulk_create"}, (name, function_name)


def test_allow_listed_models_really_keep_no_history():
    for key, (labels, _why) in ALLOWED.items():
        labels = labels() if callable(labels) else labels
        assert labels, key
        for label in labels:
            model = apps.get_model(label)
            assert not hasattr(model._meta, "simple_history_manager_attribute"), label


def test_no_hand_written_sql_updates_an_audited_table():
    tables = "|".join(re.escape(m._meta.db_table) for m in _audited().values())
    statement = re.compile(rf"\bUPDATE\s+\"?({tables})\"?\s", re.IGNORECASE)
    offenders = []
    for name, path in _source_files():
        for node in ast.walk(ast.parse(path.read_text())):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and statement.search(text):
                offenders.append(f"{name}:{node.lineno}")

    assert offenders == []
