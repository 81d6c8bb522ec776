from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError


class CourseValidationError(ValidationError):
    pass


class EnrollmentError(UserError):
    pass


class InputError(UserError):
    "A parameter of a call is not what the call accepts"
