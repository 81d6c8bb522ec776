"""Degree enrollments: the registration form, the study record of each
module and the mentors' follow-ups"""
import datetime as dt
import logging
import math
from decimal import Decimal, InvalidOperation

from trytond.i18n import gettext
from trytond.model import (
    Index, ModelSQL, ModelView, Unique, Workflow, fields)
from trytond.modules.course.course import CompanyMixin
from trytond.modules.course.rpc import RPCInputMixin
from trytond.modules.course.tools import (
    check_caller, check_dict, check_record, guarded_button, lock_all_rows,
    now)
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.rpc import RPC
from trytond.tools import timezone as tz
from trytond.transaction import Transaction, without_check_access

from .exceptions import (
    EnrollmentError, FollowupError, FormError, StudyError)

logger = logging.getLogger(__name__)

ADMIN = ('course_degree.group_degree_admin',)

ENROLLMENT_STATES = [
    ('not_started', "Not Started"),
    ('studying', "Studying"),
    ('suspended', "Suspended"),
    ('graduated', "Graduated"),
    ('timed_out', "Timed Out"),
    ]

EXPERIENCES = [('graduate', "New Graduate")] + [
    (str(n), f"{n} Years" if n > 1 else "1 Year") for n in range(1, 11)] + [
    ('more10', "More than 10 Years")]

STUDY_PLANS = [
    ('1-2', "1-2 Hours a Day"),
    ('2-3', "2-3 Hours a Day"),
    ('3-5', "3-5 Hours a Day"),
    ('5+', "5+ Hours a Day"),
    ]
# How long homework takes for each plan, relative to the days of the
# homework (written for 2-3 hours a day)
PLAN_FACTORS = {
    '1-2': Decimal('1.5'),
    '2-3': Decimal('1.0'),
    '3-5': Decimal('0.75'),
    '5+': Decimal('0.5'),
    }

# The fields of the registration form a student fills in, with the most
# characters of the texts (None: no text)
FORM_TEXTS = {
    'company_name': (True, 64),
    'position': (True, 64),
    'preferred_mentor': (False, 32),
    'why_course': (True, 1024),
    'why_us': (True, 1024),
    'expectations': (True, 1024),
    'memo': (False, 255),
    }
FORM_FIELDS = set(FORM_TEXTS) | {
    'salary', 'experience', 'open_first_module', 'study_plan'}
# The highest salary a form accepts (a typing error beyond)
MAX_SALARY = Decimal(10) ** 9


def local_date(company, at):
    "The date of the UTC datetime at in the company's timezone"
    zone = getattr(company, 'timezone', None)
    if not zone:
        return at.date()
    return at.replace(tzinfo=dt.timezone.utc).astimezone(
        tz.get_tzinfo(zone)).date()


def due_date(opened, days, plan, company):
    """The date homework of days is due when its module opened at opened,
    for the study plan: ceil(days × the plan's factor) days later"""
    factor = PLAN_FACTORS.get(plan, Decimal(1))
    return local_date(company, opened) + dt.timedelta(
        days=math.ceil(Decimal(days) * factor))


class WorkflowOnlyMixin:
    """Refuse every change of a user's call (RPC): the records change
    through their methods only; _modify_message names the record"""
    __slots__ = ()
    _modify_message = None

    @classmethod
    def create(cls, vlist):
        # Refused before the values are validated (the clients send no
        # read-only field: the user would be asked to fill them in)
        if Transaction().check_access:
            raise EnrollmentError(gettext(cls._modify_message, record=''))
        return super().create(vlist)

    @classmethod
    def check_modification(cls, mode, records, values=None, external=False):
        super().check_modification(
            mode, records, values=values, external=external)
        if external and records and (mode == 'delete' or values):
            raise EnrollmentError(gettext(
                    cls._modify_message, record=records[0].rec_name))


