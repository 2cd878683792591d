"""Scan the locked dependencies for known vulnerabilities (``make audit``).

    python -m security.depscan [--lock FILE ...] [--ignore-file FILE]
                               [--offline] [--advisory-db DIR]

1. Read every ``name==version`` of the lock files.
2. Ask pip-audit (PyPI's vulnerability data) about each, unless --offline.
   A package PyPI could not answer for counts as not yet scanned: pip-audit
   itself reports "no known vulnerabilities" for those, which is a pass it
   did not make.
3. Scan whatever is not yet scanned against the local copy of the PyPA
   advisory database (OSV YAML files), found at $OPSADMIN_ADVISORY_DB, then
   ``<repo>/../shared/advisories``, then /work/shared/advisories, and say
   the date of that data.
4. Drop the findings that stand in the reviewed ignore file
   (security/audit-ignore.toml) with a reason and an unexpired date.

Exit status 1 when a finding is not ignored, when an ignore has expired or
is malformed, or when any package could not be scanned at all. It needs no
Django and no database, so CI can run it before anything else.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

REPO = Path(__file__).resolve().parent.parent
DEFAULT_LOCKS = [
    REPO / "requirements" / "base.lock",
    REPO / "requirements" / "dev.lock",
]
DEFAULT_IGNORE_FILE = REPO / "security" / "audit-ignore.toml"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
_SOURCE_DATE = re.compile(r"\bof (\d{4}-\d{2}-\d{2})\b")


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    id: str
    aliases: tuple[str, ...] = ()
    fixed_in: tuple[str, ...] = ()
    source: str = ""

    def known_as(self) -> set[str]:
        return {self.id, *self.aliases}


@dataclass
class Ignore:
    id: str
    package: str
    reason: str
    expires: date


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    unscanned: dict[str, str] = field(default_factory=dict)  # package -> why
    sources: list[str] = field(default_factory=list)


def read_locks(paths) -> dict[str, str]:
    pins: dict[str, str] = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            match = _PIN.match(line.strip())
            if match:
                pins[str(canonicalize_name(match.group(1)))] = match.group(2)
    return pins


def read_ignores(path: Path, *, today: date) -> tuple[list[Ignore], list[str]]:
    """The valid, unexpired ignores and the problems with the others."""
    if not path.exists():
        return [], []
    entries = tomllib.loads(path.read_text()).get("ignore", [])
    ignores, problems = [], []
    for n, entry in enumerate(entries, start=1):
        missing = [
            k for k in ("id", "package", "reason", "expires") if not entry.get(k)
        ]
        if missing or not isinstance(entry.get("expires"), date):
            problems.append(
                f"ignore #{n}: needs id, package, reason and an expires date "
                f"(missing or wrong: {missing or ['expires']})"
            )
            continue
        if entry["expires"] < today:
            problems.append(
                f"ignore of {entry['id']} ({entry['package']}) expired on "
                f"{entry['expires']}: review it again or upgrade"
            )
            continue
        ignores.append(
            Ignore(
                id=entry["id"],
                package=str(canonicalize_name(entry["package"])),
                reason=entry["reason"],
                expires=entry["expires"],
            )
        )
    return ignores, problems


# --- the local advisory database -----------------------------------------


def find_advisory_db(explicit: str | None = None) -> Path | None:
    candidates = [
        explicit,
        os.environ.get("OPSADMIN_ADVISORY_DB"),
        REPO.parent / "shared" / "advisories",
        "/work/shared/advisories",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "vulns").is_dir():
            return Path(candidate)
    return None


def advisory_db_date(db: Path) -> str:
    """The date of the snapshot: from SOURCE.md, else the newest ``modified``."""
    source = db / "SOURCE.md"
    if source.exists():
        match = _SOURCE_DATE.search(source.read_text())
        if match:
            return match.group(1)
    newest = ""
    for path in (db / "vulns").rglob("*.yaml"):
        for line in path.read_text().splitlines():
            if line.startswith("modified:"):
                newest = max(newest, line.split(":", 1)[1].strip()[:10])
                break
    return newest or "unknown"


def _affected(version: Version, affected: dict) -> bool:
    if str(version) in {str(v) for v in affected.get("versions", [])}:
        return True
    for spec in affected.get("ranges", []):
        if spec.get("type") != "ECOSYSTEM":
            continue
        events = []
        for event in spec.get("events", []):
            ((kind, value),) = event.items()
            try:
                events.append((Version(str(value)), kind))
            except InvalidVersion:
                continue
        # OSV: a version is affected when the last event at or below it is
        # "introduced" (or a "last_affected" equal to it).
        state = False
        for at, kind in sorted(events, key=lambda e: e[0]):
            fixed_below = kind == "fixed" and version >= at
            last_below = kind == "last_affected" and version > at
            if kind == "introduced" and version >= at:
                state = True
            elif fixed_below or last_below:
                state = False
        if state:
            return True
    return False


def scan_offline(pins: dict[str, str], db: Path) -> list[Finding]:
    import yaml

    findings = []
    vulns = db / "vulns"
    folders = {str(canonicalize_name(p.name)): p for p in vulns.iterdir() if p.is_dir()}
    for package, raw_version in sorted(pins.items()):
        folder = folders.get(package)
        if folder is None:
            continue
        try:
            version = Version(raw_version)
        except InvalidVersion:
            continue
        for path in sorted(folder.glob("*.yaml")):
            advisory = yaml.safe_load(path.read_text())
            if advisory.get("withdrawn"):
                continue
            for affected in advisory.get("affected", []):
                name = affected.get("package", {}).get("name", "")
                if canonicalize_name(name) != package or not _affected(
                    version, affected
                ):
                    continue
                fixed = tuple(
                    str(event["fixed"])
                    for spec in affected.get("ranges", [])
                    for event in spec.get("events", [])
                    if "fixed" in event
                )
                findings.append(
                    Finding(
                        package=package,
                        version=raw_version,
                        id=advisory["id"],
                        aliases=tuple(advisory.get("aliases") or ()),
                        fixed_in=fixed,
                        source="advisory-db",
                    )
                )
                break
    return findings


# --- pip-audit (online) ---------------------------------------------------


def scan_online(lock_paths) -> tuple[list[Finding], set[str], str]:
    """Findings, the packages pip-audit really checked, and what happened."""
    findings: list[Finding] = []
    scanned: set[str] = set()
    for lock in lock_paths:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "audit.json"
            try:
                subprocess.run(  # noqa: S603 - our interpreter, our arguments
                    [
                        sys.executable,
                        "-m",
                        "pip_audit",
                        "--requirement",
                        str(lock),
                        "--disable-pip",
                        "--vulnerability-service",
                        "pypi",
                        "--format",
                        "json",
                        "--progress-spinner",
                        "off",
                        "--output",
                        str(out),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                )
                report = json.loads(out.read_text())
            except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
                return [], set(), f"pip-audit could not run ({type(exc).__name__})"
        for dep in report.get("dependencies", []):
            if "skip_reason" in dep:
                continue
            package = str(canonicalize_name(dep["name"]))
            scanned.add(package)
            findings.extend(
                Finding(
                    package=package,
                    version=dep["version"],
                    id=vuln["id"],
                    aliases=tuple(vuln.get("aliases") or ()),
                    fixed_in=tuple(vuln.get("fix_versions") or ()),
                    source="pypi",
                )
                for vuln in dep.get("vulns", [])
            )
    return findings, scanned, f"pip-audit answered for {len(scanned)} package(s)"


# --- the whole scan -------------------------------------------------------


def scan(
    pins: dict[str, str],
    *,
    lock_paths,
    online: bool,
    advisory_db: str | None = None,
) -> ScanResult:
    result = ScanResult()
    remaining = dict(pins)
    if online:
        findings, scanned, note = scan_online(lock_paths)
        result.findings.extend(findings)
        result.sources.append(f"PyPI vulnerability data via {note}")
        remaining = {p: v for p, v in pins.items() if p not in scanned}
    if remaining:
        db = find_advisory_db(advisory_db)
        if db is None:
            result.unscanned = {
                package: "no vulnerability data could be had" for package in remaining
            }
        else:
            result.findings.extend(scan_offline(remaining, db))
            result.sources.append(
                f"PyPA advisory database snapshot of {advisory_db_date(db)} "
                f"({db}) for {len(remaining)} package(s)"
            )
    return result


def main(argv=None, *, today: date | None = None, out=sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", action="append", help="lock file (repeatable)")
    parser.add_argument("--ignore-file", default=str(DEFAULT_IGNORE_FILE))
    parser.add_argument("--offline", action="store_true", help="skip pip-audit")
    parser.add_argument("--advisory-db", help="folder holding vulns/")
    args = parser.parse_args(argv)
    today = today or date.today()

    locks = [Path(p) for p in args.lock] if args.lock else DEFAULT_LOCKS
    pins = read_locks(locks)
    ignores, problems = read_ignores(Path(args.ignore_file), today=today)
    result = scan(
        pins, lock_paths=locks, online=not args.offline, advisory_db=args.advisory_db
    )

    def say(text=""):
        print(text, file=out)

    say(f"Scanned {len(pins)} locked package(s) from {', '.join(map(str, locks))}.")
    for source in result.sources:
        say(f"Data: {source}.")
    failed = False
    if result.unscanned:
        failed = True
        say(
            f"NOT SCANNED: no vulnerability data could be had for "
            f"{len(result.unscanned)} package(s) (neither PyPI nor a local advisory "
            "database): this is not a pass."
        )
    unique = {(f.package, f.id): f for f in result.findings}.values()
    for finding in sorted(unique, key=lambda f: (f.package, f.id)):
        ignore = next(
            (
                i
                for i in ignores
                if i.package == finding.package and i.id in finding.known_as()
            ),
            None,
        )
        fixed = f"; fixed in {', '.join(finding.fixed_in)}" if finding.fixed_in else ""
        line = f"{finding.package}=={finding.version}: {finding.id}{fixed}"
        if ignore:
            say(f"ignored   {line} (until {ignore.expires}: {ignore.reason})")
        else:
            failed = True
            say(f"VULNERABLE {line}")
    for problem in problems:
        failed = True
        say(f"IGNORE FILE: {problem}")
    say("FAILED" if failed else "OK: no known vulnerability outside the ignore file.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
