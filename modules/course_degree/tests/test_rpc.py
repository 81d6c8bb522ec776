"""The doors of course_degree over real JSON-RPC: who may change
enrollments, forms, study records, homework and follow-ups, submit a form
or homework for a student, press the buttons and grade; what input each
door refuses (a UserError, nothing written)."""
import unittest

from trytond.modules.course.tests.rpc import (
    BAD_IDS, BAD_LISTS, RPCTestMixin)
from trytond.modules.course.tests.tools import run_transaction
from trytond.modules.course_degree.tests.tools import (
    FORM, buy_degree, create_degree, create_mentor, enrollment_of,
    set_mentor)
from trytond.modules.course.tests.rpc import PASSWORD
from trytond.pool import Pool

MODELS = [
    'course.degree.enrollment', 'course.degree.form', 'course.degree.study',
    'course.degree.submission', 'course.degree.followup']


def create_data(company_id):
    "A program, two mentors and a dean (degree administration)"
    pool = Pool()
    Company = pool.get('company.company')
    User = pool.get('res.user')
    company = Company(company_id)
    cat = create_degree(company)
    users = {}
    for login, admin in [
            ('mentor', False), ('mentor2', False), ('dean', True)]:
        user = create_mentor(login, company, admin=admin)
        User.write([user], {'password': PASSWORD.format(login)})
        users[login] = user.id
    if users:
        # The dean is no mentor: only the degree administration
        dean = User(users['dean'])
        ModelData = pool.get('ir.model.data')
        User.write([dean], {'groups': [('remove', [
                            ModelData.get_id(
                                'course_degree', 'group_mentor')])]})
    return {'degree': cat.degree.id, 'users': users}


def enroll(degree_id, mentor_id, number, form=True):
    """A new student enrolled in the program (paid, form submitted: module
    1 open), with mentor; return the ids of what the tests use"""
    pool = Pool()
    Degree = pool.get('course.degree')
    Enrollment = pool.get('course.degree.enrollment')
    Party = pool.get('party.party')
    User = pool.get('res.user')
    degree = Degree(degree_id)
    party, = Party.create([{'name': f"Student {number}"}])
    buy_degree(party, degree)
    enrollment = enrollment_of(party, degree)
    if mentor_id:
        set_mentor(enrollment, User(mentor_id))
    if form:
        Enrollment.submit_form(enrollment.id, FORM)
    enrollment = Enrollment(enrollment.id)
    return {
        'party': party.id, 'enrollment': enrollment.id,
        'form': enrollment.form.id if enrollment.form else None,
        'records': [r.id for r in enrollment.ordered_records],
        'submissions': [s.id for s in enrollment.submissions],
        }


