"""A deterministic demo platform: rows generated from a seed and a size.

``Generator(seed=..., now=..., ...)`` yields the platform customer by
customer, in blocks of rows per table (``seeding.tables``), so a writer
can load each block with one COPY per table and memory stays flat however
large the size. The same seed, size, start ids and ``now`` give the same
rows.

What a customer gets (times spread over the 60 days before ``now``, each
row's ``created <= state_changed_at <= now``):

- an onboarding stage: signed up, KYC submitted, KYC approved (a wallet, no
  money yet) or deposited;
- a wallet in EUR, GBP or USD, and a quarter of them a second one;
- deposits in every state (pending, succeeded, failed, charged back) and
  withdrawals in every state with their payouts (created, processing,
  paid, failed, returned), each with its transition rows and the journal
  transactions and postings docs/architecture.md says its state implies;
- a few of the waiting ones stuck for hours or days, beyond the default
  stuck rules (stuck/migrations/0002), the others fresh;
- webhook deliveries for the provider's moves of the last ``WEBHOOK_DAYS``
  days (older ones count as purged by retention): applied ones, failed ones
  replayed later, duplicates, and failed ones never applied (stuck);
- the sandbox provider's settlement lines for every money movement, so the
  daily report of any day matches, except the planted discrepancies.

The deliberate inconsistencies (``Plants``), and nothing else:

- deep reconciliation (``wallet_balance``): the wallets whose ordinal among
  all generated wallets is 7, 77, 777, ... carry a cached balance off by a
  known amount from the sum of their postings;
- daily report for yesterday (UTC): the first deposit settled yesterday is
  reported with an amount 100 minor units too high, the first payout paid
  yesterday is missing from the statement, and one line the platform cannot
  know (``po_demo_unknown``) appears at 12:00.

Every journal transaction's postings are written together in one COPY (or
one bulk insert), which keeps migration 0002's per-statement balance rule.
"""

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count

DAY = 86_400
HOUR = 3_600
HISTORY_DAYS = 60
WEBHOOK_DAYS = 7
PROVIDER = "sandbox"
CURRENCIES = ("EUR", "GBP", "USD")
CURRENCY_WEIGHTS = (60, 25, 15)
COUNTRIES = {"EUR": ("DE", "FR", "NL", "ES", "IT"), "GBP": ("GB",), "USD": ("US",)}
# A flat withdrawal fee per currency; GBP withdrawals are free, so the
# hold and release without a fee posting appear too.
FEES = {"EUR": 100, "GBP": 0, "USD": 150}
FIRST_NAMES = [
    "Ada",
    "Ben",
    "Chloe",
    "Dario",
    "Elif",
    "Farah",
    "Goran",
    "Hana",
    "Ivo",
    "Jana",
    "Kofi",
    "Lena",
    "Marek",
    "Nia",
    "Omar",
    "Petra",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Uma",
    "Viktor",
    "Wen",
    "Xenia",
    "Yusuf",
    "Zofia",
]
LAST_NAMES = [
    "Adler",
    "Baker",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Horvat",
    "Ito",
    "Jansen",
    "Kovac",
    "Larsen",
    "Moreau",
    "Novak",
    "Oyelaran",
    "Petrov",
    "Quaye",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ulrich",
    "Varga",
    "Weber",
    "Yilmaz",
    "Zimmer",
]
BANKS = ("Sparkasse", "Barclays", "ING", "Chase", "Revolut", "Monzo")


@dataclass
class Plants:
    """The planted inconsistencies, for the command's report and the tests."""

    # wallet id -> cached balance minus the sum of its postings
    wallet_balance: dict[int, int] = field(default_factory=dict)
    # (kind, provider reference, note) of the sandbox statement plants
    settlement: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Platform:
    """Account ids of the platform accounts, per currency."""

    clearing: dict[str, int]
    transit: dict[str, int]
    fees: dict[str, int]


