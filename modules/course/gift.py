"Staff gifts of a course: the Give Course wizard"
from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .exceptions import EnrollmentError
from .rpc import RPCInputMixin
from .tools import (
    check_dict, check_id, check_int, check_record, check_text, in_group)

GIFT_GROUP = 'course.group_course_gift'
# A gift lasts at most a century: a bound that no real gift reaches and
# that keeps the end date representable
MAX_DAYS = 36500
MAX_REASON = 1000


class GiveCourseStart(RPCInputMixin, ModelView):
    "Give Course"
    __name__ = 'course.enrollment.give.start'
    company = fields.Many2One('company.company', "Company", readonly=True)
    party = fields.Many2One(
        'party.party', "Student", required=True,
        context={'company': Eval('company', -1)}, depends={'company'})
    course = fields.Many2One(
        'course.course', "Course", required=True,
        domain=[
            ('company', '=', Eval('company', -1)),
            ('published', '=', True),
            ])
    days = fields.Integer(
        "Days", required=True,
        domain=[('days', '>=', 0), ('days', '<=', MAX_DAYS)],
        help="How long the student keeps the course (0: permanent).")
    reason = fields.Text(
        "Reason", required=True,
        help="Why the course is given; shown to staff in the audit.")

    @classmethod
    def default_company(cls):
        return Transaction().context.get('company')

    @classmethod
    def default_days(cls):
        return 0


class GiveCourse(RPCInputMixin, Wizard):
    """Give Course

    The only door through which staff create an enrollment: a gift of a
    published course of the user's company, with a reason, recorded with
    who gave it.  Restricted to the group Course Gifts.
    """
    __name__ = 'course.enrollment.give'
    start = StateView('course.enrollment.give.start',
        'course.enrollment_give_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Give", 'give', 'tryton-ok', default=True),
            ])
    give = StateTransition()

    @classmethod
    def execute(cls, session_id, data, state_name):
        # The client's values are set on the view's fields before any
        # transition runs: check their types first, so a bad value is a
        # clear error and not a failed assertion of a field
        cls.check_rights()
        values = check_dict(check_dict(data, 'data').get('start'), 'start')
        for name in ['company', 'party', 'course']:
            if values.get(name) is not None:
                check_id(values[name], name)
        if values.get('days') is not None:
            check_int(values['days'], 'days', minimum=0, maximum=MAX_DAYS)
        if values.get('reason') is not None:
            check_text(values['reason'], 'reason', max_length=MAX_REASON)
        # The wizard has no other view: other keys are not passed on
        return super().execute(session_id, {'start': values}, state_name)

    @classmethod
    def check_rights(cls):
        "Refuse a user outside the group Course Gifts"
        if not in_group(GIFT_GROUP):
            raise EnrollmentError(gettext('course.msg_gift_group'))

    def transition_give(self):
        pool = Pool()
        Enrollment = pool.get('course.enrollment')
        Party = pool.get('party.party')
        Course = pool.get('course.course')
        start = self.start
        party = check_record(
            Party, start.party.id if start.party else None, 'party')
        course = check_record(
            Course, start.course.id if start.course else None, 'course')
        days = check_int(start.days, 'days', minimum=0, maximum=MAX_DAYS)
        reason = (start.reason or '').strip()
        if not reason:
            raise EnrollmentError(gettext('course.msg_gift_reason'))
        self.check_course(course)
        Enrollment.give(party, course, days, reason)
        return 'end'

    @classmethod
    def check_course(cls, course):
        """A gift gives what the school sells: a published, active course
        of one of the user's companies"""
        User = Pool().get('res.user')
        if (Transaction().user
                and course.company.id not in User.get_companies()):
            raise EnrollmentError(gettext(
                    'course.msg_gift_course_company', id=course.id))
        if not course.active or not course.published:
            raise EnrollmentError(gettext(
                    'course.msg_gift_course_unpublished',
                    course=course.rec_name))