class DegreeRPCTestCase(RPCTestMixin, unittest.TestCase):
    "course_degree over RPC"
    module = 'course_degree'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.data = run_transaction(
            create_data, cls.company_id, context={'company': cls.company_id})
        cls.number = 0

    def login(self, login, protocol='json', session=False):
        if login in {'mentor', 'mentor2', 'dean'}:
            from trytond.modules.course.tests.rpc import JSONRPCClient
            from trytond.tests.test_tryton import DB_NAME
            return JSONRPCClient(DB_NAME, login, PASSWORD.format(login),
                context={'company': self.company_id})
        return super().login(login, protocol=protocol, session=session)

    def student(self, mentor='mentor', form=True):
        type(self).number += 1
        mentor_id = self.data['users'][mentor] if mentor else None
        return self.run_transaction(
            enroll, self.data['degree'], mentor_id, self.number, form)

    def snapshot(self):
        "Every row of the degree models, as root"
        def read():
            pool = Pool()
            rows = {}
            for name in MODELS:
                Model = pool.get(name)
                fields = [f for f in Model._fields
                    if f not in {'write_date', 'write_uid', 'rec_name'}
                    and getattr(Model._fields[f], 'get', None) is None
                    and Model._fields[f]._type not in {
                        'one2many', 'many2many', 'binary'}]
                rows[name] = [tuple(sorted(r.items()))
                    for r in sorted(Model.read(
                            [x.id for x in Model.search([])], fields),
                        key=lambda r: r['id'])]
            return rows
        return self.run_transaction(read)

    def assertRefusedRPC(self, call, *args, text=None, kinds=None):
        "call(*args) is a UserError (or kinds) and writes nothing"
        before = self.snapshot()
        error = self.assertRPCError(
            call, *args, text=text,
            kinds=kinds or ('UserError', 'AccessError', 'ValidationError'))
        self.assertEqual(self.snapshot(), before)
        return error

    # ---- Workflow-only records ------------------------------------------

    def test_external_changes_refused(self):
        "Create, write, delete: refused for every group, admin too"
        s = self.student()
        cases = [
            ('course.degree.enrollment', s['enrollment'],
                {'party': s['party'], 'degree': self.data['degree']},
                {'state': 'graduated'}),
            ('course.degree.form', s['form'],
                {'enrollment': s['enrollment'], 'company_name': "X"},
                {'salary': 1}),
            ('course.degree.study', s['records'][1],
                {'enrollment': s['enrollment']}, {'state': 'studying'}),
            ('course.degree.submission', s['submissions'][0],
                {'enrollment': s['enrollment']}, {'state': 'passed'}),
            ]
        for login in ['admin', 'dean', 'mentor', 'manager', 'nobody']:
            client = self.login(login)
            for model, record, values, changes in cases:
                with self.subTest(login=login, model=model):
                    self.assertRefusedRPC(
                        client.model, model, 'create', [values])
                    self.assertRefusedRPC(
                        client.model, model, 'write', [record], changes)
                    self.assertRefusedRPC(
                        client.model, model, 'delete', [record])
        admin = self.login('admin')
        self.assertRefusedRPC(
            admin.model, 'course.degree.enrollment', 'write',
            [s['enrollment']], {'mentor': self.data['users']['mentor2']},
            text="changes only through its buttons")

    # ---- submit_form ----------------------------------------------------

    def test_submit_form_callers(self):
        "Only the degree administration submits a form over RPC"
        s = self.student(form=False)
        for login in ['mentor', 'manager', 'sales', 'nobody']:
            with self.subTest(login=login):
                self.assertRefusedRPC(
                    self.login(login).model, 'course.degree.enrollment',
                    'submit_form', s['enrollment'], FORM)
        form = self.login('dean').model(
            'course.degree.enrollment', 'submit_form', s['enrollment'],
            dict(FORM, salary='8000.50'))

        def check():
            Form = Pool().get('course.degree.form')
            form_ = Form(form)
            return form_.enrollment.id, str(form_.salary), [
                r.state for r in form_.enrollment.ordered_records]
        self.assertEqual(self.run_transaction(check), (
                s['enrollment'], '8000.50',
                ['studying', 'locked', 'locked']))

    def test_submit_form_bad_input(self):
        "Bad enrollments and values: a UserError, nothing written"
        s = self.student(form=False)
        dean = self.login('dean')
        for value in BAD_IDS + [999999]:
            with self.subTest(enrollment=value):
                self.assertRefusedRPC(
                    dean.model, 'course.degree.enrollment', 'submit_form',
                    value, FORM)
        for value in [1, 'abc', [FORM], dict(FORM, salary=[1]),
                dict(FORM, experience={'a': 1}), dict(FORM, study_plan=2),
                dict(FORM, why_us=None), {1: 'x'}]:
            with self.subTest(values=value):
                self.assertRefusedRPC(
                    dean.model, 'course.degree.enrollment', 'submit_form',
                    s['enrollment'], value)
        self.assertRefusedRPC(
            dean.model, 'course.degree.enrollment', 'submit_form',
            s['enrollment'])

    # ---- Submissions and grading ----------------------------------------

    def test_submit_homework_callers(self):
        "Only the degree administration hands in homework over RPC"
        s = self.student()
        submission = s['submissions'][0]
        for login in ['mentor', 'manager', 'nobody']:
            with self.subTest(login=login):
                self.assertRefusedRPC(
                    self.login(login).model, 'course.degree.submission',
                    'submit', submission, "work", None)
        dean = self.login('dean')
        for args in [(None, None), ('x', 'file'), ('x', {'name': 'a'}),
                (5, None)]:
            with self.subTest(args=args):
                self.assertRefusedRPC(
                    dean.model, 'course.degree.submission', 'submit',
                    submission, *args)
        for value in BAD_IDS:
            with self.subTest(submission=value):
                self.assertRefusedRPC(
                    dean.model, 'course.degree.submission', 'submit',
                    value, "work", None)
        dean.model('course.degree.submission', 'submit', submission,
            "work", {'name': "a.py", 'data': b'print(1)'})

        def read():
            Submission = Pool().get('course.degree.submission')
            sub = Submission(submission)
            return sub.state, sub.count, sub.attachment_name
        self.assertEqual(self.run_transaction(read), ('to_grade', 1, "a.py"))

    def grade(self, client, submission, **values):
        start = {'score': 'A', 'passed': True, 'comment': "Good"}
        start.update(values)
        return client.execute_wizard(
            'course.degree.submission.grade', {'start': start}, 'grade',
            model='course.degree.submission', record=submission)

    def test_grade_by_mentor_only(self):
        "The student's mentor and the dean grade; another mentor cannot"
        s = self.student()
        first, second = s['submissions']
        dean = self.login('dean')
        for submission in s['submissions']:
            dean.model('course.degree.submission', 'submit', submission,
                "work", None)
        # Another mentor does not even see the homework (record rule)
        self.assertRefusedRPC(
            self.grade, self.login('mentor2'), first, text="own students")
        for login in ['manager', 'nobody']:
            with self.subTest(login=login):
                self.assertRefusedRPC(self.grade, self.login(login), first)
        self.grade(self.login('mentor'), first, score='B-')
        self.grade(dean, second, score='C', passed=False)

        def read():
            Submission = Pool().get('course.degree.submission')
            return [(s.state, s.score, s.points, s.graded_by.login)
                for s in Submission.browse([first, second])]
        self.assertEqual(self.run_transaction(read), [
                ('passed', 'B-', 70, 'mentor'),
                ('failed', 'C', 50, 'dean')])

    def test_grade_bad_values(self):
        "The wizard's score and passed are checked"
        s = self.student()
        first = s['submissions'][0]
        dean = self.login('dean')
        dean.model('course.degree.submission', 'submit', first, "w", None)
        for values in [{'score': 'E'}, {'score': None}, {'score': 'COPY'},
                {'score': 'D'}, {'comment': 'x' * 5000}]:
            with self.subTest(values=str(values)[:40]):
                self.assertRefusedRPC(
                    lambda: self.grade(dean, first, **values))

    # ---- Buttons --------------------------------------------------------

    def test_buttons_rights(self):
        "Suspend, resume, graduate, open, complete: degree administration"
        s = self.student()
        for login in ['mentor', 'manager', 'sales', 'nobody']:
            client = self.login(login)
            for model, button, record in [
                    ('course.degree.enrollment', 'suspend', s['enrollment']),
                    ('course.degree.enrollment', 'graduate',
                        s['enrollment']),
                    ('course.degree.study', 'open', s['records'][1]),
                    ('course.degree.study', 'complete', s['records'][0]),
                    ]:
                with self.subTest(login=login, button=button):
                    self.assertRefusedRPC(
                        client.model, model, button, [record])
        dean = self.login('dean')
        dean.model('course.degree.study', 'complete', [s['records'][0]])
        dean.model('course.degree.enrollment', 'suspend', [s['enrollment']])
        self.assertRefusedRPC(
            dean.model, 'course.degree.enrollment', 'suspend',
            [s['enrollment']], text="is Suspended")
        dean.model('course.degree.enrollment', 'resume', [s['enrollment']])
        for value in BAD_LISTS + [[v] for v in BAD_IDS]:
            with self.subTest(records=value):
                self.assertRefusedRPC(
                    dean.model, 'course.degree.enrollment', 'suspend',
                    value)

    # ---- Follow-ups -----------------------------------------------------

    def test_followups(self):
        "A mentor writes follow-ups of their students, as themselves"
        s = self.student()
        mentor = self.login('mentor')
        followup, = mentor.model('course.degree.followup', 'create', [{
                    'enrollment': s['enrollment'], 'tool': 'wechat',
                    'text': "Talked", 'mentor': self.data['users']['dean']}])
        mentor.model('course.degree.followup', 'write', [followup],
            {'text': "Talked twice"})
        other = self.login('mentor2')
        self.assertRefusedRPC(
            other.model, 'course.degree.followup', 'create', [{
                    'enrollment': s['enrollment'], 'tool': 'qq',
                    'text': "Hi"}], text="own students")
        self.assertRefusedRPC(
            other.model, 'course.degree.followup', 'write', [followup],
            {'text': "Mine"}, text="another mentor's")
        self.assertRefusedRPC(
            mentor.model, 'course.degree.followup', 'write', [followup],
            {'mentor': self.data['users']['mentor2']}, text="cannot be")
        self.assertRefusedRPC(
            self.login('nobody').model, 'course.degree.followup', 'create',
            [{'enrollment': s['enrollment'], 'tool': 'qq', 'text': "x"}])
        # Through the enrollment's form too
        mentor.model('course.degree.enrollment', 'write', [s['enrollment']],
            {'followups': [('create', [{'tool': 'phone', 'text': "Call"}])]})

        def read():
            Followup = Pool().get('course.degree.followup')
            return sorted((f.text, f.mentor.login) for f in Followup.search(
                    [('enrollment', '=', s['enrollment'])]))
        self.assertEqual(self.run_transaction(read), [
                ("Call", 'mentor'), ("Talked twice", 'mentor')])

    # ---- Checkout -------------------------------------------------------

    def test_checkout_degree_over_rpc(self):
        "Course Sales check a program out for a student"
        def party():
            Party = Pool().get('party.party')
            return Party.create([{'name': "Buyer"}])[0].id
        buyer = self.run_transaction(party)
        sales = self.login('sales')
        order = sales.model('course.order', 'checkout', buyer,
            [{'degree': self.data['degree'], 'option': None}], 'manual', {})
        self.assertIsInstance(order, int)
        self.assertRefusedRPC(
            sales.model, 'course.order', 'checkout', buyer,
            [{'degree': 'x'}], 'manual', {})
