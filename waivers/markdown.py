"""The team's Markdown register (``prod_env_waiver_register.md``), read and written.

The file holds one pipe table; anything around it (titles, notes) is left
alone. Columns are matched by name, in any order, case-insensitively; these
must be there (docs/waivers.md lists the accepted spellings)::

    ID | Item | Risk | Owner | Deadline | Status | Approver

and ``Approved at``, ``Justification`` and ``Compensating control`` are read
when present. Other columns are ignored and named in the report.

A line that cannot be read exactly is reported with its number and the
reason; nothing is guessed (a date is ``YYYY-MM-DD``, a risk is one of the
four words, a status one of the listed spellings). Who the owner and the
approver are, and what an import changes, is decided by
``waivers.services.importing.register_import``.

In cells, ``\\|`` is a literal pipe and ``<br>`` a line break.
"""

import re
from dataclasses import dataclass, field
from datetime import date

from waivers.inventory import inventory
from waivers.models import Risk, WaiverStatus

# Accepted header spellings (lower case, single spaces) -> field.
COLUMNS = {
    "id": "reference",
    "waiver id": "reference",
    "item": "item",
    "risk": "risk",
    "owner": "owner",
    "deadline": "deadline",
    "due date": "deadline",
    "status": "status",
    "approver": "approver",
    "approved by": "approver",
    "approved at": "approved_at",
    "approved on": "approved_at",
    "justification": "justification",
    "compensating control": "compensating_control",
    "compensating controls": "compensating_control",
}
REQUIRED = ("reference", "item", "risk", "owner", "deadline", "status", "approver")
# The columns export writes, in this order.
EXPORT_HEADERS = [
    ("ID", "reference"),
    ("Item", "item"),
    ("Risk", "risk"),
    ("Owner", "owner"),
    ("Deadline", "deadline"),
    ("Status", "status"),
    ("Approver", "approver"),
    ("Approved at", "approved_at"),
    ("Justification", "justification"),
    ("Compensating control", "compensating_control"),
]

STATUSES = {
    "awaiting approval": WaiverStatus.REQUESTED,
    "requested": WaiverStatus.REQUESTED,
    "open": WaiverStatus.REQUESTED,
    "pending": WaiverStatus.REQUESTED,
    "approved": WaiverStatus.APPROVED,
    "closed": WaiverStatus.CLOSED,
    "resolved": WaiverStatus.CLOSED,
    "rejected": WaiverStatus.REJECTED,
}
STATUS_LABELS = {
    WaiverStatus.REQUESTED: "Awaiting approval",
    WaiverStatus.APPROVED: "Approved",
    WaiverStatus.CLOSED: "Closed",
    WaiverStatus.REJECTED: "Rejected",
}
EMPTY = {"", "-", "—", "n/a"}
REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,19}")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
SECRET_NAME = re.compile(r"`?([A-Z][A-Z0-9_]*)`?")
_SEPARATOR_CELL = re.compile(r":?-+:?")


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self):
        return f"line {self.line}: {self.message}"


@dataclass
class Row:
    line: int
    reference: str
    status: str
    approver: str  # a username or e-mail, "" when none
    # Only the waiver fields whose columns the file has.
    fields: dict = field(default_factory=dict)


@dataclass
class ParsedRegister:
    rows: list[Row]
    errors: list[LineError]
    columns: list[str]  # fields found, in file order
    ignored_columns: list[str]


def split_row(line: str) -> list[str]:
    """The cells of ``| a | b |``, with ``\\|`` kept as a literal pipe."""
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|") and not text.endswith("\\|"):
        text = text[:-1]
    cells = re.split(r"(?<!\\)\|", text)
    return [cell.strip().replace("\\|", "|").replace("<br>", "\n") for cell in cells]


def _is_separator(cells: list[str]) -> bool:
    return all(_SEPARATOR_CELL.fullmatch(cell.replace(" ", "")) for cell in cells)


def _header_fields(cells: list[str]) -> list[str | None]:
    return [COLUMNS.get(" ".join(cell.lower().split())) for cell in cells]


