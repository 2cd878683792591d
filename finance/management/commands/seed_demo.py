"""Seed a realistic demo platform, or a benchmark-sized one.

    manage.py seed_demo                      # the demo: 3,000 customers
    manage.py seed_demo --if-empty           # the same, a no-op when seeded
    manage.py seed_demo --reset              # wipe the demo data, seed again
    manage.py seed_demo --size 10m           # ~10M postings, ~1M wallets
    manage.py seed_demo --postings 2500000   # any number of postings
    manage.py seed_demo --customers 200 --seed 7

Customers at every onboarding stage, wallets in EUR, GBP and USD, deposits,
withdrawals and payouts in every state with their transitions and a
balanced ledger, some stuck for hours or days, failed and replayed
webhooks, and the sandbox provider's settlement lines, all loaded in bulk
(COPY on PostgreSQL). A few inconsistencies are planted on purpose and
listed at the end (finance/seeding/plan.py says which). Then stuck
detection runs once (PostgreSQL), every installed app's ``demo.seed_demo``
hook is called, and one staff login per role is created; their second
factors are printed once, at the end.

A database that already has customers is refused (exit status 1) unless
``--reset`` (wipe the finance, sandbox, stuck-case, reconciliation and
override rows, then seed) or ``--if-empty`` (do nothing, exit 0). Refused
in production.
"""

import random
from types import SimpleNamespace

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone
from django.utils.module_loading import import_string

from finance.seeding.run import (
    SeedRefused,
    demo_data_exists,
    demo_data_wipe,
    seed_finance,
)

# preset -> (customers, postings); exactly one of them is set
SIZES = {
    "demo": (3_000, None),
    "tiny": (60, None),
    "1m": (None, 1_000_000),
    "10m": (None, 10_000_000),
}


class Command(BaseCommand):
    help = __doc__

    def create_parser(self, *args, **kwargs):
        from argparse import RawDescriptionHelpFormatter

        parser = super().create_parser(*args, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter
        return parser

    def add_arguments(self, parser):
        parser.add_argument(
            "--size",
            choices=sorted(SIZES),
            default="demo",
            help="a preset: demo (3,000 customers, the default), tiny (60), "
            "1m or 10m postings (about ten postings per wallet)",
        )
        parser.add_argument(
            "--postings", type=int, help="add customers until this many postings"
        )
        parser.add_argument("--customers", type=int, help="exactly this many")
        parser.add_argument(
            "--seed", type=int, default=1, help="the same seed gives the same data"
        )
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--reset",
            action="store_true",
            help="wipe the existing demo data first (new logins are printed)",
        )
        group.add_argument(
            "--if-empty",
            action="store_true",
            help="when demo data exists, do nothing and exit 0",
        )
        parser.add_argument(
            "--no-hooks",
            action="store_true",
            help="finance data only: no stuck detection, app hooks or logins "
            "(benchmarks)",
        )

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("seed_demo is refused in production")
        existing = demo_data_exists()
        if existing and options["if_empty"]:
            self.stdout.write(
                f"The database already holds demo data ({existing:,} customers): "
                "nothing done. The staff logins were printed when it was "
                "seeded (passwords are demo-<username>-pass); to get new "
                "second factors, run `manage.py seed_demo --reset` (with the "
                "demo: `make demo DEMO_ARGS=--reset`)."
            )
            return
        if existing and not options["reset"]:
            raise CommandError(
                f"The database already holds {existing:,} customers; seeding "
                "again would duplicate the platform. Run `manage.py seed_demo "
                "--reset` to wipe the demo data and seed it again (new logins "
                "are printed), or --if-empty to leave it as it is."
            )
        if options["reset"]:
            tables = demo_data_wipe()
            self.stdout.write(f"Reset: emptied {tables} tables.")

        customers, postings = SIZES[options["size"]]
        if options["postings"] or options["customers"]:
            customers, postings = options["customers"], options["postings"]
        now = timezone.now()
        target = f"{customers:,} customers" if customers else f"{postings:,} postings"
        self.stdout.write(
            f"Seeding {target} (seed {options['seed']}) on {connection.vendor}..."
        )
        try:
            result = seed_finance(
                seed=options["seed"],
                now=now,
                customers=customers,
                postings=postings,
                progress=lambda line: self.stdout.write("  " + line),
            )
        except SeedRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Loaded {result.customers:,} customers, {result.wallets:,} wallets, "
            f"{result.postings:,} postings in {result.seconds:.1f}s "
            f"({result.postings / result.seconds:,.0f} postings/s)."
        )
        if options["no_hooks"]:
            self._report_plants(result.plants)
            return

        self._detect_stuck(now)
        context = SimpleNamespace(
            now=now, stdout=self.stdout, rng=random.Random(options["seed"])
        )
        for config in apps.get_app_configs():
            try:
                hook = import_string(f"{config.name}.demo.seed_demo")
            except ImportError:
                continue
            hook(context)

        from opsadmin.demo import demo_staff_create

        logins = demo_staff_create()
        self._report_plants(result.plants)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Demo staff logins (shown only now)"))
        self.stdout.write(
            "Log in at /admin/ with the password, then the authenticator code "
            "(or one backup code):"
        )
        for line in logins:
            self.stdout.write("  " + line)

    def _detect_stuck(self, now) -> None:
        if connection.vendor != "postgresql" or "stuck" not in {
            c.label for c in apps.get_app_configs()
        }:
            return
        from stuck.services import stuck_detect

        detection = stuck_detect(now=now)
        self.stdout.write(f"Stuck detection: {detection.counts}")

    def _report_plants(self, plants) -> None:
        self.stdout.write("Planted inconsistencies (deliberate):")
        for wallet, error in sorted(plants.wallet_balance.items()):
            self.stdout.write(
                f"  wallet {wallet}: cached balance {error:+d} off its postings "
                "(deep reconciliation, wallet_balance)"
            )
        for kind, reference, note in plants.settlement:
            self.stdout.write(
                f"  sandbox statement, yesterday: {kind} {reference} ({note}; "
                "daily report)"
            )
