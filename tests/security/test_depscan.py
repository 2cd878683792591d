"""The dependency scanner (make audit), offline against OSV advisory files."""

from datetime import date
from io import StringIO

import pytest

from security import depscan

TODAY = date(2026, 12, 3)
ADVISORY = """\
id: PYSEC-2099-1
aliases:
- CVE-2099-0001
affected:
- package:
    ecosystem: PyPI
    name: Example-Lib
  ranges:
  - type: ECOSYSTEM
    events:
    - introduced: "1.0"
    - fixed: 1.4.2
    - introduced: "2.0"
    - fixed: 2.0.1
"""


@pytest.fixture
def advisory_db(tmp_path):
    folder = tmp_path / "db" / "vulns" / "example-lib"
    folder.mkdir(parents=True)
    (folder / "PYSEC-2099-1.yaml").write_text(ADVISORY)
    (tmp_path / "db" / "SOURCE.md").write_text(
        "a copy taken at its commit 1 of 2099-01-02."
    )
    return tmp_path / "db"


def _run(tmp_path, pins, *, db, ignores="", today=TODAY):
    lock = tmp_path / "test.lock"
    lock.write_text("".join(f"{pin} \\\n    --hash=sha256:00\n" for pin in pins))
    ignore_file = tmp_path / "ignore.toml"
    ignore_file.write_text(ignores)
    out = StringIO()
    argv = ["--offline", "--lock", str(lock), "--ignore-file", str(ignore_file)]
    if db:
        argv += ["--advisory-db", str(db)]
    code = depscan.main(argv, today=today, out=out)
    return code, out.getvalue()


def test_it_catches_a_known_vulnerable_django_from_the_local_advisory_data(tmp_path):
    db = depscan.find_advisory_db()
    assert db is not None, (
        "the PyPA advisory database copy (shared/advisories) is missing"
    )

    code, output = _run(tmp_path, ["django==4.2.14"], db=db)

    assert code == 1
    assert "VULNERABLE django==4.2.14: PYSEC-2024-70; fixed in 5.0.8, 4.2.15" in output
    assert f"snapshot of {depscan.advisory_db_date(db)}" in output


@pytest.mark.parametrize(
    ("version", "vulnerable"),
    [
        ("0.9", False),
        ("1.0", True),
        ("1.4.1", True),
        ("1.4.2", False),
        ("2.0", True),
        ("2.0.1", False),
    ],
)
def test_it_compares_versions_as_pep_440(tmp_path, advisory_db, version, vulnerable):
    code, output = _run(tmp_path, [f"example_lib=={version}"], db=advisory_db)

    assert (code == 1) is vulnerable
    assert ("VULNERABLE" in output) is vulnerable


def test_it_names_the_date_of_the_data(tmp_path, advisory_db):
    _, output = _run(tmp_path, ["example-lib==3.0"], db=advisory_db)

    assert "PyPA advisory database snapshot of 2099-01-02" in output


def test_a_reviewed_ignore_lets_the_scan_pass(tmp_path, advisory_db):
    ignores = (
        '[[ignore]]\nid = "CVE-2099-0001"\npackage = "example-lib"\n'
        'reason = "the vulnerable parser is never called"\nexpires = 2027-01-31\n'
    )

    code, output = _run(tmp_path, ["example-lib==1.1"], db=advisory_db, ignores=ignores)

    assert code == 0
    assert "ignored   example-lib==1.1: PYSEC-2099-1" in output


def test_an_expired_ignore_fails(tmp_path, advisory_db):
    ignores = (
        '[[ignore]]\nid = "PYSEC-2099-1"\npackage = "example-lib"\n'
        'reason = "was fine"\nexpires = 2026-12-02\n'
    )

    code, output = _run(tmp_path, ["example-lib==1.1"], db=advisory_db, ignores=ignores)

    assert code == 1
    assert "expired on 2026-12-02" in output
    assert "VULNERABLE example-lib==1.1" in output


def test_an_ignore_without_a_reason_fails(tmp_path, advisory_db):
    ignores = (
        '[[ignore]]\nid = "PYSEC-2099-1"\npackage = "example-lib"\n'
        "expires = 2027-01-01\n"
    )

    code, output = _run(tmp_path, ["example-lib==3.0"], db=advisory_db, ignores=ignores)

    assert code == 1
    assert "needs id, package, reason" in output


def test_without_any_data_it_says_so_and_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(depscan, "find_advisory_db", lambda explicit=None: None)

    code, output = _run(tmp_path, ["example-lib==3.0"], db=None)

    assert code == 1
    assert "NOT SCANNED" in output
    assert "this is not a pass" in output
    assert "OK" not in output
