"""Pieces shared by the finance admin pages.

Finance tables are the platform's largest (tens of millions of postings,
millions of wallets and operations), so every page here is built not to
read a whole table: no exact COUNT(*) on unfiltered lists, filters whose
choices come from settings rather than SELECT DISTINCT, and a search that
matches whole ids, e-mails, references and keys through their indexes.

Nothing here moves money. Rows are read-only unless a page says otherwise;
money moves through finance.services (or the overrides app's two-person
flow), never by editing a row.
"""

from datetime import timedelta
from functools import cached_property

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q, QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode

from finance.money import format_amount
from opsadmin.admin import ReadOnlyMixin
from opsadmin.logging import redacted

# The largest value a bigint primary key can hold; a longer number typed
# into the search box would make PostgreSQL refuse the whole query.
_BIGINT_MAX = 2**63 - 1
# A related search term (an e-mail, a transaction key) matches one row, or a
# few for a case-insensitive e-mail; more than this is not a search.
_RELATED_MATCHES = 100


class EstimatedCountPaginator(Paginator):
    """Counts without reading a huge table.

    An unfiltered list on PostgreSQL takes the planner's row estimate
    (pg_class.reltuples, kept fresh by autovacuum) once it is above
    ``exact_below``; a filtered or small list counts at most ``cap + 1``
    rows, so its COUNT stops early. The pagination template says "about"
    or "more than" accordingly.
    """

    exact_below = 10_000
    cap = 10_000
    is_estimate = False
    is_capped = False

    @cached_property
    def count(self):
        queryset: QuerySet = self.object_list  # type: ignore[assignment]
        if not queryset.query.where:
            estimate = _estimated_rows(queryset.db, queryset.model._meta.db_table)
            if estimate is not None and estimate >= self.exact_below:
                self.is_estimate = True
                return estimate
        found = queryset.order_by()[: self.cap + 1].count()
        if found > self.cap:
            self.is_capped = True
            return self.cap
        return found


def _estimated_rows(alias: str, table: str) -> int | None:
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table]
        )
        row = cursor.fetchone()
    # -1 until the table is first vacuumed or analysed.
    return row[0] if row and row[0] >= 0 else None


def _search_path(model, path: str):
    """Split ``path`` at its first relation: (field searched, relation, rest).

    ``customer__email__iexact`` on Wallet gives (Customer.email, Wallet.customer,
    ``email__iexact``); a local path gives (field, None, path).
    """
    head, _, rest = path.partition("__")
    field = model._meta.get_field(head)
    if not field.is_relation:
        return field, None, path
    target, _, _ = _search_path(field.related_model, rest)
    return target, field, rest


class FinanceAdmin(admin.ModelAdmin):
    """The base of every finance page: cheap counts and an exact search.

    ``search_fields`` name fields (optionally with a lookup, e.g.
    ``email__iexact``, or across one relation, ``customer__email__iexact``)
    that the search matches whole: the typed term is
    converted to each field's type and fields it cannot be are skipped, so
    "42" finds id 42 through the primary key and never becomes a
    ``CAST(id AS text) LIKE`` over millions of rows.
    """

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    # Facets count every filter choice over the whole list.
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    actions = None

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term or not self.search_fields:
            return queryset, False
        query = Q()
        for path in self.search_fields:
            field, relation, rest = _search_path(self.model, path)
            try:
                value = field.to_python(term)
            except ValidationError:
                continue
            if isinstance(value, int) and not -_BIGINT_MAX <= value <= _BIGINT_MAX:
                continue
            if relation is None:
                query |= Q(**{path: value})
                continue
            # The related ids first, then an IN list: an OR of two indexed
            # conditions on this table, where a join or subquery under OR
            # would make PostgreSQL read all of it.
            related = relation.related_model._base_manager.filter(
                **{rest: value}
            ).order_by()
            ids = list(related.values_list("pk", flat=True)[:_RELATED_MATCHES])
            if ids:
                query |= Q(**{f"{relation.name}__in": ids})
        if not query:
            return queryset.none(), False
        return queryset.filter(query), False


