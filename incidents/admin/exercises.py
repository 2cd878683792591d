"""Tabletop scenarios and exercises, run from the exercise's page."""

from typing import cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from simple_history.admin import SimpleHistoryAdmin

from incidents.admin.common import (
    ADMIN_CSS,
    ReadOnlyInline,
    badge,
    bullet_list,
    form_page,
    require,
)
from incidents.models import (
    ActionItem,
    Exercise,
    ExerciseNote,
    Inject,
    InjectDelivery,
    Participant,
    Scenario,
)
from incidents.services.exercises import (
    ExerciseError,
    exercise_complete,
    exercise_deliver_next,
    exercise_note_add,
    exercise_record_gaps,
    exercise_start,
)


class InjectInline(admin.TabularInline):
    model = Inject
    fields = ["position", "offset_minutes", "text", "expected_response"]
    extra = 0


@admin.register(Scenario)
class ScenarioAdmin(SimpleHistoryAdmin):
    list_display = ["title", "severity", "injects", "last_run"]
    fields = ["slug", "title", "severity", "summary", "objectives"]
    inlines = [InjectInline]

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="injects")
    def injects(self, obj):
        return obj.injects.count()

    @admin.display(description="last completed")
    def last_run(self, obj):
        last = obj.exercises.filter(completed_at__isnull=False).order_by(
            "-completed_at"
        )
        exercise = last.first()
        return exercise.completed_at.date() if exercise else "never"


class ParticipantInline(admin.TabularInline):
    model = Participant
    fields = ["user", "role"]
    extra = 0


class DeliveryInline(ReadOnlyInline):
    model = InjectDelivery
    fields = ["delivered_at", "inject", "inject_text", "delivered_by"]
    verbose_name_plural = "injects delivered"

    @admin.display(description="text")
    def inject_text(self, obj):
        return obj.inject.text


class NoteInline(ReadOnlyInline):
    model = ExerciseNote
    fields = ["at", "kind", "text", "inject", "author"]
    verbose_name_plural = "decisions and findings"


class ExerciseActionItemInline(admin.TabularInline):
    model = ActionItem
    fk_name = "exercise"
    fields = ["title", "owner", "due_on", "status"]
    extra = 0


class NoteForm(forms.Form):
    kind = forms.ChoiceField(choices=ExerciseNote.Kind.choices)
    text = forms.CharField(widget=forms.Textarea)
    inject = forms.ModelChoiceField(Inject.objects.none(), required=False)


class CompleteForm(forms.Form):
    outcome = forms.CharField(
        widget=forms.Textarea,
        help_text="How it went, in a few sentences: what held, what did not.",
    )


class ConfirmForm(forms.Form):
    pass


_STATUS_COLOURS = {
    Exercise.Status.PLANNED: "grey",
    Exercise.Status.RUNNING: "blue",
    Exercise.Status.COMPLETED: "green",
}


