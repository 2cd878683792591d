"""Why an override request, or a step of its workflow, was refused.

Every message is fit to show the person who tried; none of these leaves
anything written behind (each service step runs in one transaction).
"""


class OverrideError(Exception):
    pass


class UnknownAction(OverrideError):
    pass


class InvalidParams(OverrideError):
    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        text = "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in errors.items()
        )
        super().__init__(f"invalid parameters: {text}")


class ActionNotApplicable(OverrideError):
    """The action cannot apply to the target as it stands now."""


class NotPermitted(OverrideError):
    """The user lacks the role, or is the wrong person for this step."""


class StepUpRequired(OverrideError):
    pass


class RequestExpired(OverrideError):
    pass


class TargetMovedOn(OverrideError):
    """The target's version is not the one the request (or approval) was for."""


class AlreadySettled(OverrideError):
    """Another step (or another person, concurrently) got there first."""


class Tampered(OverrideError):
    """A stored hash no longer matches the request's content."""


class PreviewMismatch(OverrideError):
    """Execution would write other postings than the approver was shown."""
