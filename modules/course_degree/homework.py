"Homework submissions of degree students and their grading by mentors"
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Unique, Workflow, fields
from trytond.modules.course.rpc import RPCInputMixin
from trytond.modules.course.tools import (
    check_caller, check_record, in_group, lock_all_rows, now)
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.rpc import RPC
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .enrollment import ADMIN, WorkflowOnlyMixin, due_date, local_date
from .exceptions import SubmissionError

SCORES = [
    (None, ''),
    ('A+', "A+"),
    ('A', "A"),
    ('B+', "B+"),
    ('B', "B"),
    ('B-', "B-"),
    ('C+', "C+"),
    ('C', "C"),
    ('C-', "C-"),
    ('D', "D"),
    ('N/A', "N/A"),
    ('COPY', "COPY"),
    ]
# The points of each score (seed 002's HomeworkRecord.score)
POINTS = {
    'A+': 100, 'A': 90, 'B+': 85, 'B': 80, 'B-': 70, 'C+': 60, 'C': 50,
    'C-': 40, 'D': -1, 'N/A': 0, 'COPY': -100,
    }
# Scores that never pass: a failing grade and plagiarism
FAILING_SCORES = {'D', 'COPY'}
# The most characters of a submission's text and a grade's comment
MAX_TEXT = 20000
MAX_COMMENT = 4000
# The largest attachment a submission takes, in bytes
MAX_ATTACHMENT = 10 * 1024 * 1024


