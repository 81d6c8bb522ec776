from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError


class DegreeValidationError(ValidationError):
    "A program, module, homework or option whose values do not fit"


class EnrollmentError(UserError):
    "A degree enrollment changed other than by its workflow"


class FormError(UserError):
    "A registration form refused: a field missing or not valid"


class StudyError(UserError):
    "A module that cannot open or complete now"


class SubmissionError(UserError):
    "A homework submission or grade refused"


class FollowupError(UserError):
    "A follow-up that its author may not write"


class ConfigurationError(ValidationError):
    "A score rule that is not valid"


class MentorError(UserError):
    "A mentor assignment, complaint or withdrawal refused"


class LedgerError(UserError):
    "A movement of the mentor ledger changed other than by its wizards"