class Enrollment(
        RPCInputMixin, CompanyMixin, Workflow, ModelSQL, ModelView):
    "Degree Enrollment"
    __name__ = 'course.degree.enrollment'
    party = fields.Many2One(
        'party.party', "Student", required=True, ondelete='RESTRICT',
        readonly=True,
        context={'company': Eval('company', -1)}, depends={'company'})
    degree = fields.Many2One(
        'course.degree', "Program", required=True, ondelete='RESTRICT',
        readonly=True)
    order_line = fields.Many2One(
        'course.order.line', "Order Line", ondelete='RESTRICT',
        readonly=True, help="The paid order line that gave the enrollment.")
    order = fields.Function(
        fields.Many2One('course.order', "Order"), 'get_order')
    mentor = fields.Many2One(
        'res.user', "Mentor", readonly=True, ondelete='RESTRICT',
        help="The mentor grading the student's homework (set by the "
        "Assign Mentor wizard).")
    state = fields.Selection(
        ENROLLMENT_STATES, "State", required=True, readonly=True,
        sort=False)
    state_string = state.translated('state')
    refunded = fields.Boolean(
        "Refunded", readonly=True,
        help="The order was refunded: the enrollment ended for good.")
    mentor_fee_balance = fields.Numeric(
        "Mentor Fee Balance", digits='currency', readonly=True,
        help="What is left of the mentor fee of this student after the "
        "penalties.")
    validity_days = fields.Integer(
        "Validity Days", readonly=True,
        help="Days of study from the opening of the first module.")
    start = fields.DateTime(
        "Start", readonly=True, help="When the first module opened.")
    end = fields.DateTime(
        "End", readonly=True,
        help="The end of the validity (or when a refund ended it).")
    form = fields.Many2One(
        'course.degree.form', "Registration Form", readonly=True,
        ondelete='SET NULL')
    form_submitted = fields.Function(
        fields.Boolean("Form Submitted"), 'get_form_submitted')
    records = fields.One2Many(
        'course.degree.study', 'enrollment', "Study Records", readonly=True)
    submissions = fields.One2Many(
        'course.degree.submission', 'enrollment', "Homework", readonly=True)
    followups = fields.One2Many(
        'course.degree.followup', 'enrollment', "Follow-ups",
        states={'readonly': Eval('state') == 'suspended'})

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.company.readonly = True
        t = cls.__table__()
        cls._sql_constraints += [
            ('party_degree_unique', Unique(t, t.party, t.degree),
                'course_degree.msg_enrollment_party_degree_unique'),
            ('order_line_unique', Unique(t, t.order_line),
                'course_degree.msg_enrollment_order_line_unique'),
            ]
        cls._sql_indexes.update({
                Index(t, (t.mentor, Index.Equality())),
                Index(t, (t.state, Index.Equality(cardinality='low'))),
                })
        cls._order = [('id', 'DESC')]
        cls._transitions |= {
            ('not_started', 'studying'),
            ('not_started', 'suspended'),
            ('studying', 'suspended'),
            ('suspended', 'not_started'),
            ('suspended', 'studying'),
            ('studying', 'graduated'),
            ('not_started', 'timed_out'),
            ('studying', 'timed_out'),
            }
        cls._buttons.update({
                'suspend': {
                    'invisible': ~Eval('state').in_(
                        ['not_started', 'studying']),
                    'icon': 'tryton-cancel',
                    'depends': ['state'],
                    },
                'resume': {
                    'invisible': (Eval('state') != 'suspended')
                    | Eval('refunded', False),
                    'icon': 'tryton-forward',
                    'depends': ['state', 'refunded'],
                    },
                'graduate': {
                    'invisible': Eval('state') != 'studying',
                    'icon': 'tryton-ok',
                    'depends': ['state'],
                    },
                })
        cls.__rpc__.update({
                'submit_form': RPC(readonly=False),
                })

    @classmethod
    def default_state(cls):
        return 'not_started'

    @classmethod
    def default_refunded(cls):
        return False

    @classmethod
    def default_mentor_fee_balance(cls):
        return Decimal(0)

    def get_rec_name(self, name):
        return f'{self.party.rec_name} - {self.degree.rec_name}'

    @classmethod
    def search_rec_name(cls, name, clause):
        _, operator, *_ = clause
        bool_op = 'AND' if operator.startswith('!') or operator.startswith(
            'not ') else 'OR'
        return [bool_op,
            ('party.rec_name',) + tuple(clause[1:]),
            ('degree.rec_name',) + tuple(clause[1:]),
            ]

    def get_order(self, name):
        return self.order_line.order.id if self.order_line else None

    def get_form_submitted(self, name):
        return bool(self.form and self.form.submitted)

    @classmethod
    def create(cls, vlist):
        # Refused before the values are validated (the clients send no
        # read-only field: the user would be asked to fill in the student)
        if Transaction().check_access:
            raise EnrollmentError(gettext(
                    'course_degree.msg_enrollment_create_external'))
        return super().create(vlist)

    @classmethod
    def check_modification(
            cls, mode, enrollments, values=None, external=False):
        """A user's call changes no enrollment: paid orders create them,
        the methods and buttons move them; only follow-ups are added
        through the enrollment's form (Followup checks them)"""
        super().check_modification(
            mode, enrollments, values=values, external=external)
        if not external or not enrollments:
            return
        if mode == 'delete' or (values and set(values) - {'followups'}):
            raise EnrollmentError(gettext(
                    'course_degree.msg_enrollment_modify_external',
                    enrollment=enrollments[0].rec_name))

    # ---- Buttons (degree administration) ----------------------------------

    @classmethod
    @guarded_button(
        'not_started', 'studying', error=EnrollmentError,
        message='course_degree.msg_enrollment_wrong_state')
    @Workflow.transition('suspended')
    def suspend(cls, enrollments):
        "Staff suspend the study (休学): no module opens meanwhile"

    @classmethod
    @guarded_button(
        'suspended', error=EnrollmentError,
        message='course_degree.msg_enrollment_wrong_state')
    def resume(cls, enrollments):
        "Staff resume a suspended study; a refunded enrollment stays ended"
        for enrollment in enrollments:
            if enrollment.refunded:
                raise EnrollmentError(gettext(
                        'course_degree.msg_enrollment_refunded',
                        enrollment=enrollment.rec_name))
        started = [e for e in enrollments if e.start]
        cls._resume_studying(started)
        cls._resume_not_started(
            [e for e in enrollments if not e.start])

    @classmethod
    @Workflow.transition('studying')
    def _resume_studying(cls, enrollments):
        pass

    @classmethod
    @Workflow.transition('not_started')
    def _resume_not_started(cls, enrollments):
        pass

    @classmethod
    @guarded_button(
        'studying', error=EnrollmentError,
        message='course_degree.msg_enrollment_wrong_state')
    def graduate(cls, enrollments):
        "Staff decide that the students graduate"
        cls._graduate(enrollments)

    @classmethod
    @Workflow.transition('graduated')
    def _graduate(cls, enrollments):
        pass

    # ---- What a paid order gives, what a refund takes back ---------------

    @classmethod
    def enroll(cls, lines):
        """Create the enrollment of each paid degree line that has none,
        with one locked study record per module of the program; return
        the enrollments created.  A line gives once: fulfilling again
        creates nothing."""
        pool = Pool()
        Study = pool.get('course.degree.study')
        lines = [l for l in lines if not l.degree_enrollments]
        if not lines:
            return []
        taken = {(e.party.id, e.degree.id) for e in cls.search([
                    ('party', 'in', list({l.order.party.id for l in lines})),
                    ('degree', 'in', list({l.product.id for l in lines})),
                    ])}
        enrollments = []
        for line in lines:
            key = (line.order.party.id, line.product.id)
            if key in taken:
                # Checkout refuses a second purchase: an order paid anyway
                # is for staff to refund
                logger.warning(
                    "order line %s: %s is already enrolled in %s, the line "
                    "gives nothing (refund it)", line.id,
                    line.order.party.rec_name, line.product.rec_name)
                continue
            taken.add(key)
            enrollments.append(cls._enrollment_of(line))
        cls.save(enrollments)
        Study.save([
                s for e in enrollments for s in Study.of_enrollment(e)])
        return enrollments

    @classmethod
    def _enrollment_of(cls, line):
        "The unsaved enrollment a paid degree line gives"
        degree = line.product
        option = line.degree_option
        return cls(
            party=line.order.party, degree=degree,
            company=line.order.company, order_line=line,
            state='not_started', refunded=False,
            mentor_fee_balance=Decimal(0),
            validity_days=option.days if option else degree.validity_days)

    @classmethod
    def end_refunded(cls, enrollments):
        """A refund ends the enrollments now and for good: suspended,
        refunded (they cannot be resumed); a graduate stays graduated (the
        degree was earned), refunded"""
        enrollments = [e for e in enrollments if not e.refunded]
        graduates = [e for e in enrollments if e.state == 'graduated']
        others = [e for e in enrollments if e.state != 'graduated']
        at = now()
        to_write = []
        if others:
            to_write += [others, {
                    'state': 'suspended', 'refunded': True, 'end': at}]
        if graduates:
            to_write += [graduates, {'refunded': True, 'end': at}]
        if to_write:
            cls.write(*to_write)

    # ---- The registration form -------------------------------------------

    @classmethod
    def submit_form(cls, enrollment, values):
        """Record the registration form of the enrollment (an id) from
        values ({field: value}): every field is checked, nothing is saved
        unless all are valid.  Submitted with open_first_module, it opens
        the first module.  Return the form's id.

        Over RPC only the degree administration may call it (a staff
        member entering a paper form); the storefront calls it as code for
        its logged-in student.
        """
        pool = Pool()
        Form = pool.get('course.degree.form')
        Study = pool.get('course.degree.study')
        check_caller('course.degree.enrollment.submit_form', ADMIN)
        enrollment = cls._check_enrollment(enrollment)
        values = Form.clean_values(check_dict(values, 'values'))
        with without_check_access():
            # The records the first module's opening locks too: one restart
            lock_all_rows([(cls, [enrollment]), (Study, enrollment.records)])
            enrollment = cls(enrollment.id)
            if enrollment.state not in {'not_started', 'studying'}:
                raise FormError(gettext(
                        'course_degree.msg_form_enrollment_state',
                        enrollment=enrollment.rec_name,
                        state=enrollment.state_string))
            form = enrollment.form or Form(enrollment=enrollment)
            for name, value in values.items():
                setattr(form, name, value)
            form.submitted = now()
            form.save()
            if not enrollment.form:
                enrollment.form = form
                enrollment.save()
            if form.open_first_module:
                first = enrollment.first_locked_module()
                if first and enrollment.state == 'not_started':
                    Study.open([first])
        return form.id

    @classmethod
    def _check_enrollment(cls, value):
        "The enrollment of id value, which must exist"
        return check_record(cls, value, 'enrollment')

    def first_locked_module(self):
        "The study record to open first: the first locked one, if any"
        locked = [r for r in self.ordered_records if r.state == 'locked']
        return locked[0] if locked else None

    @property
    def ordered_records(self):
        return sorted(self.records, key=lambda r: (r.sequence or 0, r.id))

    # ---- Progress ----------------------------------------------------------

    @classmethod
    def start_studying(cls, enrollments, at):
        """The first module opened: the validity starts at at, the study
        too"""
        not_started = [e for e in enrollments if e.state == 'not_started']
        for enrollment in not_started:
            enrollment.start = at
            enrollment.end = at + dt.timedelta(
                days=enrollment.validity_days
                or enrollment.degree.validity_days)
        cls.save(not_started)
        cls._start(not_started)

    @classmethod
    @Workflow.transition('studying')
    def _start(cls, enrollments):
        pass

    @classmethod
    def progress(cls, enrollments):
        """Open the next locked module of each studying enrollment whose
        modules are all completed or locked; graduate those with every
        module completed"""
        Study = Pool().get('course.degree.study')
        to_open, graduated = [], []
        for enrollment in enrollments:
            if enrollment.state != 'studying':
                continue
            records = enrollment.ordered_records
            if all(r.state == 'completed' for r in records):
                graduated.append(enrollment)
            elif not any(r.state == 'studying' for r in records):
                to_open.append(enrollment.first_locked_module())
        if to_open:
            Study.open(to_open)
        if graduated:
            cls._graduate(graduated)


