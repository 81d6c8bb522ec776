"Price activities (限时活动): time-limited prices of courses"
from collections import defaultdict
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import Check, ModelSQL, ModelView, fields
from trytond.pyson import Eval

from .course import CompanyMixin, NonNegativeMixin
from .exceptions import CourseValidationError
from .rpc import RPCInputMixin
from .tools import now, round_amount


class Activity(RPCInputMixin, CompanyMixin, ModelSQL, ModelView):
    "Price Activity"
    __name__ = 'course.activity'
    name = fields.Char(
        "Name", required=True, translate=True,
        help="Shown to the student as the line's discount name.")
    start = fields.DateTime("Start", required=True)
    end = fields.DateTime("End", required=True)
    lines = fields.One2Many('course.activity.line', 'activity', "Courses")
    state = fields.Function(fields.Selection([
                ('planned', "Planned"),
                ('running', "Running"),
                ('finished', "Finished"),
                ], "State"), 'get_state')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('dates', Check(t, t.end > t.start),
                'course.msg_activity_dates'),
            ]
        cls._order = [('start', 'DESC'), ('id', 'DESC')]

    @classmethod
    def validate_fields(cls, activities, field_names):
        super().validate_fields(activities, field_names)
        if field_names & {'start', 'end'}:
            for activity in activities:
                if activity.end <= activity.start:
                    raise CourseValidationError(gettext(
                            'course.msg_activity_dates',
                            activity=activity.rec_name))

    def get_state(self, name):
        at = now()
        if at < self.start:
            return 'planned'
        if at >= self.end:
            return 'finished'
        return 'running'


class ActivityLine(
        RPCInputMixin, NonNegativeMixin, ModelSQL, ModelView):
    "Price Activity Rule"
    __name__ = 'course.activity.line'
    _not_negative = {
        'value': 'course.msg_activity_value_positive',
        }
    activity = fields.Many2One(
        'course.activity', "Activity", required=True, ondelete='CASCADE')
    course = fields.Many2One(
        'course.course', "Course", required=True, ondelete='CASCADE',
        domain=[('company', '=', Eval('company', -1))])
    company = fields.Function(
        fields.Many2One('company.company', "Company"),
        'on_change_with_company')
    method = fields.Selection([
            ('free', "Free"),
            ('percentage', "Percentage"),
            ('reduction', "Reduction"),
            ('fixed', "Fixed Price"),
            ], "Method", required=True,
        help="Free: the course costs nothing.\n"
        "Percentage: pay this percentage of the price (80: pay 80%).\n"
        "Reduction: this amount off the price.\n"
        "Fixed Price: the course costs this amount.")
    value = fields.Numeric(
        "Value", digits=(16, 2),
        states={
            'invisible': Eval('method') == 'free',
            'required': Eval('method') != 'free',
            })

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('activity')

    @classmethod
    def default_method(cls):
        return 'percentage'

    @fields.depends('activity', '_parent_activity.company')
    def on_change_with_company(self, name=None):
        return self.activity.company if self.activity else None

    @classmethod
    def validate_fields(cls, lines, field_names):
        super().validate_fields(lines, field_names)
        if field_names & {'method', 'value'}:
            cls.check_percentage(lines)

    @classmethod
    def check_percentage(cls, lines):
        for line in lines:
            if (line.method == 'percentage'
                    and not (0 <= (line.value or 0) <= 100)):
                raise CourseValidationError(gettext(
                        'course.msg_activity_percentage',
                        activity=line.activity.rec_name,
                        course=line.course.rec_name))

    def compute_price(self, list_price, currency):
        """Return the activity price for a list price.

        An activity never raises a price: a fixed price above the list price
        leaves the list price.
        """
        value = self.value or Decimal(0)
        if self.method == 'free':
            price = Decimal(0)
        elif self.method == 'percentage':
            price = list_price * value / 100
        elif self.method == 'reduction':
            price = max(list_price - value, Decimal(0))
        else:
            price = min(value, list_price)
        return round_amount(currency, price)

    @classmethod
    def running_by_course(cls, courses, at=None):
        "Return {course id: [rules of the activities running at `at`]}"
        at = at or now()
        lines = cls.search([
                ('course', 'in', [c.id for c in courses]),
                ('activity.start', '<=', at),
                ('activity.end', '>', at),
                ], order=[('activity.start', 'ASC'), ('id', 'ASC')])
        result = defaultdict(list)
        for line in lines:
            result[line.course.id].append(line)
        return result
