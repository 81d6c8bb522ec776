"""degree.*: degree programs (module course_degree) for students.

These methods exist only in a database where course_degree is activated
(`requires`, see registry.method): elsewhere they answer method_not_found
and rpc.discover leaves them out.  They call course_degree's methods as
code for the logged-in student (Enrollment.submit_form, Submission.submit),
so every check of the module applies; a student reaches only their own
enrollments and homework: another student's id is not found, like an
unknown one.  Mentors' follow-ups and notes are never read here."""
import binascii
from typing import Annotated, Literal, Optional

from pydantic import StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from trytond.i18n import gettext
from trytond.pool import Pool

from ..errors import invalid_params, not_found, refused
from ..values import money, when
from .registry import Params, Result, method
from .types import Id

# The model whose presence tells that course_degree is activated
PROGRAM = 'course.degree'

# The largest attachment a student uploads here (bytes, decoded): the body
# of a storefront call is limited too (trytond's [request] max_size)
MAX_ATTACHMENT = 1024 * 1024
MAX_ATTACHMENT_BASE64 = 4 * -(-MAX_ATTACHMENT // 3)
MAX_TEXT = 20000

EXPERIENCES = Literal[
    'graduate', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', 'more10']
STUDY_PLANS = Literal['1-2', '2-3', '3-5', '5+']


def stripped(max_length, min_length=1):
    return Annotated[str, StringConstraints(
            strip_whitespace=True, min_length=min_length,
            max_length=max_length)]


Salary = Annotated[str, StringConstraints(
        pattern=r'^\d{1,9}(\.\d{1,2})?$')]
FileName = Annotated[str, StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100,
        pattern=r'^[^/\\]+$')]
Base64 = Annotated[str, StringConstraints(
        min_length=4, max_length=MAX_ATTACHMENT_BASE64)]

# The refusals of course_degree a degree method may answer (slugs.py)
FORM_ERRORS = ['not_found', 'degree.form_invalid', 'degree.closed']
HOMEWORK_ERRORS = ['not_found', 'degree.homework_closed',
    'degree.homework_invalid', 'degree.closed']


# ---- Params -----------------------------------------------------------------

class EnrollmentParams(Params):
    enrollment: Id


class FormParams(Params):
    enrollment: Id
    company_name: stripped(64)
    position: stripped(64)
    salary: Salary
    experience: EXPERIENCES
    study_plan: STUDY_PLANS
    why_course: stripped(1024)
    why_us: stripped(1024)
    expectations: stripped(1024)
    open_first_module: bool = True
    preferred_mentor: Optional[stripped(32, 0)] = None
    memo: Optional[stripped(255, 0)] = None


class Attachment(Params):
    name: FileName
    data: Base64

    @field_validator('data')
    @classmethod
    def _base64(cls, value):
        try:
            data = binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):
            raise PydanticCustomError(
                'base64', "Data should be standard base64")
        if not data or len(data) > MAX_ATTACHMENT:
            raise PydanticCustomError(
                'too_long', "The file should have 1 to {maximum} bytes",
                {'maximum': MAX_ATTACHMENT})
        return value

    def decoded(self):
        return binascii.a2b_base64(self.data, strict_mode=True)


class SubmitParams(Params):
    homework: Id
    text: Optional[stripped(MAX_TEXT)] = None
    attachment: Optional[Attachment] = None

    def check_one_of(self):
        """Refuse neither or both of text and attachment (checked by the
        method: a call without token is answered auth.required first)"""
        if (self.text is None) == (self.attachment is None):
            raise invalid_params(
                gettext('course_storefront.msg_degree_text_or_attachment'),
                errors=[{'field': 'text', 'type': 'text_or_attachment'}])


# ---- Results ----------------------------------------------------------------

class ProgramOptionResult(Result):
    id: int
    name: str
    days: int
    price: str


class ProgramHomeworkResult(Result):
    name: str
    days: int


class ProgramModuleResult(Result):
    sequence: int
    course: int
    name: str
    homeworks: list[ProgramHomeworkResult]