@admin.register(Exercise)
class ExerciseAdmin(SimpleHistoryAdmin):
    list_display = [
        "title",
        "scenario",
        "status_badge",
        "facilitator",
        "completed_at",
        "outcome_short",
        "findings",
        "items",
    ]
    list_filter = ["status", "scenario"]
    list_select_related = ["scenario", "facilitator"]
    fields = [
        "scenario",
        "title",
        "facilitator",
        "scheduled_for",
        "inject_delivery",
        "status",
        "started_at",
        "completed_at",
        "outcome",
        "record_gaps",
    ]
    readonly_fields = ["status", "started_at", "completed_at", "outcome", "record_gaps"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status != Exercise.Status.PLANNED:
            # Its injects are being delivered: the scenario and how they
            # arrive are fixed once it starts.
            fields += ["scenario", "inject_delivery"]
        return fields

    inlines = [ParticipantInline, DeliveryInline, NoteInline, ExerciseActionItemInline]
    change_form_template = "admin/incidents/exercise/change_form.html"

    class Media:
        css = ADMIN_CSS

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        views = [
            ("start", self.start_view),
            ("inject", self.inject_view),
            ("note", self.note_view),
            ("complete", self.complete_view),
        ]
        return [
            path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(view),
                name=f"incidents_exercise_{name}",
            )
            for name, view in views
        ] + super().get_urls()

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.status, _STATUS_COLOURS[obj.status])

    @admin.display(description="outcome")
    def outcome_short(self, obj):
        return (obj.outcome[:80] + "…") if len(obj.outcome) > 80 else obj.outcome or "-"

    @admin.display(description="findings")
    def findings(self, obj):
        return obj.notes.filter(kind=ExerciseNote.Kind.FINDING).count()

    @admin.display(description="action items")
    def items(self, obj):
        return obj.action_items.count()

    @admin.display(description="still missing from the record")
    def record_gaps(self, obj):
        if obj.pk is None or obj.status == Exercise.Status.COMPLETED:
            return "-"
        return bullet_list(exercise_record_gaps(obj), "incidents-findings")

    def _exercise(self, request, object_id) -> Exercise:
        exercise = self.get_object(request, unquote(object_id))
        if exercise is None:
            raise Http404
        require(self.has_change_permission(request, exercise))
        return exercise

    def _back(self, exercise):
        return HttpResponseRedirect(
            reverse("admin:incidents_exercise_change", args=[exercise.pk])
        )

    def _act(self, request, exercise, call, done):
        try:
            result = call()
        except ExerciseError as exc:
            self.message_user(request, str(exc), level=messages.ERROR)
            return None
        self.message_user(request, done(result) if callable(done) else done)
        return self._back(exercise)

    def start_view(self, request, object_id):
        exercise = self._exercise(request, object_id)
        if request.method == "POST":
            done = self._act(
                request,
                exercise,
                lambda: exercise_start(exercise_id=exercise.pk, actor=request.user),
                "Started.",
            )
            return done or self._back(exercise)
        return form_page(
            self,
            request,
            title="Start the exercise",
            form=ConfirmForm(),
            submit="Start",
            obj=exercise,
        )

    def inject_view(self, request, object_id):
        exercise = self._exercise(request, object_id)
        if request.method == "POST":

            def said(delivery):
                if delivery is None:
                    return "Every inject has been delivered."
                inject = delivery.inject
                return f"Inject {inject.position} delivered: {inject.text}"

            done = self._act(
                request,
                exercise,
                lambda: exercise_deliver_next(
                    exercise_id=exercise.pk, actor=request.user
                ),
                said,
            )
            return done or self._back(exercise)
        return form_page(
            self,
            request,
            title="Deliver the next inject",
            form=ConfirmForm(),
            submit="Deliver the next inject",
            obj=exercise,
            intro="The players get it by Slack or e-mail, marked EXERCISE.",
        )

    def note_view(self, request, object_id):
        exercise = self._exercise(request, object_id)
        form = NoteForm(request.POST or None)
        inject_field = cast(forms.ModelChoiceField, form.fields["inject"])
        inject_field.queryset = exercise.scenario.injects.all()
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            done = self._act(
                request,
                exercise,
                lambda: exercise_note_add(
                    exercise_id=exercise.pk,
                    kind=data["kind"],
                    text=data["text"],
                    inject=data["inject"],
                    author=request.user,
                ),
                f"Noted the {data['kind']}.",
            )
            if done:
                return done
        return form_page(
            self,
            request,
            title="Note a decision or finding",
            form=form,
            submit="Note it",
            obj=exercise,
        )

    def complete_view(self, request, object_id):
        exercise = self._exercise(request, object_id)
        form = CompleteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            done = self._act(
                request,
                exercise,
                lambda: exercise_complete(
                    exercise_id=exercise.pk,
                    outcome=form.cleaned_data["outcome"],
                    actor=request.user,
                ),
                "Completed: the exercise and its outcome are on record.",
            )
            if done:
                return done
        gaps = exercise_record_gaps(exercise)
        return form_page(
            self,
            request,
            title="Complete the exercise",
            form=form,
            submit="Complete",
            obj=exercise,
            intro="Still missing: " + "; ".join(gaps)
            if gaps
            else "The record is complete.",
        )
