"""The score rules of the mentors: what a late submission, a late grading
and a student's complaint take from the mentor fee"""
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import ModelSingleton, ModelSQL, ModelView, fields
from trytond.modules.course.rpc import RPCInputMixin

from .exceptions import ConfigurationError

DEFAULT_GRADING_DAYS = 7
# The most days grading may take (a typing error beyond)
MAX_GRADING_DAYS = 365
# The largest penalty (a typing error beyond)
MAX_PENALTY = Decimal(10) ** 9
PENALTY_FIELDS = [
    'late_submission_penalty', 'late_grading_penalty', 'complaint_penalty']


def penalty_field(name, string, help):
    "A penalty amount: not negative, to the cent"
    return fields.Numeric(
        string, digits=(16, 2), required=True,
        domain=[(name, '>=', 0)], help=help)


class Configuration(RPCInputMixin, ModelSingleton, ModelSQL, ModelView):
    "Degree Configuration"
    __name__ = 'course.degree.configuration'
    late_submission_penalty = penalty_field(
        'late_submission_penalty', "Late Submission Penalty",
        "Taken from the mentor fee once per homework that a student of "
        "the mentor has not submitted by its due date.")
    late_grading_penalty = penalty_field(
        'late_grading_penalty', "Late Grading Penalty",
        "Taken from the mentor fee once per homework not graded within "
        "the grading days after its submission.")
    grading_days = fields.Integer(
        "Grading Days", required=True,
        domain=[
            ('grading_days', '>', 0),
            ('grading_days', '<=', MAX_GRADING_DAYS),
            ],
        help="The days a mentor has to grade a submitted homework.")
    complaint_penalty = penalty_field(
        'complaint_penalty', "Complaint Penalty",
        "Taken from the mentor fee for each complaint of a student that "
        "staff record.")

    @classmethod
    def default_late_submission_penalty(cls):
        return Decimal('50.00')

    @classmethod
    def default_late_grading_penalty(cls):
        return Decimal('50.00')

    @classmethod
    def default_grading_days(cls):
        return DEFAULT_GRADING_DAYS

    @classmethod
    def default_complaint_penalty(cls):
        return Decimal('100.00')

    @classmethod
    def validate_fields(cls, configurations, field_names):
        super().validate_fields(configurations, field_names)
        for configuration in configurations:
            for name in PENALTY_FIELDS:
                value = getattr(configuration, name)
                if value is not None and (
                        not value.is_finite() or value < 0
                        or value >= MAX_PENALTY):
                    raise ConfigurationError(gettext(
                            'course_degree.msg_configuration_penalty',
                            field=cls.fields_get([name])[name]['string']))

    def penalty(self, name):
        "The amount of the penalty name (late_submission, …), never None"
        value = getattr(self, f'{name}_penalty')
        return value if value is not None else getattr(
            self, f'default_{name}_penalty')()

    def get_grading_days(self):
        return self.grading_days or DEFAULT_GRADING_DAYS
