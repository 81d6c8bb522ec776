from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError


class CourseValidationError(ValidationError):
    pass


class EnrollmentError(UserError):
    pass
