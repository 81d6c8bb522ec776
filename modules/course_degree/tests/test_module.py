import datetime as dt
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.modules.company.tests import (
    CompanyTestMixin, create_company, set_company)
from trytond.modules.course.tools import now
from trytond.modules.course_degree.tests.tools import (
    FORM, buy_degree, create_degree, create_mentor, enrollment_of,
    set_mentor)
from trytond.modules.course_order.tests.tools import checkout
from trytond.pool import Pool
from trytond.tests.test_tryton import ModuleTestCase, with_transaction
from trytond.transaction import Transaction


class CourseDegreeTestCase(CompanyTestMixin, ModuleTestCase):
    "Test Course Degree module"
    module = 'course_degree'
    extras = ['course_coupon', 'course_credit']

    def setup_degree(self, **kwargs):
        company = create_company()
        transaction = Transaction()
        transaction.context = dict(transaction.context, company=company.id)
        return create_degree(company, **kwargs)

    def assertRefused(self, text, call, *args, models=(), **kwargs):
        """call(*args, **kwargs) raises a UserError with text and leaves
        the counts of models as they were (the caller rolls back: played
        with a savepoint)"""
        pool = Pool()
        models = list(models) + [
            'course.degree.enrollment', 'course.degree.form',
            'course.degree.study', 'course.degree.submission']

        def counts():
            return {n: pool.get(n).search([], count=True) for n in models}
        before = counts()
        cursor = Transaction().connection.cursor()
        cursor.execute('SAVEPOINT refused')
        try:
            with self.assertRaises(UserError) as cm:
                call(*args, **kwargs)
            self.assertIn(text, cm.exception.message)
        finally:
            cursor.execute('ROLLBACK TO SAVEPOINT refused')
            Transaction().counter += 1
            Transaction().cache.clear()
        self.assertEqual(counts(), before)
        return cm.exception

    def enrolled(self, cat, form=None, party=None):
        "Buy the program, pay and submit the form; return the enrollment"
        Enrollment = Pool().get('course.degree.enrollment')
        party = party or cat.student
        buy_degree(party, cat.degree)
        enrollment = enrollment_of(party, cat.degree)
        Enrollment.submit_form(enrollment.id, dict(FORM, **(form or {})))
        return Enrollment(enrollment.id)

    # ---- Checkout ---------------------------------------------------------

    @with_transaction()
    def test_checkout_degree_line(self):
        "A degree item is a line selling the program at its price"
        cat = self.setup_degree()
        order = buy_degree(cat.student, cat.degree, pay=False)
        line, = order.lines
        self.assertEqual(line.product, cat.degree)
        self.assertIsNone(line.course)
        self.assertIsNone(line.degree_option)
        self.assertEqual(line.unit_price, Decimal('9000.00'))
        self.assertEqual(order.payable_amount, Decimal('9000.00'))
        self.assertEqual(order.title, "Python Developer")

    @with_transaction()
    def test_checkout_degree_option(self):
        "An option sells the program at its price and validity"
        cat = self.setup_degree()
        order = buy_degree(cat.student, cat.degree, cat.option)
        line, = order.lines
        self.assertEqual(line.degree_option, cat.option)
        self.assertEqual(line.unit_price, Decimal('7000.00'))
        enrollment = enrollment_of(cat.student, cat.degree)
        self.assertEqual(enrollment.validity_days, 365)

    @with_transaction()
    def test_checkout_with_courses(self):
        "A program and a course in one order, one line each, in order"
        Course = Pool().get('course.course')
        cat = self.setup_degree()
        other, = Course.copy([cat.course_c], default={'published': True})
        Order = Pool().get('course.order')
        order = Order.checkout(cat.student.id, [
                {'course': other.id}, {'degree': cat.degree.id}],
            'manual', {})
        self.assertEqual(
            [l.product for l in order.lines], [other, cat.degree])
        self.assertEqual(order.total_amount, Decimal('9300.00'))

    @with_transaction()
    def test_checkout_refusals(self):
        "Unknown, unpublished, archived, other company's programs refused"
        pool = Pool()
        Degree = pool.get('course.degree')
        Order = pool.get('course.order')
        cat = self.setup_degree()
        student = cat.student.id

        def buy(*items):
            return Order.checkout(student, list(items), 'manual', {})
        self.assertRefused(
            "does not exist", buy, {'degree': 999999},
            models=['course.order'])
        other, = Degree.copy([cat.degree], default={'published': False})
        self.assertRefused(
            "is not for sale", buy, {'degree': other.id},
            models=['course.order'])
        archived, = Degree.copy([cat.degree], default={'active': False})
        self.assertRefused(
            "is not for sale", buy, {'degree': archived.id},
            models=['course.order'])
        self.assertRefused(
            "twice", buy, {'degree': cat.degree.id},
            {'degree': cat.degree.id}, models=['course.order'])
        published, = Degree.copy([cat.degree], default={'published': True})
        option = published.options[0]
        self.assertRefused(
            "is not an option", buy,
            {'degree': cat.degree.id, 'option': option.id},
            models=['course.order'])
        self.assertRefused(
            "not valid", buy, {'degree': 'x'}, models=['course.order'])
        self.assertRefused(
            "needs a course", buy, {'degree': cat.degree.id, 'course': 1},
            models=['course.order'])
        self.assertRefused(
            "Unknown keys in a program item", buy,
            {'degree': cat.degree.id, 'days': 1},
            models=['course.order'])
        # Another company's program
        company2 = create_company(name="Other School")
        with set_company(company2):
            cat2 = create_degree(company2)
        self.assertRefused(
            "is not for sale", buy, {'degree': cat2.degree.id},
            models=['course.order'])

    @with_transaction()
    def test_checkout_refuses_enrolled_and_pending(self):
        "A program already bought, or in an unpaid order, is refused"
        Order = Pool().get('course.order')
        cat = self.setup_degree()
        unpaid = buy_degree(cat.student, cat.degree, pay=False)
        self.assertRefused(
            "already in unpaid order", buy_degree, cat.student, cat.degree,
            models=['course.order'])
        Order.confirm_payment([unpaid])
        self.assertRefused(
            "already enrolled", buy_degree, cat.student, cat.degree,
            models=['course.order'])
        # Another student may buy it
        buy_degree(cat.other_student, cat.degree)

    @with_transaction()
    def test_module_course_not_sold_alone(self):
        "A course becomes a module not sold alone, unless staff say so"
        Course = Pool().get('course.course')
        cat = self.setup_degree()
        self.assertFalse(cat.course_a.sold_alone)
        self.assertRefused(
            "sold only as a module", checkout, cat.student, cat.course_b,
            models=['course.order'])
        Course.write([cat.course_b], {'sold_alone': True})
        order = checkout(cat.student, cat.course_b)
        self.assertEqual(order.lines[0].course, cat.course_b)
        # A course that is no module is sold whatever Sold Alone says
        other, = Course.copy([cat.course_c], default={'published': True})
        self.assertFalse(other.sold_alone)
        checkout(cat.student, other)

    # ---- Paying and refunding ----------------------------------------------

    @with_transaction()
    def test_pay_creates_enrollment_once(self):
        "Paying gives the enrollment and one locked record per module, once"
        pool = Pool()
        Order = pool.get('course.order')
        Enrollment = pool.get('course.degree.enrollment')
        Study = pool.get('course.degree.study')
        cat = self.setup_degree()
        order = buy_degree(cat.student, cat.degree, pay=False)
        self.assertEqual(Enrollment.search([], count=True), 0)
        Order.confirm_payment([order])
        enrollment = enrollment_of(cat.student, cat.degree)
        self.assertEqual(enrollment.state, 'not_started')
        self.assertEqual(enrollment.order_line, order.lines[0])
        self.assertEqual(enrollment.order, order)
        self.assertEqual(enrollment.company, order.company)
        self.assertEqual(enrollment.validity_days, 730)
        self.assertIsNone(enrollment.start)
        self.assertIsNone(enrollment.end)
        self.assertEqual(enrollment.mentor_fee_balance, Decimal(0))
        self.assertEqual(
            [(r.module, r.state, r.sequence)
                for r in enrollment.ordered_records],
            [(m, 'locked', i) for i, m in enumerate(cat.modules, 1)])
        # Paid again, fulfilled again: nothing more
        Order.pay([order])
        Order.fulfil([Order(order.id)])
        self.assertEqual(Enrollment.search([], count=True), 1)
        self.assertEqual(Study.search([], count=True), 3)

    @with_transaction()
    def test_free_degree_enrolls_at_checkout(self):
        "A program at 0.00 is paid at checkout and enrolls at once"
        cat = self.setup_degree(price='0')
        order = buy_degree(cat.student, cat.degree, pay=False)
        self.assertEqual(order.state, 'paid')
        self.assertEqual(
            enrollment_of(cat.student, cat.degree).state, 'not_started')

    @with_transaction()
    def test_refund_ends_enrollment(self):
        "A refund ends the enrollment for good: it cannot be resumed"
        pool = Pool()
        Order = pool.get('course.order')
        Enrollment = pool.get('course.degree.enrollment')
        cat = self.setup_degree()
        enrollment = self.enrolled(cat)
        self.assertEqual(enrollment.state, 'studying')
        Order.refund([enrollment.order])
        enrollment = Enrollment(enrollment.id)
        self.assertEqual(enrollment.state, 'suspended')
        self.assertTrue(enrollment.refunded)
        self.assertLessEqual(enrollment.end, now())
        self.assertRefused("cannot be resumed", Enrollment.resume,
            [enrollment])
        # Nothing opens any more, no homework is taken
        submission = enrollment.submissions[0]
        Submission = pool.get('course.degree.submission')
        self.assertRefused(
            "the enrollment is Suspended", Submission.submit,
            submission.id, "work")

    # ---- Registration form -------------------------------------------------

    @with_transaction()
    def test_form_opens_first_module(self):
        "The form with Open First Module opens module 1 and its homework"
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        cat = self.setup_degree()
        buy_degree(cat.student, cat.degree)
        enrollment = enrollment_of(cat.student, cat.degree)
        before = now()
        form_id = Enrollment.submit_form(
            enrollment.id, dict(FORM, study_plan='1-2'))
        enrollment = Enrollment(enrollment.id)
        self.assertEqual(enrollment.form.id, form_id)
        self.assertTrue(enrollment.form_submitted)
        self.assertEqual(enrollment.form.salary, Decimal('12000.00'))
        self.assertEqual(enrollment.state, 'studying')
        self.assertGreaterEqual(enrollment.start, before)
        self.assertEqual(
            enrollment.end - enrollment.start, dt.timedelta(days=730))
        first, second, third = enrollment.ordered_records
        self.assertEqual(
            [first.state, second.state, third.state],
            ['studying', 'locked', 'locked'])
        self.assertEqual(first.opened, enrollment.start)
        # 1-2 hours a day: 1.5 × the days, rounded up
        opened = first.opened.date()
        self.assertEqual(
            [(s.homework.name, s.state, s.due)
                for s in enrollment.submissions],
            [("A1", 'to_submit', opened + dt.timedelta(days=11)),
                ("A2", 'to_submit', opened + dt.timedelta(days=15))])

    @with_transaction()
    def test_due_dates_follow_plan(self):
        "Each study plan scales the days of the homework"
        from trytond.modules.course_degree.enrollment import due_date
        cat = self.setup_degree()
        opened = dt.datetime(2024, 3, 1, 10, 0)
        company = cat.company
        days = {plan: (due_date(opened, 10, plan, company)
                - opened.date()).days
            for plan in ['1-2', '2-3', '3-5', '5+']}
        self.assertEqual(days, {'1-2': 15, '2-3': 10, '3-5': 8, '5+': 5})
        self.assertEqual(
            due_date(opened, 0, '1-2', company), opened.date())

    @with_transaction()
    def test_form_without_opening(self):
        "Without Open First Module the form opens nothing; staff open later"
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        Study = pool.get('course.degree.study')
        cat = self.setup_degree()
        enrollment = self.enrolled(cat, {'open_first_module': False})
        self.assertEqual(enrollment.state, 'not_started')
        self.assertTrue(enrollment.form_submitted)
        self.assertEqual(
            {r.state for r in enrollment.records}, {'locked'})
        first = enrollment.first_locked_module()
        Study.open([first])
        enrollment = Enrollment(enrollment.id)
        self.assertEqual(enrollment.state, 'studying')
        self.assertEqual(len(enrollment.submissions), 2)

    @with_transaction()
    def test_form_gate(self):
        "No module opens before the form is submitted"
        Study = Pool().get('course.degree.study')
        cat = self.setup_degree()
        buy_degree(cat.student, cat.degree)
        enrollment = enrollment_of(cat.student, cat.degree)
        self.assertRefused(
            "before its registration form is submitted", Study.open,
            [enrollment.first_locked_module()])

    @with_transaction()
    def test_form_validation(self):
        "Each field of the form is checked; a refusal saves nothing"
        Enrollment = Pool().get('course.degree.enrollment')
        cat = self.setup_degree()
        buy_degree(cat.student, cat.degree)
        enrollment = enrollment_of(cat.student, cat.degree)
        cases = [
            ({'company_name': ''}, 'Fill in "Current Company"'),
            ({'company_name': None}, 'Fill in "Current Company"'),
            ({'company_name': 'x' * 65}, 'longer than 64'),
            ({'company_name': 12}, '"Current Company"'),
            ({'position': '  '}, 'Fill in "Position"'),
            ({'salary': None}, 'Fill in "Salary"'),
            ({'salary': -1}, '"Salary" in the registration form is not'),
            ({'salary': 'abc'}, '"Salary"'),
            ({'salary': 1.5}, '"Salary"'),
            ({'salary': '1.001'}, '"Salary"'),
            ({'salary': 'NaN'}, '"Salary"'),
            ({'salary': 10 ** 12}, '"Salary"'),
            ({'salary': True}, '"Salary"'),
            ({'experience': None}, 'Fill in "Work Experience"'),
            ({'experience': '11'}, '"Work Experience"'),
            ({'experience': 3}, '"Work Experience"'),
            ({'study_plan': '6+'}, '"Study Plan"'),
            ({'study_plan': None}, 'Fill in "Study Plan"'),
            ({'open_first_module': 'yes'}, '"Open First Module"'),
            ({'preferred_mentor': 'x' * 33}, 'longer than 32'),
            ({'why_course': ''}, 'Fill in "Why this Course"'),
            ({'why_us': 'x' * 1025}, 'longer than 1024'),
            ({'expectations': None}, 'Fill in "Expectations"'),
            ({'memo': 'x' * 256}, 'longer than 255'),
            ({'memo': ['x']}, '"Memo"'),
            ({'hobby': 'chess'}, 'has no field hobby'),
            ]
        for change, text in cases:
            with self.subTest(change=change):
                self.assertRefused(
                    text, Enrollment.submit_form, enrollment.id,
                    dict(FORM, **change))
        self.assertRefused(
            "not valid", Enrollment.submit_form, enrollment.id, ['x'])
        self.assertRefused(
            "not valid", Enrollment.submit_form, 'x', FORM)
        self.assertRefused(
            "not valid", Enrollment.submit_form, 999999, FORM)
        self.assertIsNone(Enrollment(enrollment.id).form)
        # Optional fields may be left out; texts are trimmed
        values = dict(FORM, company_name="  Acme  ")
        del values['memo'], values['preferred_mentor']
        Enrollment.submit_form(enrollment.id, values)
        form = Enrollment(enrollment.id).form
        self.assertEqual(form.company_name, "Acme")
        self.assertIsNone(form.memo)

    @with_transaction()
    def test_form_update(self):
        "A form submitted again is updated, not duplicated"
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        Form = pool.get('course.degree.form')
        cat = self.setup_degree()
        enrollment = self.enrolled(cat)
        Enrollment.submit_form(
            enrollment.id, dict(FORM, position="Lead", study_plan='5+'))
        self.assertEqual(Form.search([], count=True), 1)
        enrollment = Enrollment(enrollment.id)
        self.assertEqual(enrollment.form.position, "Lead")
        # Module 1 was open already: nothing more opens
        self.assertEqual(
            [r.state for r in enrollment.ordered_records],
            ['studying', 'locked', 'locked'])

    @with_transaction()
    def test_form_refused_when_suspended(self):
        "A suspended enrollment takes no form"
        Enrollment = Pool().get('course.degree.enrollment')
        cat = self.setup_degree()
        buy_degree(cat.student, cat.degree)
        enrollment = enrollment_of(cat.student, cat.degree)
        Enrollment.suspend([enrollment])
        self.assertRefused(
            "the enrollment is Suspended", Enrollment.submit_form,
            enrollment.id, FORM)
        Enrollment.resume([Enrollment(enrollment.id)])
        self.assertEqual(Enrollment(enrollment.id).state, 'not_started')

    # ---- Homework -----------------------------------------------------------

    @with_transaction()
    def test_submit_counts(self):
        "Submitting counts, stamps and waits for grading"
        Submission = Pool().get('course.degree.submission')
        cat = self.setup_degree()
        mentor = create_mentor('mentor', cat.company)
        enrollment = self.enrolled(cat)
        set_mentor(enrollment, mentor)
        submission = enrollment.submissions[0]
        Submission.submit(submission.id, "My work", None)
        submission = Submission(submission.id)
        self.assertEqual(submission.state, 'to_grade')
        self.assertEqual(submission.count, 1)
        self.assertEqual(submission.mentor, mentor)
        self.assertEqual(submission.text, "My work")
        self.assertIsNotNone(submission.submitted)
        # Waiting for the grade: not again
        self.assertRefused(
            "it cannot be submitted now", Submission.submit,
            submission.id, "Again")
        Submission.grade([submission], 'C-', "Redo it", False)
        Submission.submit(submission.id, None,
            {'name': "work.txt", 'data': b'print(1)'})
        submission = Submission(submission.id)
        self.assertEqual(submission.count, 2)
        self.assertEqual(submission.attachment_name, "work.txt")
        self.assertEqual(submission.state, 'to_grade')
        self.assertIsNone(submission.score)

    @with_transaction()
    def test_submit_refusals(self):
        "Empty work, bad attachments, a closed module are refused"
        Submission = Pool().get('course.degree.submission')
        cat = self.setup_degree()
        enrollment = self.enrolled(cat)
        submission = enrollment.submissions[0]
        for text, attachment, message in [
                (None, None, "Hand in a text or an attachment"),
                ('  ', None, "Hand in a text or an attachment"),
                (12, None, "must be a text"),
                ('x' * 20001, None, "longer than 20000"),
                (None, {'name': 'a'}, "a file name and its content"),
                (None, {'name': '', 'data': b'x'}, "a file name"),
                (None, {'name': 'a', 'data': 'x'}, "a file name"),
                (None, 'file', "a file name"),
                ]:
            with self.subTest(text=text, attachment=attachment):
                self.assertRefused(
                    message, Submission.submit, submission.id, text,
                    attachment)
        # The homework of a locked module is not even created
        self.assertEqual(
            {s.study.state for s in enrollment.submissions}, {'studying'})

    @with_transaction()
    def test_grade_scores(self):
        "The score gives the points; D and COPY never pass"
        Submission = Pool().get('course.degree.submission')
        cat = self.setup_degree()
        enrollment = self.enrolled(cat)
        submission = enrollment.submissions[0]
        Submission.submit(submission.id, "work")
        for score in ['D', 'COPY']:
            self.assertRefused(
                "cannot pass", Submission.grade, [submission], score,
                None, True)
        self.assertRefused(
            "Choose one of the scores", Submission.grade, [submission],
            'E', None, True)
        self.assertRefused(
            "Say whether", Submission.grade, [submission], 'A', None, 1)
        Submission.grade([submission], 'B+', " Good ", True)
        submission = Submission(submission.id)
        self.assertEqual(submission.state, 'passed')
        self.assertEqual(submission.points, 85)
        self.assertEqual(submission.comment, "Good")
        self.assertIsNotNone(submission.graded)
        self.assertRefused(
            "there is nothing to grade", Submission.grade, [submission],
            'A', None, True)
        from trytond.modules.course_degree.homework import POINTS
        self.assertEqual(POINTS, {
                'A+': 100, 'A': 90, 'B+': 85, 'B': 80, 'B-': 70, 'C+': 60,
                'C': 50, 'C-': 40, 'D': -1, 'N/A': 0, 'COPY': -100})

    @with_transaction()
    def test_grader_is_mentor(self):
        "Only the student's mentor or the degree administration grades"
        pool = Pool()
        Submission = pool.get('course.degree.submission')
        cat = self.setup_degree()
        mentor = create_mentor('mentor', cat.company)
        other = create_mentor('other', cat.company)
        boss = create_mentor('boss', cat.company, admin=True)
        enrollment = self.enrolled(cat)
        set_mentor(enrollment, mentor)
        first, second = enrollment.submissions
        Submission.submit(first.id, "work")
        Submission.submit(second.id, "work")
        with Transaction().set_user(other.id):
            self.assertRefused(
                "Only the mentor of the student", Submission.grade,
                [first], 'A', None, True)
        with Transaction().set_user(mentor.id):
            Submission.grade([first], 'A', None, True)
        with Transaction().set_user(boss.id):
            Submission.grade([second], 'A+', None, True)
        self.assertEqual(
            [Submission(s.id).graded_by for s in [first, second]],
            [mentor, boss])

    @with_transaction()
    def test_walk_to_graduation(self):
        "Passing every homework opens each module in turn, then graduates"
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        Submission = pool.get('course.degree.submission')
        cat = self.setup_degree()
        enrollment = self.enrolled(cat)
        for module in cat.modules:
            enrollment = Enrollment(enrollment.id)
            studying = [r for r in enrollment.records
                if r.state == 'studying']
            self.assertEqual([r.module for r in studying], [module])
            to_do = [s for s in enrollment.submissions
                if s.study == studying[0]]
            self.assertEqual(len(to_do), len(module.homeworks))
            for submission in to_do:
                Submission.submit(submission.id, "work")
            # A failed homework keeps the module open
            Submission.grade(to_do[:1], 'C', "Again", False)
            self.assertEqual(
                Enrollment(enrollment.id).state, 'studying')
            Submission.submit(to_do[0].id, "better")
            Submission.grade(to_do, 'A', None, True)
        enrollment = Enrollment(enrollment.id)
        self.assertEqual(enrollment.state, 'graduated')
        self.assertEqual(
            {r.state for r in enrollment.records}, {'completed'})
        self.assertEqual(
            {s.state for s in enrollment.submissions}, {'passed'})

    @with_transaction()
    def test_staff_complete_module(self):
        "Staff complete a module: the next one opens"
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        Study = pool.get('course.degree.study')
        cat = self.setup_degree()
        enrollment = self.enrolled(cat)
        first = enrollment.ordered_records[0]
        Study.complete([first])
        enrollment = Enrollment(enrollment.id)
        self.assertEqual(
            [r.state for r in enrollment.ordered_records],
            ['completed', 'studying', 'locked'])
        self.assertRefused("it cannot complete", Study.complete, [first])
        self.assertRefused("it cannot open", Study.open, [first])

    @with_transaction()
    def test_suspend_resume_graduate(self):
        "Staff suspend (nothing opens), resume and graduate"
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        Study = pool.get('course.degree.study')
        cat = self.setup_degree()
        enrollment = self.enrolled(cat)
        Enrollment.suspend([enrollment])
        self.assertRefused(
            "the enrollment is Suspended", Study.open,
            [Enrollment(enrollment.id).first_locked_module()])
        Enrollment.resume([Enrollment(enrollment.id)])
        self.assertEqual(Enrollment(enrollment.id).state, 'studying')
        Enrollment.graduate([Enrollment(enrollment.id)])
        self.assertEqual(Enrollment(enrollment.id).state, 'graduated')
        self.assertRefused(
            "is Graduated", Enrollment.suspend, [Enrollment(enrollment.id)])

    # ---- Coupons and credit (extras) ----------------------------------------

    @with_transaction()
    def test_coupon_degree_scope(self):
        "A coupon naming programs applies to their lines only"
        from trytond.modules.course_coupon.tests.tools import (
            create_coupon, give)
        pool = Pool()
        Order = pool.get('course.order')
        Course = pool.get('course.course')
        cat = self.setup_degree()
        coupon = create_coupon(cat.company, '-500', scope='degree',
            degrees=[('add', [cat.degree.id])])
        self.assertEqual(coupon.scope_ids, {cat.degree.id})
        grant = give(coupon, cat.student)
        other, = Course.copy([cat.course_c], default={'published': True})
        order = Order.checkout(cat.student.id, [
                {'course': other.id}, {'degree': cat.degree.id}],
            'manual', {'grants': [grant.id]})
        course_line, degree_line = order.lines
        self.assertEqual(degree_line.discount_amount, Decimal('500.00'))
        self.assertEqual(course_line.discount_amount, Decimal('0.00'))
        self.assertEqual(order.payable_amount, Decimal('8800.00'))

    @with_transaction()
    def test_coupon_degree_scope_refused_for_courses(self):
        "A program coupon on an order of courses only is refused"
        from trytond.modules.course_coupon.tests.tools import (
            create_coupon, give)
        Course = Pool().get('course.course')
        cat = self.setup_degree()
        coupon = create_coupon(cat.company, '-50', scope='degree',
            degrees=[('add', [cat.degree.id])])
        grant = give(coupon, cat.student)
        other, = Course.copy([cat.course_c], default={'published': True})
        self.assertRefused(
            "does not apply to any", checkout, cat.student, other,
            grants=[grant.id],
            models=['course.order'])

    @with_transaction()
    def test_coupon_general_covers_degree(self):
        "A general coupon covers program lines; a course scope does not"
        from trytond.modules.course_coupon.tests.tools import (
            create_coupon, give)
        pool = Pool()
        Order = pool.get('course.order')
        cat = self.setup_degree()
        general = give(create_coupon(cat.company, '*0.9'), cat.student)
        order = buy_degree(
            cat.other_student, cat.degree, pay=False)
        Order.cancel([order])
        order = Order.checkout(cat.student.id, [
                {'degree': cat.degree.id}], 'manual',
            {'grants': [general.id]})
        self.assertEqual(order.payable_amount, Decimal('8100.00'))
        course_only = give(create_coupon(cat.company, '-100',
                scope='course', courses=[cat.course_a]), cat.other_student)
        self.assertRefused(
            "does not apply to any", buy_degree, cat.other_student,
            cat.degree, grants=[course_only.id], models=['course.order'])

    @with_transaction()
    def test_credit_cap_on_degree(self):
        "Credit points go to a program line up to its cap"
        from trytond.modules.course_credit.tests.tools import grant
        pool = Pool()
        Degree = pool.get('course.degree')
        cat = self.setup_degree()
        grant(cat.student, 5000)
        # Without a cap no point is taken
        self.assertRefused(
            "at most 0 credit points", buy_degree, cat.student, cat.degree,
            pay=False, credit=100, models=['course.order'])
        Degree.write([cat.degree], {'credit': 1000})
        order = buy_degree(cat.student, cat.degree, pay=False, credit=1000)
        self.assertEqual(order.payable_amount, Decimal('8900.00'))
        self.assertEqual(order.lines[0].discount_amount, Decimal('100.00'))
        self.assertRefused(
            "cannot be negative", Degree.write, [cat.degree],
            {'credit': -1})

    # ---- Follow-ups --------------------------------------------------------

    @with_transaction()
    def test_followups(self):
        "A mentor logs follow-ups of their own students only"
        pool = Pool()
        Followup = pool.get('course.degree.followup')
        cat = self.setup_degree()
        mentor = create_mentor('mentor', cat.company)
        other = create_mentor('other', cat.company)
        enrollment = self.enrolled(cat)
        set_mentor(enrollment, mentor)
        with Transaction().set_user(mentor.id), \
                Transaction().set_context(_check_access=True):
            followup, = Followup.create([{
                        'enrollment': enrollment.id, 'tool': 'phone',
                        'text': "Called", 'mentor': other.id}])
        self.assertEqual(followup.mentor, mentor)
        with Transaction().set_user(other.id), \
                Transaction().set_context(_check_access=True):
            # The record rule refuses first (a mentor sees their students)
            self.assertRefused(
                "own students", Followup.create, [{
                        'enrollment': enrollment.id, 'tool': 'qq',
                        'text': "Hi"}], models=['course.degree.followup'])
            self.assertRefused(
                "another mentor's", Followup.write, [followup],
                {'text': "Changed"}, models=['course.degree.followup'])


del ModuleTestCase