class ProgramResult(Result):
    id: int
    name: str
    description: str
    price: str
    validity_days: int
    options: list[ProgramOptionResult]
    modules: list[ProgramModuleResult]


class StudyResult(Result):
    module: int
    course: int
    name: str
    sequence: int
    state: str
    opened: Optional[str]
    completed: Optional[str]


class DegreeEnrollmentResult(Result):
    enrollment: int
    degree: int
    name: str
    state: str
    refunded: bool
    start: Optional[str]
    end: Optional[str]
    validity_days: Optional[int]
    form_submitted: bool
    mentor: Optional[str]
    order: Optional[str]
    records: list[StudyResult]


class HomeworkResult(Result):
    homework: int
    name: str
    description: str
    module: int
    module_name: str
    state: str
    due: Optional[str]
    count: int
    submitted: Optional[str]
    text: Optional[str]
    attachment_name: Optional[str]
    score: Optional[str]
    points: Optional[int]
    comment: Optional[str]
    graded: Optional[str]


# ---- Reading ----------------------------------------------------------------

def own_enrollment(call, enrollment_id):
    """The student's degree enrollment of that id; another student's, like
    an unknown one, is not found"""
    Enrollment = Pool().get('course.degree.enrollment')
    enrollments = Enrollment.search([
            ('id', '=', enrollment_id),
            ('party', '=', call.party.id),
            ('company', '=', call.company.id),
            ], limit=1)
    if not enrollments:
        raise not_found(gettext(
                'course_storefront.msg_degree_enrollment_not_found',
                id=enrollment_id))
    return enrollments[0]


def own_submission(call, homework_id):
    """The student's submission of the homework (id of
    course.degree.homework): unique, as a student has one enrollment per
    program.  A homework of no program of the student is not found; one of
    a module not opened yet is refused."""
    pool = Pool()
    Submission = pool.get('course.degree.submission')
    Enrollment = pool.get('course.degree.enrollment')
    submissions = Submission.search([
            ('homework', '=', homework_id),
            ('enrollment.party', '=', call.party.id),
            ('enrollment.company', '=', call.company.id),
            ], limit=1)
    if submissions:
        return submissions[0]
    enrolled = Enrollment.search([
            ('party', '=', call.party.id),
            ('company', '=', call.company.id),
            ('degree.modules.homeworks', '=', homework_id),
            ], limit=1)
    if enrolled:
        raise refused('degree.homework_closed', gettext(
                'course_storefront.msg_degree_homework_locked',
                id=homework_id))
    raise not_found(gettext(
            'course_storefront.msg_degree_homework_not_found',
            id=homework_id))


def programs_json(call, degrees):
    currency = call.currency
    return [{
            'id': d.id,
            'name': d.name,
            'description': d.description or '',
            'price': money(d.price, currency),
            'validity_days': d.validity_days,
            'options': [{
                    'id': o.id, 'name': o.name, 'days': o.days,
                    'price': money(o.price, currency),
                    } for o in d.options],
            'modules': [{
                    'sequence': index,
                    'course': m.course.id,
                    'name': m.course.name,
                    'homeworks': [{'name': h.name, 'days': h.days}
                        for h in sorted(m.homeworks,
                            key=lambda h: (h.sequence or 0, h.id))],
                    } for index, m in enumerate(d.ordered_modules, 1)],
            } for d in degrees]


def enrollment_json(call, enrollment):
    company = call.company
    order = enrollment.order_line.order if enrollment.order_line else None
    return {
        'enrollment': enrollment.id,
        'degree': enrollment.degree.id,
        'name': enrollment.degree.name,
        'state': enrollment.state,
        'refunded': bool(enrollment.refunded),
        'start': when(enrollment.start, company),
        'end': when(enrollment.end, company),
        'validity_days': enrollment.validity_days,
        'form_submitted': bool(enrollment.form_submitted),
        # The mentor's name only: nothing else of the staff user
        'mentor': enrollment.mentor.name if enrollment.mentor else None,
        'order': order.number if order else None,
        'records': [{
                'module': r.module.id,
                'course': r.module.course.id,
                'name': r.module.course.name,
                'sequence': r.sequence or 0,
                'state': r.state,
                'opened': when(r.opened, company),
                'completed': when(r.completed, company),
                } for r in enrollment.ordered_records],
        }