class Submission(
        RPCInputMixin, WorkflowOnlyMixin, Workflow, ModelSQL, ModelView):
    "Degree Homework Submission"
    __name__ = 'course.degree.submission'
    _modify_message = 'course_degree.msg_submission_modify_external'
    homework = fields.Many2One(
        'course.degree.homework', "Homework", required=True,
        ondelete='RESTRICT', readonly=True)
    enrollment = fields.Many2One(
        'course.degree.enrollment', "Enrollment", required=True,
        ondelete='CASCADE', readonly=True)
    study = fields.Many2One(
        'course.degree.study', "Study Record", required=True,
        ondelete='CASCADE', readonly=True)
    party = fields.Function(
        fields.Many2One('party.party', "Student"), 'get_party')
    mentor = fields.Many2One(
        'res.user', "Mentor", readonly=True, ondelete='RESTRICT',
        help="The mentor of the student when the homework was submitted.")
    text = fields.Text("Text", readonly=True)
    attachment = fields.Binary(
        "Attachment", filename='attachment_name', file_id='attachment_id',
        readonly=True)
    attachment_name = fields.Char("Attachment Name", readonly=True)
    attachment_id = fields.Char("Attachment ID", readonly=True)
    score = fields.Selection(SCORES, "Score", readonly=True, sort=False)
    points = fields.Function(fields.Integer("Points"), 'get_points')
    comment = fields.Text("Comment", readonly=True)
    state = fields.Selection([
            ('to_submit', "To Submit"),
            ('to_grade', "To Grade"),
            ('passed', "Passed"),
            ('failed', "Failed"),
            ], "State", required=True, readonly=True, sort=False)
    state_string = state.translated('state')
    count = fields.Integer(
        "Submissions", readonly=True,
        help="How many times the student submitted the homework.")
    submitted = fields.DateTime("Submitted", readonly=True)
    graded = fields.DateTime("Graded", readonly=True)
    graded_by = fields.Many2One(
        'res.user', "Graded by", readonly=True, ondelete='RESTRICT')
    due = fields.Date(
        "Due", readonly=True,
        help="The recommended date, from the opening of the module and the "
        "student's study plan.")
    late = fields.Boolean(
        "Handed in Late", readonly=True,
        help="Handed in after its due date (in the company's time).")
    reward_state = fields.Selection([
            ('none', "None"),
            ('late', "Submitted Late"),
            ('grading_late', "Graded Late"),
            ('penalized', "Penalized"),
            ], "Reward State", readonly=True, sort=False)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('enrollment')
        t = cls.__table__()
        cls._sql_constraints += [
            ('homework_enrollment_unique',
                Unique(t, t.homework, t.enrollment),
                'course_degree.msg_submission_unique'),
            ]
        cls._order = [('due', 'ASC'), ('id', 'ASC')]
        cls._transitions |= {
            ('to_submit', 'to_grade'),
            ('failed', 'to_grade'),
            ('to_grade', 'passed'),
            ('to_grade', 'failed'),
            }
        cls._buttons.update({
                'grade_wizard': {
                    'invisible': Eval('state') != 'to_grade',
                    'icon': 'tryton-ok',
                    'depends': ['state'],
                    },
                })
        cls.__rpc__.update({
                'submit': RPC(readonly=False),
                })

    @classmethod
    def default_state(cls):
        return 'to_submit'

    @classmethod
    def default_count(cls):
        return 0

    @classmethod
    def default_late(cls):
        return False

    @classmethod
    def default_reward_state(cls):
        return 'none'

    def get_rec_name(self, name):
        return f'{self.enrollment.rec_name} - {self.homework.rec_name}'

    def get_party(self, name):
        return self.enrollment.party.id

    def get_points(self, name):
        return POINTS.get(self.score) if self.score else None

    @classmethod
    def of_study(cls, study, opened):
        """The unsaved submissions to make of an opened module: one per
        homework, due after its days scaled by the study plan"""
        enrollment = study.enrollment
        plan = enrollment.form.study_plan if enrollment.form else None
        homeworks = sorted(
            study.module.homeworks, key=lambda h: (h.sequence or 0, h.id))
        return [cls(
                homework=h, enrollment=enrollment, study=study,
                state='to_submit', count=0, reward_state='none',
                due=due_date(opened, h.days, plan, enrollment.company))
            for h in homeworks]

    # ---- The student submits -----------------------------------------------

    @classmethod
    def submit(cls, submission, text, attachment=None):
        """The student hands in the homework (an id): text and/or an
        attachment ({'name': str, 'data': bytes} or None).  Allowed while
        its module is studied and the enrollment studying, first or after
        a failed grade; counts the submissions.  Return its id.

        Over RPC only the degree administration may call it (homework
        received by other means); the storefront calls it as code for its
        logged-in student.
        """
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        check_caller('course.degree.submission.submit', ADMIN)
        submission = check_record(cls, submission, 'submission')
        text, name, data = cls._clean_work(text, attachment)
        with without_check_access():
            lock_all_rows(
                [(Enrollment, [submission.enrollment]), (cls, [submission])])
            submission = cls(submission.id)
            cls._check_can_submit(submission)
            enrollment = submission.enrollment
            submission.text = text
            if data is not None:
                submission.attachment = data
                submission.attachment_name = name
            submission.count = (submission.count or 0) + 1
            submission.submitted = now()
            if submission.due and local_date(
                    enrollment.company, submission.submitted) > submission.due:
                submission.late = True
            submission.mentor = enrollment.mentor
            submission.score = None
            submission.comment = None
            submission.graded = submission.graded_by = None
            submission.save()
            cls._submit([submission])
        return submission.id

    @classmethod
    def _clean_work(cls, text, attachment):
        "Return (text, attachment name, data) checked; refuse empty work"
        if text is not None and not isinstance(text, str):
            raise SubmissionError(gettext(
                    'course_degree.msg_submission_text_invalid'))
        text = (text or '').strip() or None
        if text and len(text) > MAX_TEXT:
            raise SubmissionError(gettext(
                    'course_degree.msg_submission_text_too_long',
                    size=MAX_TEXT))
        name = data = None
        if attachment is not None:
            if (not isinstance(attachment, dict)
                    or set(attachment) != {'name', 'data'}
                    or not isinstance(attachment['name'], str)
                    or not attachment['name'].strip()
                    or len(attachment['name']) > 200
                    or not isinstance(attachment['data'], bytes)
                    or not attachment['data']):
                raise SubmissionError(gettext(
                        'course_degree.msg_submission_attachment_invalid'))
            if len(attachment['data']) > MAX_ATTACHMENT:
                raise SubmissionError(gettext(
                        'course_degree.msg_submission_attachment_too_large',
                        size=MAX_ATTACHMENT // (1024 * 1024)))
            name, data = attachment['name'].strip(), attachment['data']
        if text is None and data is None:
            raise SubmissionError(gettext(
                    'course_degree.msg_submission_empty'))
        return text, name, data

    @classmethod
    def _check_can_submit(cls, submission):
        enrollment = submission.enrollment
        if enrollment.state != 'studying':
            raise SubmissionError(gettext(
                    'course_degree.msg_submission_enrollment_state',
                    enrollment=enrollment.rec_name,
                    state=enrollment.state_string))
        if submission.study.state != 'studying':
            raise SubmissionError(gettext(
                    'course_degree.msg_submission_module_closed',
                    submission=submission.rec_name))
        if submission.state not in {'to_submit', 'failed'}:
            raise SubmissionError(gettext(
                    'course_degree.msg_submission_not_open',
                    submission=submission.rec_name,
                    state=submission.state_string))

    @classmethod
    @Workflow.transition('to_grade')
    def _submit(cls, submissions):
        pass

    # ---- The mentor grades -------------------------------------------------

    @classmethod
    @ModelView.button_action('course_degree.wizard_submission_grade')
    def grade_wizard(cls, submissions):
        pass

    @classmethod
    def grade(cls, submissions, score, comment, passed):
        """Grade the submissions to grade: score (a key of SCORES),
        comment, passed.  Only the enrollment's mentor or the degree
        administration; a D or COPY never passes.  A module whose homework
        all passed completes, and the next one opens."""
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        Study = pool.get('course.degree.study')
        if score not in POINTS:
            raise SubmissionError(gettext(
                    'course_degree.msg_grade_score_invalid'))
        if not isinstance(passed, bool):
            raise SubmissionError(gettext(
                    'course_degree.msg_grade_passed_invalid'))
        if passed and score in FAILING_SCORES:
            raise SubmissionError(gettext(
                    'course_degree.msg_grade_failing_score', score=score))
        if comment is not None and (not isinstance(comment, str)
                or len(comment) > MAX_COMMENT):
            raise SubmissionError(gettext(
                    'course_degree.msg_grade_comment_invalid',
                    size=MAX_COMMENT))
        cls.check_grader(submissions)
        enrollments = list({s.enrollment for s in submissions})
        # With the study records a passed module completes and the next
        # opens without restarting the call for their locks
        lock_all_rows([
                (Enrollment, enrollments), (cls, submissions),
                (Study, [r for e in enrollments for r in e.records])])
        submissions = cls.browse(submissions)
        for submission in submissions:
            if submission.state != 'to_grade':
                raise SubmissionError(gettext(
                        'course_degree.msg_grade_not_to_grade',
                        submission=submission.rec_name,
                        state=submission.state_string))
        cls.write(submissions, {
                'score': score,
                'comment': (comment or '').strip() or None,
                'graded': now(),
                'graded_by': Transaction().user or None,
                })
        if passed:
            cls._pass(submissions)
            Study.complete_passed([
                    s for s in {x.study for x in submissions}
                    if cls.all_passed(s)])
        else:
            cls._fail(submissions)

    @classmethod
    def check_grader(cls, submissions):
        """Refuse a user who is neither the mentor of every submission's
        student nor in the degree administration (code passes)"""
        user = Transaction().user
        if not user or in_group(ADMIN[0]):
            return
        for submission in submissions:
            mentor = submission.enrollment.mentor
            if mentor is None or mentor.id != user:
                raise SubmissionError(gettext(
                        'course_degree.msg_grade_not_mentor',
                        submission=submission.rec_name))

    @staticmethod
    def all_passed(study):
        "Whether every homework of the study's module passed"
        Submission = Pool().get('course.degree.submission')
        return not Submission.search([
                ('study', '=', study.id),
                ('state', '!=', 'passed'),
                ], count=True)

    @classmethod
    @Workflow.transition('passed')
    def _pass(cls, submissions):
        pass

    @classmethod
    @Workflow.transition('failed')
    def _fail(cls, submissions):
        pass


class GradeStart(RPCInputMixin, ModelView):
    "Grade Homework"
    __name__ = 'course.degree.submission.grade.start'
    score = fields.Selection(
        [s for s in SCORES if s[0]], "Score", required=True, sort=False)
    passed = fields.Boolean(
        "Passed", help="Untick to send the homework back to the student.")
    comment = fields.Text("Comment")

    @classmethod
    def default_passed(cls):
        return True

    @fields.depends('score', 'passed')
    def on_change_score(self):
        if self.score in FAILING_SCORES:
            self.passed = False


class Grade(RPCInputMixin, Wizard):
    "Grade Homework"
    __name__ = 'course.degree.submission.grade'
    start = StateView(
        'course.degree.submission.grade.start',
        'course_degree.submission_grade_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Grade", 'grade', 'tryton-ok', default=True),
            ])
    grade = StateTransition()

    def transition_grade(self):
        Submission = Pool().get('course.degree.submission')
        # Checked here for the message: the same as the records' rules
        with without_check_access():
            submissions = Submission.browse(
                [r.id for r in self.records])
            Submission.check_grader(submissions)
            Submission.grade(
                submissions, self.start.score, self.start.comment,
                bool(self.start.passed))
        return 'end'
