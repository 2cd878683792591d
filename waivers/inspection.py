"""Inspect the running configuration's secrets: present, test value, fingerprint.

Nothing here stores, logs or returns a value. An ``Inspection`` carries
whether the secret is present, the reasons it looks like a test or
placeholder value (phrased without quoting the value), and its fingerprint.
"""

from dataclasses import dataclass

from waivers.fingerprints import fingerprint_key
from waivers.inventory import SecretSpec, inventory

MISSING = "missing"
TEST_VALUE = "test_value"
OK = "ok"

# Fragments that mark a placeholder wherever they appear, case-insensitively.
PLACEHOLDER_FRAGMENTS = (
    "changeme",
    "change-me",
    "change_me",
    "replaceme",
    "replace-me",
    "django-insecure",
    "example",
    "dummy",
    "placeholder",
    "sample",
    "notasecret",
    "insecure",
    "your-",
    "your_",
    "xxxxxx",
    "123456",
)
# Whole values that are placeholders; too short to search for inside a value.
PLACEHOLDER_VALUES = {
    "secret",
    "password",
    "passwd",
    "test",
    "testing",
    "default",
    "none",
    "null",
    "todo",
    "fixme",
    "admin",
}
# A random value of any length worth having uses more distinct characters.
MIN_DISTINCT_CHARACTERS = 6


@dataclass(frozen=True)
class Inspection:
    spec: SecretSpec
    present: bool
    problems: tuple[str, ...]
    fingerprint: str  # "" when missing

    @property
    def status(self) -> str:
        if not self.present:
            return MISSING
        return TEST_VALUE if self.problems else OK


def value_problems(spec: SecretSpec, value: str) -> list[str]:
    """Why ``value`` looks like a test or placeholder value; [] when it does not."""
    problems = []
    lowered = value.lower()
    if len(value) < spec.min_length:
        problems.append(f"shorter than {spec.min_length} characters")
    if spec.required_prefix and not value.startswith(spec.required_prefix):
        problems.append(f"does not start with {spec.required_prefix}")
    for pattern in spec.test_patterns:
        if pattern.lower() in lowered:
            problems.append(f"contains the test marker {pattern!r}")
            break
    for fragment in PLACEHOLDER_FRAGMENTS:
        if fragment in lowered:
            problems.append(f"contains the placeholder {fragment!r}")
            break
    if lowered in PLACEHOLDER_VALUES:
        problems.append("is a placeholder word")
    if len(set(value)) < MIN_DISTINCT_CHARACTERS:
        problems.append(
            f"uses fewer than {MIN_DISTINCT_CHARACTERS} distinct characters"
        )
    return problems


def secrets_inspect(specs: list[SecretSpec] | None = None) -> list[Inspection]:
    """Inspect every declared secret (or ``specs``) as the process sees them now."""
    specs = inventory() if specs is None else specs
    key = fingerprint_key()
    values = {spec.name: spec.read() or "" for spec in specs}
    # Two secrets with one value: a leak of either is a leak of both.
    shared_with: dict[str, list[str]] = {}
    for name, value in values.items():
        if value:
            shared_with.setdefault(value, []).append(name)

    inspections = []
    for spec in specs:
        value = values[spec.name]
        if not value:
            inspections.append(Inspection(spec, False, (), ""))
            continue
        problems = value_problems(spec, value)
        others = [name for name in shared_with[value] if name != spec.name]
        if others:
            problems.append(f"has the same value as {', '.join(others)}")
        inspections.append(
            Inspection(spec, True, tuple(problems), key.fingerprint(spec.name, value))
        )
    return inspections