def homework_json(call, submission):
    company = call.company
    homework = submission.homework
    return {
        'homework': homework.id,
        'name': homework.name,
        'description': homework.description or '',
        'module': homework.module.id,
        'module_name': homework.module.course.name,
        'state': submission.state,
        'due': submission.due.isoformat() if submission.due else None,
        'count': submission.count or 0,
        'submitted': when(submission.submitted, company),
        'text': submission.text,
        'attachment_name': submission.attachment_name,
        'score': submission.score,
        'points': submission.points,
        'comment': submission.comment,
        'graded': when(submission.graded, company),
        }


# ---- Methods ----------------------------------------------------------------

@method('degree.programs', result=list[ProgramResult], auth=False,
    readonly=True, requires=PROGRAM)
def programs(call, params):
    """The published degree programs: price, validity options, modules (the
    courses studied one after the other) and their homework"""
    Degree = Pool().get('course.degree')
    degrees = Degree.search([
            ('published', '=', True),
            ('company', '=', call.company.id),
            ], order=[('id', 'ASC')], limit=100)
    return programs_json(call, degrees)


@method('degree.mine', result=list[DegreeEnrollmentResult], readonly=True,
    requires=PROGRAM)
def mine(call, params):
    """The student's degree enrollments: state, validity, whether the
    registration form is submitted, the mentor's name and the study record
    of each module"""
    Enrollment = Pool().get('course.degree.enrollment')
    enrollments = Enrollment.search([
            ('party', '=', call.party.id),
            ('company', '=', call.company.id),
            ], order=[('id', 'DESC')], limit=100)
    return [enrollment_json(call, e) for e in enrollments]


@method('degree.form.submit', FormParams, DegreeEnrollmentResult,
    errors=FORM_ERRORS, requires=PROGRAM)
def submit_form(call, params):
    """Submit the registration form of one of the student's enrollments
    (again to correct it); with open_first_module (default) the first
    module opens and its homework gets due dates.  The modules stay locked
    until the form is submitted."""
    Enrollment = Pool().get('course.degree.enrollment')
    enrollment = own_enrollment(call, params.enrollment)
    values = params.model_dump(exclude={'enrollment'})
    Enrollment.submit_form(enrollment.id, values)
    return enrollment_json(call, Enrollment(enrollment.id))


@method('degree.homework.list', EnrollmentParams, list[HomeworkResult],
    readonly=True, errors=['not_found'], requires=PROGRAM)
def homework_list(call, params):
    """The homework of the opened modules of one of the student's
    enrollments: due date, state, what was handed in, score and the
    mentor's comment"""
    Submission = Pool().get('course.degree.submission')
    enrollment = own_enrollment(call, params.enrollment)
    submissions = Submission.search([
            ('enrollment', '=', enrollment.id),
            ], order=[('study.sequence', 'ASC'), ('homework.sequence', 'ASC'),
            ('id', 'ASC')])
    return [homework_json(call, s) for s in submissions]


@method('degree.homework.submit', SubmitParams, HomeworkResult,
    errors=HOMEWORK_ERRORS, requires=PROGRAM)
def homework_submit(call, params):
    """Hand in a homework (a homework id of degree.homework.list): exactly
    one of text or attachment ({name, data: base64, at most 1 MiB}); again
    after a failed grade.  The mentor grades it."""
    Submission = Pool().get('course.degree.submission')
    params.check_one_of()
    submission = own_submission(call, params.homework)
    attachment = None
    if params.attachment is not None:
        attachment = {
            'name': params.attachment.name,
            'data': params.attachment.decoded(),
            }
    Submission.submit(submission.id, params.text, attachment)
    return homework_json(call, Submission(submission.id))
