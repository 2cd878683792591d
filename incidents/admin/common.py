"""Pieces shared by the incidents admin pages."""

from datetime import datetime

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from opsadmin.admin import ReadOnlyMixin

ADMIN_CSS = {"all": ["incidents/admin.css"]}


def badge(text: str, colour: str):
    """A coloured word; colours are classes in incidents/admin.css (the CSP
    allows no inline style)."""
    return format_html(
        '<span class="incidents-badge incidents-{}">{}</span>', colour, text
    )


def bullet_list(items, css_class: str = ""):
    if not items:
        return "-"
    return format_html(
        '<ul class="{}">{}</ul>',
        css_class,
        format_html_join("", "<li>{}</li>", ((item,) for item in items)),
    )


def _cell(value):
    if isinstance(value, datetime):
        # The operator's zone (OperatorTimezoneMiddleware), to the second.
        return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S %Z}"
    return value


def table(header: list[str], rows: list[list]):
    if not rows:
        return "-"
    head = format_html_join("", "<th>{}</th>", ((h,) for h in header))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", "<td>{}</td>", ((_cell(cell),) for cell in row)),)
            for row in rows
        ),
    )
    return format_html(
        "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body
    )


class ReadOnlyInline(ReadOnlyMixin, admin.TabularInline):
    # incidents/admin.css hides the row titles the tabular template repeats.
    classes = ["incidents-record"]
    extra = 0

    class Media:
        css = ADMIN_CSS

    can_delete = False
    show_change_link = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields


def form_page(
    model_admin,
    request,
    *,
    title: str,
    form: forms.Form,
    submit: str,
    obj=None,
    intro: str = "",
    danger: bool = False,
):
    """One small form on an admin page (posts back to its own URL)."""
    return TemplateResponse(
        request,
        "admin/incidents/form.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "opts": model_admin.opts,
            "original": obj,
            "form": form,
            "submit": submit,
            "intro": intro,
            "danger": danger,
            "media": model_admin.media + form.media,
        },
    )


def require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


def back_to(obj_url: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(obj_url)
