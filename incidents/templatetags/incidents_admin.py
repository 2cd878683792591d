from django import template

from incidents.selectors import exercise_last_completed

register = template.Library()


@register.inclusion_tag("admin/incidents/last_exercise.html", takes_context=True)
def last_exercise(context):
    """The admin index's note of the last completed tabletop exercise."""
    user = context["request"].user
    return {
        "exercise": exercise_last_completed(),
        "can_view": user.has_perm("incidents.view_exercise"),
    }