class Block(defaultdict):
    """Rows per table key ("customer", "posting", ...) of some customers;
    ``block[key]`` makes the table's list on its first row."""

    def __init__(self):
        super().__init__(list)

    def rows(self, key: str) -> list:
        return self[key]


class _Random(random.Random):
    """``random.Random`` whose ``randint`` and ``choice`` draw exactly the
    same bits as the standard ones (``_randbelow``: the bit length of the
    range, redrawn while out of range) without re-checking their arguments
    on every call, which was a fifth of the generator's time."""

    def randint(self, a: int, b: int) -> int:
        n = b - a + 1
        if n <= 0:
            raise ValueError(f"empty range for randint({a}, {b})")
        k = n.bit_length()
        r = self.getrandbits(k)
        while r >= n:
            r = self.getrandbits(k)
        return a + r

    def choice(self, seq):
        n = len(seq)
        if not n:
            raise IndexError("cannot choose from an empty sequence")
        k = n.bit_length()
        r = self.getrandbits(k)
        while r >= n:
            r = self.getrandbits(k)
        return seq[r]


def _planted_ordinal(n: int) -> bool:
    # 7, 77, 777, ...: a handful at any size, spread over the table.
    return n >= 7 and set(str(n)) == {"7"}


class Generator:
    def __init__(
        self,
        *,
        seed: int,
        now: int,
        platform: Platform,
        start_ids: dict[str, int],
        settlement: bool = True,
    ):
        self.rng = _Random(seed)
        self.seed = seed
        self.now = now
        self.platform = platform
        self.settlement = settlement
        # table key -> a function returning its next id
        self.ids: defaultdict[str, Callable[[], int]] = defaultdict(
            lambda: count(1).__next__
        )
        self.ids.update(
            {key: count(start).__next__ for key, start in start_ids.items()}
        )
        self.counts: dict[str, int] = {}
        self.plants = Plants()
        self.wallet_ordinal = 0
        yesterday = (now // DAY - 1) * DAY
        self.yesterday = (yesterday, yesterday + DAY)
        self._planted_amount = False
        self._planted_missing = False
        self.block = Block()

    # --- driving ------------------------------------------------------------

    def blocks(self, *, customers: int | None, postings: int | None, per_block: int):
        """Yield Blocks until ``customers`` are made or ``postings`` reached."""
        made = 0
        while True:
            self.block = Block()
            for _ in range(per_block):
                if customers is not None and made >= customers:
                    break
                if postings is not None and self.counts.get("posting", 0) >= postings:
                    break
                self._customer()
                made += 1
            else:
                yield self._finish_block()
                continue
            if self.settlement:
                self._unknown_settlement_line()
            yield self._finish_block()
            return

    def _finish_block(self) -> Block:
        for key, rows in self.block.items():
            self.counts[key] = self.counts.get(key, 0) + len(rows)
        return self.block

    def _id(self, key: str) -> int:
        return self.ids[key]()

    def _uuid(self, kind: int, n: int) -> str:
        return f"{self.seed & 0xFFFFFFFF:08x}-0000-4000-8{kind:03x}-{n:012x}"

    # --- customers and wallets ---------------------------------------------

    def _customer(self) -> None:
        rng, now = self.rng, self.now
        cid = self._id("customer")
        signed = now - rng.randint(DAY, HISTORY_DAYS * DAY)
        stage = rng.random()
        submitted: int | None = None
        approved: int | None = None
        if stage >= 0.08:
            submitted = min(now, signed + rng.randint(600, 2 * DAY))
            if stage >= 0.15:
                approved = min(now, submitted + rng.randint(600, DAY))
        currency = rng.choices(CURRENCIES, CURRENCY_WEIGHTS)[0]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        row = [
            cid,
            self._uuid(1, cid),
            f"{first.lower()}.{last.lower()}.{cid}@example.com",
            f"{first} {last}",
            rng.choice(COUNTRIES[currency]),
            signed,
            submitted,
            approved,
            None,
            rng.random() < 0.005,
        ]
        self.block["customer"].append(row)
        if approved is None:
            return

        currencies = [currency]
        if rng.random() < 0.25:
            currencies.append(rng.choice([c for c in CURRENCIES if c != currency]))
        funded = stage >= 0.22
        for position, wallet_currency in enumerate(currencies):
            first_credit = self._wallet(
                cid, wallet_currency, approved, funded=funded, first=position == 0
            )
            if first_credit is not None and position == 0:
                row[8] = first_credit  # first_deposit_at

    def _wallet(
        self, cid: int, currency: str, opened: int, *, funded: bool, first: bool
    ) -> int | None:
        """A wallet and its operations; returns when its first deposit succeeded."""
        rng = self.rng
        account = self._id("account")
        wallet = self._id("wallet")
        self.block["account"].append(
            [account, "wallet", currency, "", f"wallet {self._uuid(1, cid)} {currency}",
             opened]
        )  # fmt: skip
        self.balance = 0
        self.wallet_account = account
        first_credit = None
        ops = (cid, wallet, account, currency)

        if not funded:
            # KYC approved, no money yet: at most a deposit that failed or waits.
            if rng.random() < 0.4:
                self._deposit(ops, opened, force=rng.choice(["failed", "pending"]))
        else:
            count = 1 + rng.randrange(5)
            times = sorted(rng.randint(opened, self.now) for _ in range(count))
            for n, start in enumerate(times):
                credited = self._deposit(
                    ops, start, force="succeeded" if first and n == 0 else None
                )
                if first_credit is None and credited is not None:
                    first_credit = credited
            if first_credit is not None:
                for _ in range(rng.choice((0, 1, 1, 2))):
                    self._withdrawal(ops, rng.randint(first_credit, self.now))

        self.wallet_ordinal += 1
        balance = self.balance
        if _planted_ordinal(self.wallet_ordinal):
            error = rng.choice((-1, 1)) * rng.randint(1, 50_000)
            self.plants.wallet_balance[wallet] = error
            balance += error
        self.block["wallet"].append([wallet, cid, currency, account, balance, opened])
        return first_credit

    # --- the ledger ------------------------------------------------------------

    def _post(self, key: str, kind: str, op: str, op_id: int, at: int, legs) -> int:
        """One journal transaction and its postings; legs are (account, amount)."""
        block = self.block
        tx = self.ids["ledgertransaction"]()
        block["ledgertransaction"].append([tx, key, kind, op, op_id, "", at])
        postings, posting_id = block["posting"], self.ids["posting"]
        currency, wallet_account = self.currency, self.wallet_account
        for account, amount in legs:
            if amount:
                postings.append([posting_id(), tx, account, amount, currency, at])
                if account == wallet_account:
                    self.balance += amount
        return tx

    def _transition(self, key, op_id, from_state, to_state, via, reason, tx, at):
        self.block[key].append(
            [self.ids[key](), op_id, from_state, to_state, via, reason, tx, at]
        )

    def _age(self, fresh_max: int, stuck_min: int) -> tuple[int, bool]:
        """How long ago a waiting operation last moved: fresh, or stuck."""
        if self.rng.random() < 0.5:
            return self.rng.randint(30, fresh_max), False
        return self.rng.randint(stuck_min, 3 * DAY), True

    # --- deposits --------------------------------------------------------------

    def _deposit(self, ops, start: int, force: str | None = None) -> int | None:
        """A deposit; returns when it was credited, if it was."""
        rng, now = self.rng, self.now
        cid, wallet, account, currency = ops
        self.currency = currency
        state = force
        if state is None:
            r = rng.random()
            state = (
                "succeeded"
                if r < 0.84
                else "failed"
                if r < 0.91
                else "charged_back"
                if r < 0.96
                else "pending"
            )
        did = self._id("deposit")
        amount = rng.randint(10, 500) * 100
        reference = f"pi_{self.seed & 0xFFFF:04x}{did:012x}"
        clearing = self.platform.clearing[currency]
        if state == "pending":
            start = max(start, now - self._age(25 * 60, HOUR)[0])
        self._transition(
            "deposittransition", did, "", "pending", "api", "customer started a "
            "deposit", None, start,
        )  # fmt: skip
        changed, version, credited = start, 1, None

        if state in ("succeeded", "charged_back"):
            changed = credited = min(now, start + rng.randint(5, 600))
            tx = self._post(
                f"deposit:{did}:credit", "deposit_credit", "deposit", did, changed,
                ((clearing, -amount), (account, amount)),
            )  # fmt: skip
            self._transition(
                "deposittransition", did, "pending", "succeeded", "webhook",
                "deposit.succeeded", tx, changed,
            )  # fmt: skip
            self._webhook("deposit.succeeded", "deposit", did, reference, changed)
            self._settle(reference, "deposit", amount, currency, "succeeded", changed)
            version = 2
        if state == "charged_back":
            changed = min(now, changed + rng.randint(DAY, 20 * DAY))
            tx = self._post(
                f"deposit:{did}:chargeback", "deposit_chargeback", "deposit", did,
                changed, ((account, -amount), (clearing, amount)),
            )  # fmt: skip
            self._transition(
                "deposittransition", did, "succeeded", "charged_back", "webhook",
                "deposit.charged_back", tx, changed,
            )  # fmt: skip
            self._webhook("deposit.charged_back", "deposit", did, reference, changed)
            self._settle(
                reference, "chargeback", amount, currency, "charged_back", changed
            )
            version = 3
        if state == "failed":
            changed = min(now, start + rng.randint(5, 600))
            self._transition(
                "deposittransition", did, "pending", "failed", "webhook",
                "deposit.failed: card declined", None, changed,
            )  # fmt: skip
            self._webhook("deposit.failed", "deposit", did, reference, changed)
            version = 2

        self.block["deposit"].append(
            [did, self._uuid(2, did), cid, wallet, amount, currency, PROVIDER,
             reference, state, changed, version, start]
        )  # fmt: skip
        return credited

    # --- withdrawals and payouts ---------------------------------------------

    def _withdrawal(self, ops, start: int) -> None:
        rng, now = self.rng, self.now
        cid, wallet, account, currency = ops
        self.currency = currency
        fee = FEES[currency]
        available = self.balance - fee
        if available < 1_000:
            return
        amount = rng.randint(1_000, available)
        r = rng.random()
        # withdrawal state / payout state
        state, payout_state = (
            ("completed", "paid")
            if r < 0.78
            else ("failed", "failed")
            if r < 0.83
            else ("returned", "returned")
            if r < 0.85
            else ("cancelled", None)
            if r < 0.88
            else ("failed", None)
            if r < 0.89
            else ("processing", "processing")
            if r < 0.95
            else ("processing", "created")
            if r < 0.975
            else ("requested", None)
        )
        # Waiting ones are dated fresh or stuck (never before the money came).
        if state == "requested" or payout_state == "created":
            start = max(start, now - self._age(14 * 60, HOUR)[0])
        elif payout_state == "processing":
            start = max(start, now - self._age(5 * HOUR, 7 * HOUR)[0])

        wid = self._id("withdrawal")
        transit = self.platform.transit[currency]
        fees = self.platform.fees[currency]
        hold = self._post(
            f"withdrawal:{wid}:hold", "withdrawal_hold", "withdrawal", wid, start,
            ((account, -(amount + fee)), (transit, amount), (fees, fee)),
        )  # fmt: skip
        self._transition(
            "withdrawaltransition", wid, "", "requested", "api",
            "customer requested a withdrawal", hold, start,
        )  # fmt: skip
        changed, version = start, 1

        def move(from_state, to_state, via, reason, at, tx=None):
            nonlocal changed, version
            changed, version = at, version + 1
            self._transition(
                "withdrawaltransition", wid, from_state, to_state, via, reason, tx, at
            )

        def release(at):
            return self._post(
                f"withdrawal:{wid}:release", "withdrawal_release", "withdrawal",
                wid, at, ((transit, -amount), (fees, -fee), (account, amount + fee)),
            )  # fmt: skip

        if payout_state is None and state in ("cancelled", "failed"):
            at = min(now, start + rng.randint(60, HOUR))
            reason = (
                "customer cancelled" if state == "cancelled" else "destination refused"
            )
            move("requested", state, "admin", reason, at, release(at))
        elif payout_state is not None:
            created = min(now, start + rng.randint(1, 30))
            move("requested", "processing", "system", "payout created", created)
            payout_changed = self._payout(
                ops, wid, amount, payout_state, created, release
            )
            if state == "completed":
                move("processing", "completed", "system", "payout paid", payout_changed)
            elif state == "failed":
                move("processing", "failed", "system", "payout failed", payout_changed)
            elif state == "returned":
                paid_at = self._paid_at
                move("processing", "completed", "system", "payout paid", paid_at)
                move("completed", "returned", "system", "payout returned",
                     payout_changed)  # fmt: skip

        self.block["withdrawal"].append(
            [wid, self._uuid(3, wid), cid, wallet, amount, currency, PROVIDER, None,
             state, changed, version, start, fee,
             f"{rng.choice(BANKS)} ****{rng.randint(0, 9999):04d}"]
        )  # fmt: skip

    def _payout(self, ops, wid, amount, state, created, release) -> int:
        """The payout of withdrawal ``wid``; returns when it last moved."""
        rng, now = self.rng, self.now
        cid, wallet, account, currency = ops
        pid = self._id("payout")
        reference: str | None = f"po_{self.seed & 0xFFFF:04x}{pid:012x}"
        clearing = self.platform.clearing[currency]
        transit = self.platform.transit[currency]
        self._transition(
            "payouttransition", pid, "", "created", "system",
            "created for its withdrawal", None, created,
        )  # fmt: skip
        changed, version = created, 1
        submitted: int | None = None  # stays NULL until the provider accepts
        settled: int | None = None
        accepted = created
        attempts = 1
        last_error = ""

        if state == "created":
            # Submission timed out; nobody knows whether the provider has it.
            reference = None
            last_error = "timeout: no answer from the provider within 10 s"
            self._attempt(pid, 1, created, "timeout", None, last_error)
        else:
            if rng.random() < 0.1:
                # A first attempt lost to a timeout, the retry accepted.
                self._attempt(pid, 1, created, "timeout", None, "read timeout")
                attempts = 2
            accepted = min(now, created + rng.randint(1, 5) + attempts * 10)
            submitted = changed = accepted
            self._attempt(pid, attempts, submitted, "accepted", 201, "")
            self._transition(
                "payouttransition", pid, "created", "processing", "provider",
                "accepted by the provider", None, submitted,
            )  # fmt: skip
            version = 2
            if state == "processing":
                # The withdrawal was dated fresh or stuck for this state.
                stuck = now - submitted > 6 * HOUR
                if stuck and rng.random() < 0.3:
                    # The provider said paid; applying it failed on our side.
                    self._webhook(
                        "payout.paid", "payout", pid, reference,
                        now - rng.randint(HOUR, 5 * HOUR), failed_only=True,
                    )  # fmt: skip

        if state in ("paid", "returned"):
            changed = settled = min(now, accepted + rng.randint(600, 5 * HOUR))
            self._paid_at = changed
            tx = self._post(
                f"payout:{pid}:paid", "payout_paid", "payout", pid, changed,
                ((transit, -amount), (clearing, amount)),
            )  # fmt: skip
            self._transition(
                "payouttransition", pid, "processing", "paid", "webhook",
                "payout.paid", tx, changed,
            )  # fmt: skip
            self._webhook("payout.paid", "payout", pid, reference, changed)
            self._settle(reference, "payout", amount, currency, "paid", changed)
            version = 3
        if state == "returned":
            changed = min(now, changed + rng.randint(DAY, 5 * DAY))
            tx = self._post(
                f"payout:{pid}:returned", "payout_returned", "payout", pid, changed,
                ((clearing, -amount), (account, amount)),
            )  # fmt: skip
            self._transition(
                "payouttransition", pid, "paid", "returned", "webhook",
                "payout.returned: account closed", tx, changed,
            )  # fmt: skip
            self._webhook("payout.returned", "payout", pid, reference, changed)
            self._settle(
                reference, "payout_return", amount, currency, "returned", changed
            )
            version = 4
        if state == "failed":
            changed = min(now, accepted + rng.randint(600, 5 * HOUR))
            last_error = "beneficiary account closed"
            tx = release(changed)
            self._transition(
                "payouttransition", pid, "processing", "failed", "webhook",
                "payout.failed: beneficiary account closed", tx, changed,
            )  # fmt: skip
            self._webhook("payout.failed", "payout", pid, reference, changed)
            version = 3

        self.block["payout"].append(
            [pid, self._uuid(4, pid), cid, wallet, amount, currency, PROVIDER,
             reference, state, changed, version, created, wid, f"payout-{pid}",
             attempts, last_error, submitted, settled]
        )  # fmt: skip
        return changed

    def _attempt(self, pid, number, at, outcome, status, error) -> None:
        duration = 10_000 if outcome == "timeout" else self.rng.randint(80, 900)
        self.block["payoutattempt"].append(
            [self._id("payoutattempt"), pid, number, at, at + duration // 1000,
             duration, outcome, status, error]
        )  # fmt: skip

    # --- webhooks and the provider's statement ------------------------------

    def _webhook(self, event_type, op, op_id, reference, at, failed_only=False):
        """The provider's deliveries of one event, if recent enough to be kept."""
        if at < self.now - WEBHOOK_DAYS * DAY:
            return
        rng = self.rng
        event_id = f"evt_{self.seed & 0xFFFF:04x}{self._id('event'):012x}"
        payload = {
            "id": event_id,
            "type": event_type,
            "data": {"object": {"id": reference, "object": op}},
        }
        deliveries = self.block["webhookdelivery"]

        def delivery(received, outcome, status, error=""):
            deliveries.append(
                [self._id("webhookdelivery"), PROVIDER, received, event_id,
                 event_type, outcome, status, error, rng.randint(3, 120), payload,
                 op, op_id]
            )  # fmt: skip

        if failed_only:
            delivery(at, "failed", 500, "database error while applying (demo)")
            return
        r = rng.random()
        if r < 0.03:
            # Failed on our side, then replayed by the provider and applied.
            delivery(at, "failed", 500, "database error while applying (demo)")
            at = min(self.now, at + rng.randint(60, HOUR))
        delivery(at, "applied", 200)
        self.block["webhookevent"].append(
            [self._id("webhookevent"), PROVIDER, event_id, event_type, at]
        )
        if r > 0.98:
            delivery(min(self.now, at + rng.randint(5, 600)), "duplicate", 200)

    def _settle(self, reference, line_type, amount, currency, status, at) -> None:
        if not self.settlement:
            return
        omitted, note = False, ""
        if self.yesterday[0] <= at < self.yesterday[1]:
            if line_type == "deposit" and not self._planted_amount:
                self._planted_amount = True
                note = f"planted: amount differs (really {amount})"
                amount += 100
                self.plants.settlement.append(("amount_differs", reference, note))
            elif line_type == "payout" and not self._planted_missing:
                self._planted_missing = True
                omitted, note = True, "planted: missing line"
                self.plants.settlement.append(("missing_line", reference, note))
        self.block["sandboxsettlementline"].append(
            [self._id("sandboxsettlementline"), reference, line_type, amount,
             currency, status, at, omitted, note]
        )  # fmt: skip

    def _unknown_settlement_line(self) -> None:
        reference, note = "po_demo_unknown", "planted: unknown line"
        self.plants.settlement.append(("unknown_line", reference, note))
        self.block["sandboxsettlementline"].append(
            [self._id("sandboxsettlementline"), reference, "payout", 4_200, "EUR",
             "paid", self.yesterday[0] + 12 * HOUR, False, note]
        )  # fmt: skip