def register_parse(text: str) -> ParsedRegister:
    """Read the register table of ``text``; every unreadable line is an error."""
    lines = text.splitlines()
    start = next(
        (
            number
            for number, line in enumerate(lines)
            if line.strip().startswith("|")
            and set(REQUIRED) <= set(_header_fields(split_row(line)))
        ),
        None,
    )
    if start is None:
        return ParsedRegister(
            rows=[],
            errors=[
                LineError(
                    0,
                    "no table with the columns " + ", ".join(REQUIRED) + " was found",
                )
            ],
            columns=[],
            ignored_columns=[],
        )

    headers = split_row(lines[start])
    fields = _header_fields(headers)
    errors: list[LineError] = []
    duplicated = {f for f in fields if f and fields.count(f) > 1}
    if duplicated:
        errors.append(
            LineError(
                start + 1, f"columns given twice: {', '.join(sorted(duplicated))}"
            )
        )
    rows: list[Row] = []
    seen: dict[str, int] = {}
    secret_names = {spec.name for spec in inventory()}

    first = start + 1
    if first < len(lines) and _is_separator(split_row(lines[first])):
        first += 1
    else:
        errors.append(LineError(start + 2, "the header is not followed by |---|"))
    for number in range(first, len(lines)):
        line = lines[number]
        if not line.strip().startswith("|"):
            break  # the table ends at its first non-table line
        cells = split_row(line)
        if len(cells) != len(headers):
            errors.append(
                LineError(
                    number + 1,
                    f"has {len(cells)} cells where the header has {len(headers)}",
                )
            )
            continue
        values = {f: cell for f, cell in zip(fields, cells, strict=True) if f}
        row, problems = _row(number + 1, values, secret_names)
        if row and row.reference in seen:
            problems.append(
                f"ID {row.reference} is already on line {seen[row.reference]}"
            )
        if problems:
            errors.extend(LineError(number + 1, p) for p in problems)
        elif row:
            seen[row.reference] = row.line
            rows.append(row)
    return ParsedRegister(
        rows=rows,
        errors=errors,
        columns=[f for f in fields if f],
        ignored_columns=[h for h, f in zip(headers, fields, strict=True) if not f],
    )


def _row(line: int, values: dict, secret_names: set[str]) -> tuple[Row | None, list]:
    problems = []
    reference = values["reference"]
    if not REFERENCE.fullmatch(reference):
        problems.append(f"ID {reference!r} is not an ID (letters, digits, - . _)")

    fields: dict = {}
    item = values["item"]
    named = SECRET_NAME.fullmatch(item)
    if not item:
        problems.append("Item is empty")
    elif named and (item.startswith("`") or named.group(1) in secret_names):
        # A name in backticks, or a bare inventory name: a secret.
        if named.group(1) not in secret_names:
            problems.append(f"Item {item} names no secret in the inventory")
        fields["item"] = named.group(1)
        fields["secret"] = named.group(1)
    else:
        fields["item"] = item
        fields["secret"] = ""
    if len(fields.get("item", "")) > 200:
        problems.append("Item is longer than 200 characters")

    risk = values["risk"].lower()
    if risk not in Risk.values:
        problems.append(
            f"Risk {values['risk']!r} is not one of {', '.join(Risk.values)}"
        )
    fields["risk"] = risk

    fields["owner"] = values["owner"]
    if values["owner"].lower() in EMPTY:
        problems.append("Owner is empty")

    deadline = _date(values["deadline"])
    if deadline is None:
        problems.append(f"Deadline {values['deadline']!r} is not a YYYY-MM-DD date")
    fields["deadline"] = deadline

    status = STATUSES.get(" ".join(values["status"].lower().split()))
    if status is None:
        problems.append(
            f"Status {values['status']!r} is not one of "
            + ", ".join(label for label in STATUS_LABELS.values())
        )
    approver = "" if values["approver"].lower() in EMPTY else values["approver"]

    approved_at = values.get("approved_at", "")
    if approved_at.lower() not in EMPTY and _date(approved_at[:10]) is None:
        problems.append(
            f"Approved at {values['approved_at']!r} does not start with a "
            "YYYY-MM-DD date"
        )
    for name in ("justification", "compensating_control"):
        if name in values:
            fields[name] = "" if values[name] in EMPTY else values[name]

    if problems or status is None:
        return None, problems
    return Row(line, reference, status, approver, fields), []


def _date(text: str) -> date | None:
    if not ISO_DATE.fullmatch(text.strip()):
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\r\n", "\n").replace("\n", "<br>")


def register_render(waivers, *, title: str, generated_at: str) -> str:
    """The register as the team's Markdown file, one row per waiver."""
    lines = [
        f"# {title}",
        "",
        f"Exported from opsadmin at {generated_at}. Status changes and approvals "
        "are made in the admin; an import only updates the other columns.",
        "",
        "| " + " | ".join(header for header, _ in EXPORT_HEADERS) + " |",
        "|" + "|".join("---" for _ in EXPORT_HEADERS) + "|",
    ]
    for waiver in waivers:
        values = {
            "reference": waiver.reference,
            "item": f"`{waiver.secret}`" if waiver.secret else waiver.item,
            "risk": waiver.risk,
            "owner": waiver.owner.get_username(),
            "deadline": waiver.deadline.isoformat(),
            "status": STATUS_LABELS[WaiverStatus(waiver.status)],
            "approver": waiver.approved_by.get_username() if waiver.approved_by else "",
            "approved_at": waiver.approved_at.isoformat(timespec="seconds")
            if waiver.approved_at
            else "",
            "justification": waiver.justification,
            "compensating_control": waiver.compensating_control,
        }
        lines.append(
            "| " + " | ".join(_cell(values[name]) for _, name in EXPORT_HEADERS) + " |"
        )
    return "\n".join(lines) + "\n"