class RegistrationForm(
        RPCInputMixin, WorkflowOnlyMixin, ModelSQL, ModelView):
    "Degree Registration Form"
    __name__ = 'course.degree.form'
    _modify_message = 'course_degree.msg_form_modify_external'
    enrollment = fields.Many2One(
        'course.degree.enrollment', "Enrollment", required=True,
        ondelete='CASCADE', readonly=True)
    company_name = fields.Char("Current Company", readonly=True)
    position = fields.Char("Position", readonly=True)
    salary = fields.Numeric(
        "Salary", digits=(16, 2), readonly=True,
        help="The current monthly salary.")
    experience = fields.Selection(
        EXPERIENCES, "Work Experience", readonly=True, sort=False)
    experience_string = experience.translated('experience')
    open_first_module = fields.Boolean(
        "Open First Module", readonly=True,
        help="Open the first module as soon as the form is submitted.")
    preferred_mentor = fields.Char("Preferred Mentor", readonly=True)
    study_plan = fields.Selection(
        STUDY_PLANS, "Study Plan", readonly=True, sort=False,
        help="The hours a day the student plans to study: the homework's "
        "due dates follow it.")
    study_plan_string = study_plan.translated('study_plan')
    why_course = fields.Text("Why this Course", readonly=True)
    why_us = fields.Text("Why Us", readonly=True)
    expectations = fields.Text("Expectations", readonly=True)
    memo = fields.Text("Memo", readonly=True)
    submitted = fields.DateTime("Submitted", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('enrollment')
        t = cls.__table__()
        cls._sql_constraints += [
            ('enrollment_unique', Unique(t, t.enrollment),
                'course_degree.msg_form_enrollment_unique'),
            ]

    def get_rec_name(self, name):
        return self.enrollment.rec_name

    @classmethod
    def clean_values(cls, values):
        """Return the values of a form checked and normalized; raise
        FormError naming the first field that is missing or not valid"""
        unknown = [k for k in values if k not in FORM_FIELDS]
        if unknown:
            raise FormError(gettext(
                    'course_degree.msg_form_unknown_field',
                    field=', '.join(sorted(map(str, unknown)))[:100]))
        cleaned = {}
        for name, (required, size) in FORM_TEXTS.items():
            cleaned[name] = cls._clean_text(
                name, values.get(name), required, size)
        cleaned['salary'] = cls._clean_salary(values.get('salary'))
        cleaned['experience'] = cls._clean_choice(
            'experience', values.get('experience'), EXPERIENCES)
        cleaned['study_plan'] = cls._clean_choice(
            'study_plan', values.get('study_plan'), STUDY_PLANS)
        opening = values.get('open_first_module', True)
        if not isinstance(opening, bool):
            raise cls._invalid('open_first_module')
        cleaned['open_first_module'] = opening
        return cleaned

    @classmethod
    def _label(cls, name):
        return cls.fields_get([name])[name]['string']

    @classmethod
    def _invalid(cls, name):
        return FormError(gettext(
                'course_degree.msg_form_field_invalid',
                field=cls._label(name)))

    @classmethod
    def _clean_text(cls, name, value, required, size):
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise FormError(gettext(
                        'course_degree.msg_form_field_required',
                        field=cls._label(name)))
            return None
        if not isinstance(value, str):
            raise cls._invalid(name)
        value = value.strip()
        if len(value) > size:
            raise FormError(gettext(
                    'course_degree.msg_form_field_too_long',
                    field=cls._label(name), size=size))
        return value

    @classmethod
    def _clean_salary(cls, value):
        if value is None or value == '':
            raise FormError(gettext(
                    'course_degree.msg_form_field_required',
                    field=cls._label('salary')))
        if isinstance(value, bool) or not isinstance(
                value, (int, str, Decimal)):
            raise cls._invalid('salary')
        try:
            salary = Decimal(value)
        except (InvalidOperation, ValueError):
            raise cls._invalid('salary')
        if (not salary.is_finite() or salary < 0 or salary >= MAX_SALARY
                or salary != salary.quantize(Decimal('0.01'))):
            raise cls._invalid('salary')
        return salary.quantize(Decimal('0.01'))

    @classmethod
    def _clean_choice(cls, name, value, selection):
        if value is None or value == '':
            raise FormError(gettext(
                    'course_degree.msg_form_field_required',
                    field=cls._label(name)))
        if not isinstance(value, str) or value not in dict(selection):
            raise cls._invalid(name)
        return value


class Study(
        RPCInputMixin, WorkflowOnlyMixin, Workflow, ModelSQL, ModelView):
    "Degree Study Record"
    __name__ = 'course.degree.study'
    _modify_message = 'course_degree.msg_study_modify_external'
    enrollment = fields.Many2One(
        'course.degree.enrollment', "Enrollment", required=True,
        ondelete='CASCADE', readonly=True)
    module = fields.Many2One(
        'course.degree.module', "Module", required=True,
        ondelete='RESTRICT', readonly=True)
    sequence = fields.Integer("Sequence", readonly=True)
    state = fields.Selection([
            ('locked', "Locked"),
            ('studying', "Studying"),
            ('completed', "Completed"),
            ], "State", required=True, readonly=True, sort=False)
    state_string = state.translated('state')
    opened = fields.DateTime("Opened", readonly=True)
    completed = fields.DateTime("Completed", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('enrollment')
        t = cls.__table__()
        cls._sql_constraints += [
            ('enrollment_module_unique', Unique(t, t.enrollment, t.module),
                'course_degree.msg_study_module_unique'),
            ]
        cls._order = [('enrollment', 'DESC'), ('sequence', 'ASC'),
            ('id', 'ASC')]
        cls._transitions |= {
            ('locked', 'studying'),
            ('studying', 'completed'),
            }
        cls._buttons.update({
                'open': {
                    'invisible': Eval('state') != 'locked',
                    'icon': 'tryton-forward',
                    'depends': ['state'],
                    },
                'complete': {
                    'invisible': Eval('state') != 'studying',
                    'icon': 'tryton-ok',
                    'depends': ['state'],
                    },
                })

    @classmethod
    def default_state(cls):
        return 'locked'

    def get_rec_name(self, name):
        return f'{self.enrollment.rec_name} - {self.module.rec_name}'

    @classmethod
    def of_enrollment(cls, enrollment):
        "The unsaved locked study records of a new enrollment"
        return [cls(enrollment=enrollment, module=module,
                sequence=index, state='locked')
            for index, module in enumerate(
                enrollment.degree.ordered_modules, 1)]

    @classmethod
    @ModelView.button
    def open(cls, studies):
        """Open the modules: locked → studying, the homework of each to
        submit with its due date; the first opening of an enrollment
        starts its validity.  The registration form must be submitted and
        the enrollment neither suspended nor over."""
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        Submission = pool.get('course.degree.submission')
        if not studies:
            return
        enrollments = list({s.enrollment for s in studies})
        lock_all_rows([(Enrollment, enrollments), (cls, studies)])
        studies = cls.browse(studies)
        for study in studies:
            cls._check_can_open(study)
        at = now()
        Enrollment.start_studying([s.enrollment for s in studies], at)
        cls.write(studies, {'opened': at})
        cls._open(studies)
        Submission.save([
                s for study in studies
                for s in Submission.of_study(study, at)])

    @classmethod
    def _check_can_open(cls, study):
        enrollment = study.enrollment
        if study.state != 'locked':
            raise StudyError(gettext(
                    'course_degree.msg_study_not_locked',
                    study=study.rec_name, state=study.state_string))
        if not enrollment.form_submitted:
            raise StudyError(gettext(
                    'course_degree.msg_study_form_missing',
                    enrollment=enrollment.rec_name))
        if enrollment.state not in {'not_started', 'studying'}:
            raise StudyError(gettext(
                    'course_degree.msg_study_enrollment_state',
                    enrollment=enrollment.rec_name,
                    state=enrollment.state_string))

    @classmethod
    @Workflow.transition('studying')
    def _open(cls, studies):
        pass

    @classmethod
    @ModelView.button
    def complete(cls, studies):
        """Staff complete modules (a module without homework, a staff
        decision); the next module opens, or the student graduates"""
        cls.lock(studies)
        for study in studies:
            if study.state != 'studying':
                raise StudyError(gettext(
                        'course_degree.msg_study_not_studying',
                        study=study.rec_name, state=study.state_string))
        cls.complete_passed(studies)

    @classmethod
    def complete_passed(cls, studies):
        """Complete the studying modules (their homework passed) and move
        their enrollments on"""
        Enrollment = Pool().get('course.degree.enrollment')
        studies = [s for s in studies if s.state == 'studying']
        if not studies:
            return
        cls.write(studies, {'completed': now()})
        cls._complete(studies)
        Enrollment.progress(
            Enrollment.browse(list({s.enrollment.id for s in studies})))

    @classmethod
    @Workflow.transition('completed')
    def _complete(cls, studies):
        pass


class Followup(RPCInputMixin, ModelSQL, ModelView):
    "Degree Student Follow-up"
    __name__ = 'course.degree.followup'
    enrollment = fields.Many2One(
        'course.degree.enrollment', "Enrollment", required=True,
        ondelete='CASCADE',
        states={'readonly': Eval('id', -1) >= 0})
    mentor = fields.Many2One(
        'res.user', "Mentor", readonly=True, ondelete='RESTRICT',
        help="Who wrote the follow-up.")
    tool = fields.Selection([
            ('qq', "QQ"),
            ('wechat', "WeChat"),
            ('phone', "Phone"),
            ('system', "System Notice"),
            ], "Tool", required=True, sort=False)
    tool_string = tool.translated('tool')
    text = fields.Text("Text", required=True)
    attachment = fields.Binary(
        "Attachment", filename='attachment_name',
        file_id='attachment_id')
    attachment_name = fields.Char("Attachment Name")
    attachment_id = fields.Char("Attachment ID", readonly=True)
    date = fields.DateTime("Date", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('date', 'DESC'), ('id', 'DESC')]

    @classmethod
    def default_tool(cls):
        return 'wechat'

    @classmethod
    def default_date(cls):
        return now()

    @classmethod
    def default_mentor(cls):
        return Transaction().user or None

    @classmethod
    def create(cls, vlist):
        transaction = Transaction()
        if transaction.check_access:
            # A user's follow-up is theirs, written now
            vlist = [dict(v, mentor=transaction.user, date=now())
                for v in vlist]
        return super().create(vlist)

    @classmethod
    def check_modification(
            cls, mode, followups, values=None, external=False):
        super().check_modification(
            mode, followups, values=values, external=external)
        if external and mode == 'write' and values and (
                values.keys() & {'mentor', 'date', 'enrollment'}):
            raise FollowupError(gettext(
                    'course_degree.msg_followup_fields',
                    followup=followups[0].rec_name if followups else ''))
        cls.check_author(followups, external)

    @classmethod
    def check_author(cls, followups, external):
        """A mentor writes follow-ups of their own students only, and
        changes only their own; the degree administration any"""
        from trytond.modules.course.tools import in_group
        if not external or in_group(ADMIN[0]):
            return
        user = Transaction().user
        for followup in followups:
            if followup.mentor and followup.mentor.id != user:
                raise FollowupError(gettext(
                        'course_degree.msg_followup_other_mentor',
                        followup=followup.rec_name))
            enrollment = followup.enrollment
            if enrollment.mentor is None or enrollment.mentor.id != user:
                raise FollowupError(gettext(
                        'course_degree.msg_followup_not_student',
                        enrollment=enrollment.rec_name))

    def get_rec_name(self, name):
        return f'{self.enrollment.rec_name} - {self.tool_string}'
