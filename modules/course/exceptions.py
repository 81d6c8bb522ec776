from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError


class CourseValidationError(ValidationError):
    pass


class EnrollmentError(UserError):
    pass


class InputError(UserError):
    "A parameter of a call is not what the call accepts"


class CallerError(UserError):
    "A call by a user whose groups or companies may not make it"


class StateError(UserError):
    "A button clicked on a record whose state no longer allows it"