class ReadOnlyAdmin(ReadOnlyMixin, FinanceAdmin):
    """Rows nobody adds, changes or deletes here, superusers included."""

    def get_readonly_fields(self, request, obj=None):
        return self.fields or [f.name for f in self.model._meta.fields]


class ReadOnlyInline(ReadOnlyMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True
    # A transaction has a handful of postings and an operation a handful of
    # transitions; the cap only guards the page against a pathological row.
    max_rows = 50

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        limited = queryset.order_by(*self.ordering or ["pk"])
        ids = list(limited.values_list("pk", flat=True)[: self.max_rows])
        return queryset.filter(pk__in=ids)

    def get_readonly_fields(self, request, obj=None):
        return self.fields


class CurrencyFilter(admin.SimpleListFilter):
    """Currencies from settings: no SELECT DISTINCT over a huge table."""

    title = "currency"
    parameter_name = "currency"

    def lookups(self, request, model_admin):
        return [(code, code) for code in settings.SUPPORTED_CURRENCIES]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(currency=self.value())
        return queryset


class ProviderFilter(admin.SimpleListFilter):
    """Providers from settings.PROVIDERS, for the same reason."""

    title = "provider"
    parameter_name = "provider"

    def lookups(self, request, model_admin):
        return [(code, code) for code in settings.PROVIDERS]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(provider=self.value())
        return queryset


class RecentFilter(admin.SimpleListFilter):
    """Rows of the last hour, day, week or month, by an indexed time field.

    For tables too big for a date hierarchy: Django's drill-down selects
    the DISTINCT years (or months) of the whole list, which reads all of
    it; a range from now is one index range scan.
    """

    title = "created"
    parameter_name = "recent"
    field_name = "created_at"
    RANGES = {
        "1h": ("last hour", timedelta(hours=1)),
        "24h": ("last 24 hours", timedelta(days=1)),
        "7d": ("last 7 days", timedelta(days=7)),
        "30d": ("last 30 days", timedelta(days=30)),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.RANGES.items()]

    def queryset(self, request, queryset):
        chosen = self.RANGES.get(self.value() or "")
        if chosen is None:
            return queryset
        since = timezone.now() - chosen[1]
        return queryset.filter(**{f"{self.field_name}__gte": since})


def admin_link(obj, label=None):
    """A link to ``obj``'s admin page (the label alone if it has none)."""
    if obj is None:
        return "-"
    opts = obj._meta
    return change_link(opts.app_label, opts.model_name, obj.pk, label or str(obj))


def change_link(app_label: str, model_name: str, pk, label):
    if pk is None:
        return "-"
    try:
        url = reverse(f"admin:{app_label}_{model_name}_change", args=[pk])
    except NoReverseMatch:
        return label
    return format_html('<a href="{}">{}</a>', url, label)


def changelist_link(model_name: str, label: str, **params):
    """A link to a finance list narrowed by ``params`` (field lookups)."""
    url = reverse(f"admin:finance_{model_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(params), label)


def money(amount: int | None, currency: str) -> str:
    return "-" if amount is None else format_amount(amount, currency)


def local_time(value) -> str:
    """A stored UTC time in the operator's zone (OperatorTimezoneMiddleware)."""
    if value is None:
        return "-"
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S %Z}"


def human_age(age: timedelta) -> str:
    minutes = max(int(age.total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes // 1440} d {minutes % 1440 // 60} h"


def age_in_state(operation) -> str:
    """How long the operation has been in its state, and since when."""
    since = operation.state_changed_at
    return format_html(
        '<span title="since {}">{}</span>',
        local_time(since),
        human_age(timezone.now() - since),
    )


def safe_text(value) -> str:
    """Free text from a provider with card and bank numbers masked."""
    return redacted(value) if value else "-"
