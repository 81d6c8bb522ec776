"""The mentor part of course_degree in one transaction: the score rules,
the mentor-fee ledger, the assignment, complaints and withdrawals"""
import unittest
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError
from trytond.modules.company.tests import create_company
from trytond.modules.course_degree.tests.tools import (
    FORM, buy_degree, create_degree, create_mentor, enrollment_of)
from trytond.pool import Pool
from trytond.tests.test_tryton import (
    activate_module, drop_db, with_transaction)
from trytond.transaction import Transaction


class MentorTestCase(unittest.TestCase):
    "Mentor-fee ledger, score rules and the mentor wizards"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        drop_db()
        activate_module('course_degree')

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        drop_db()

    def setup(self):
        "A program, an enrolled student (module 1 open), two mentors, a dean"
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        company = create_company()
        transaction = Transaction()
        transaction.context = dict(transaction.context, company=company.id)
        cat = create_degree(company)
        buy_degree(cat.student, cat.degree)
        enrollment = enrollment_of(cat.student, cat.degree)
        Enrollment.submit_form(enrollment.id, FORM)
        cat.enrollment = Enrollment(enrollment.id)
        cat.mentor = create_mentor('mentor', company)
        cat.mentor2 = create_mentor('mentor2', company)
        cat.dean = create_mentor('dean', company, admin=True)
        return cat

    def movements(self, enrollment=None, mentor=None):
        Movement = Pool().get('course.mentor.movement')
        domain = []
        if enrollment:
            domain.append(('enrollment', '=', enrollment.id))
        if mentor:
            domain.append(('mentor', '=', mentor.id))
        return [(m.mentor.login, m.kind, m.amount, m.matured)
            for m in Movement.search(domain, order=[('id', 'ASC')])]

    def balance(self, enrollment):
        Enrollment = Pool().get('course.degree.enrollment')
        return Enrollment(enrollment.id).mentor_fee_balance

    def amounts(self, mentor, company):
        Movement = Pool().get('course.mentor.movement')
        return Movement.mentor_amounts([mentor.id], company)[mentor.id]

    def assertRefused(self, text, call, *args, error=UserError):
        "call(*args) raises error with text; nothing stays written"
        Movement = Pool().get('course.mentor.movement')
        before = Movement.search([], count=True)
        cursor = Transaction().connection.cursor()
        cursor.execute('SAVEPOINT refused')
        try:
            with self.assertRaises(error) as cm:
                call(*args)
            self.assertIn(text, cm.exception.message)
        finally:
            cursor.execute('ROLLBACK TO SAVEPOINT refused')
            Transaction().counter += 1
            Transaction().cache.clear()
        self.assertEqual(Movement.search([], count=True), before)

    # ---- Configuration ----------------------------------------------------

    @with_transaction()
    def test_configuration_defaults_and_checks(self):
        "Defaults; negative, over-precise and zero grading days refused"
        Configuration = Pool().get('course.degree.configuration')
        config = Configuration(1)
        self.assertEqual(config.grading_days, 7)
        # The singleton's row first (its table lock restarts the test)
        config, = Configuration.create([{}])
        self.assertEqual(config.penalty('late_submission'), Decimal('50.00'))
        self.assertEqual(config.penalty('complaint'), Decimal('100.00'))
        for values in [
                {'late_submission_penalty': Decimal('-1')},
                {'late_grading_penalty': Decimal('0.001')},
                {'complaint_penalty': Decimal('1e12')},
                {'grading_days': 0},
                {'grading_days': 366},
                ]:
            with self.subTest(values=values):
                self.assertRefused(
                    "", Configuration.write, [config], values,
                    error=ValidationError)
        self.assertEqual(Configuration(1).grading_days, 7)
        Configuration.write([config], {
                'late_submission_penalty': Decimal('0'),
                'grading_days': 3})
        self.assertEqual(Configuration(1).penalty('late_submission'), 0)

    # ---- Assignment ---------------------------------------------------

    @with_transaction()
    def test_assign_credits_fee(self):
        "The first mentor gets the program's fee; the balance is the fee"
        Enrollment = Pool().get('course.degree.enrollment')
        cat = self.setup()
        Enrollment.assign_mentor(cat.enrollment.id, cat.mentor.id)
        self.assertEqual(Enrollment(cat.enrollment.id).mentor, cat.mentor)
        self.assertEqual(self.balance(cat.enrollment), Decimal('1500.00'))
        self.assertEqual(self.movements(cat.enrollment), [
                ('mentor', 'income', Decimal('1500.00'), False)])
        self.assertEqual(
            self.amounts(cat.mentor, cat.company),
            (Decimal('1500.00'), Decimal('0.00')))
        # The same mentor again: nothing
        self.assertEqual(
            Enrollment.assign_mentor(cat.enrollment.id, cat.mentor.id), [])
        self.assertEqual(len(self.movements()), 1)

    @with_transaction()
    def test_refund_takes_back_fee(self):
        "A refund takes the balance left back from the mentor, once"
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        Order = pool.get('course.order')
        cat = self.setup()
        Enrollment.assign_mentor(cat.enrollment.id, cat.mentor.id)
        Enrollment.complain(cat.enrollment.id, "No answer for a week")
        Order.refund([cat.enrollment.order])
        self.assertEqual(self.balance(cat.enrollment), Decimal('0.00'))
        self.assertEqual(self.movements(cat.enrollment), [
                ('mentor', 'income', Decimal('1500.00'), False),
                ('mentor', 'penalty', Decimal('-100.00'), False),
                ('mentor', 'adjust', Decimal('-1400.00'), False)])
        self.assertEqual(
            self.amounts(cat.mentor, cat.company),
            (Decimal('0.00'), Decimal('0.00')))
        # Ending it again takes nothing more
        Enrollment.end_refunded([Enrollment(cat.enrollment.id)])
        self.assertEqual(len(self.movements(cat.enrollment)), 3)

    @with_transaction()
    def test_refund_of_graduate_keeps_fee(self):
        "A graduate refunded stays graduated; the fee stays the mentor's"
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        Order = pool.get('course.order')
        cat = self.setup()
        Enrollment.assign_mentor(cat.enrollment.id, cat.mentor.id)
        Enrollment.graduate([Enrollment(cat.enrollment.id)])
        Order.refund([cat.enrollment.order])
        enrollment = Enrollment(cat.enrollment.id)
        self.assertEqual((enrollment.state, enrollment.refunded),
            ('graduated', True))
        self.assertEqual(self.balance(cat.enrollment), Decimal('1500.00'))
        self.assertEqual(self.movements(cat.enrollment), [
                ('mentor', 'income', Decimal('1500.00'), False)])

    @with_transaction()
    def test_enrollment_movements_mature_together(self):
        "A batch of the maturing step is of enrollments, not movements"
        Enrollment = Pool().get('course.degree.enrollment')
        cat = self.setup()
        Enrollment.assign_mentor(cat.enrollment.id, cat.mentor.id)
        Enrollment.assign_mentor(cat.enrollment.id, cat.mentor2.id)
        Enrollment.graduate([Enrollment(cat.enrollment.id)])
        batch = Enrollment._maturing_batch(None, 0, 1)
        self.assertEqual(batch, [cat.enrollment.id])
        Enrollment._mature(batch, None)
        self.assertEqual(self.movements(cat.enrollment), [
                ('mentor', 'income', Decimal('1500.00'), True),
                ('mentor', 'adjust', Decimal('-1500.00'), True),
                ('mentor2', 'adjust', Decimal('1500.00'), True)])
        self.assertEqual(
            self.amounts(cat.mentor, cat.company),
            (Decimal('0.00'), Decimal('0.00')))

    @with_transaction()
    def test_reassign_moves_balance(self):
        "A new mentor takes the balance left from the former one"
        Enrollment = Pool().get('course.degree.enrollment')
        cat = self.setup()
        Enrollment.assign_mentor(cat.enrollment.id, cat.mentor.id)
        Enrollment.complain(cat.enrollment.id, "Never answers")
        Enrollment.assign_mentor(cat.enrollment.id, cat.mentor2.id)
        self.assertEqual(self.movements(cat.enrollment), [
                ('mentor', 'income', Decimal('1500.00'), False),
                ('mentor', 'penalty', Decimal('-100.00'), False),
                ('mentor', 'adjust', Decimal('-1400.00'), False),
                ('mentor2', 'adjust', Decimal('1400.00'), False),
                ])
        self.assertEqual(self.balance(cat.enrollment), Decimal('1400.00'))
        self.assertEqual(self.amounts(cat.mentor, cat.company)[0], 0)
        self.assertEqual(
            self.amounts(cat.mentor2, cat.company)[0], Decimal('1400.00'))
        Movement = Pool().get('course.mentor.movement')
        self.assertEqual(Movement.audit(), [])

    @with_transaction()
    def test_assign_refusals(self):
        "Staff only; a mentor of the group, of the company; open states"
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        User = pool.get('res.user')
        cat = self.setup()
        nobody, = User.create([{'name': "Nobody", 'login': 'nobody'}])
        with Transaction().set_user(cat.mentor.id):
            self.assertRefused(
                "Only the group", Enrollment.assign_mentor,
                cat.enrollment.id, cat.mentor.id)
        for value in [nobody.id, None, 'x', 999999, True]:
            with self.subTest(mentor=value):
                self.assertRefused(
                    'group "Course Mentor"', Enrollment.assign_mentor,
                    cat.enrollment.id, value)
        for value in [999999, 'x', None, -1]:
            with self.subTest(enrollment=value):
                with self.assertRaises(UserError):
                    Enrollment.assign_mentor(value, cat.mentor.id)
        other_company = create_company("Other")
        stranger = create_mentor('stranger', other_company)
        self.assertRefused(
            "does not work for", Enrollment.assign_mentor,
            cat.enrollment.id, stranger.id)
        Enrollment.graduate([cat.enrollment])
        self.assertRefused(
            "is settled", Enrollment.assign_mentor,
            cat.enrollment.id, cat.mentor.id)

    # ---- Complaints ---------------------------------------------------

    @with_transaction()
    def test_complaint_capped_at_balance(self):
        "A complaint takes the penalty, at most what is left, never below 0"
        pool = Pool()
        Configuration = pool.get('course.degree.configuration')
        Enrollment = pool.get('course.degree.enrollment')
        cat = self.setup()
        self.assertRefused(
            "has no mentor", Enrollment.complain, cat.enrollment.id, "Late")
        Enrollment.assign_mentor(cat.enrollment.id, cat.mentor.id)
        Configuration.write([Configuration(1)], {
                'complaint_penalty': Decimal('1000')})
        Enrollment.complain(cat.enrollment.id, "  Rude  ")
        Enrollment.complain(cat.enrollment.id, "Rude again")
        self.assertEqual(self.balance(cat.enrollment), 0)
        movements = self.movements(cat.enrollment)
        self.assertEqual([m[2] for m in movements], [
                Decimal('1500.00'), Decimal('-1000.00'), Decimal('-500.00')])
        Movement = pool.get('course.mentor.movement')
        self.assertEqual(
            [m.description for m in Movement.search(
                    [('kind', '=', 'penalty')], order=[('id', 'ASC')])],
            ["Rude", "Rude again"])
        self.assertRefused(
            "Nothing is left", Enrollment.complain,
            cat.enrollment.id, "Third")
        for reason in [None, '', '   ', 5, 'x' * 256]:
            with self.subTest(reason=str(reason)[:10]):
                self.assertRefused(
                    "reason", Enrollment.complain, cat.enrollment.id, reason)
        with Transaction().set_user(cat.mentor.id):
            self.assertRefused(
                "Only the group", Enrollment.complain,
                cat.enrollment.id, "x")

    # ---- Withdrawal ---------------------------------------------------

    def matured(self, cat):
        "The student graduates and the job matures the fee"
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        Movement = pool.get('course.mentor.movement')
        Enrollment.assign_mentor(cat.enrollment.id, cat.mentor.id)
        Enrollment.complain(cat.enrollment.id, "Slow")
        Enrollment.graduate([cat.enrollment])
        ids = Enrollment._maturing_batch(None, 0, 100)
        Enrollment._mature(ids, None)
        self.assertEqual(
            [m.matured for m in Movement.search([])], [True, True])

    @with_transaction()
    def test_withdraw_matured_only(self):
        "A mentor withdraws at most their matured income"
        Movement = Pool().get('course.mentor.movement')
        Enrollment = Pool().get('course.degree.enrollment')
        cat = self.setup()
        Enrollment.assign_mentor(cat.enrollment.id, cat.mentor.id)
        with Transaction().set_user(cat.mentor.id):
            self.assertRefused(
                "your matured income is 0.00", Movement.withdraw,
                Decimal('1'))
        Enrollment.complain(cat.enrollment.id, "Slow")
        Enrollment.graduate([cat.enrollment])
        Enrollment._mature(Enrollment._maturing_batch(None, 0, 100), None)
        self.assertEqual(
            self.amounts(cat.mentor, cat.company),
            (Decimal('1400.00'), Decimal('1400.00')))
        with Transaction().set_user(cat.mentor.id):
            self.assertRefused(
                "cannot withdraw 1400.01", Movement.withdraw,
                Decimal('1400.01'))
            for value in [Decimal('0'), Decimal('-5'), 0]:
                with self.subTest(amount=value):
                    self.assertRefused(
                        "above zero", Movement.withdraw, value)
            for value in [Decimal('0.001'), 1.5, 'x', None, 'NaN', [1]]:
                with self.subTest(amount=value):
                    self.assertRefused(
                        "amount of the currency", Movement.withdraw, value)
            movement = Movement.withdraw(Decimal('1000.50'))
            Movement.withdraw('399.50')
            self.assertRefused(
                "your matured income is 0.00", Movement.withdraw,
                Decimal('0.01'))
        self.assertEqual(movement.kind, 'withdrawal')
        self.assertEqual(movement.amount, Decimal('-1000.50'))
        self.assertTrue(movement.matured)
        self.assertEqual(movement.created_by, cat.mentor)
        self.assertEqual(
            self.amounts(cat.mentor, cat.company), (0, 0))
        with Transaction().set_user(cat.dean.id):
            # In the degree administration but no mentor
            pool = Pool()
            User = pool.get('res.user')
            ModelData = pool.get('ir.model.data')
            User.write([cat.dean], {'groups': [('remove', [
                                ModelData.get_id(
                                    'course_degree', 'group_mentor')])]})
            self.assertRefused(
                'Only a user of the group', Movement.withdraw,
                Decimal('1'))
        self.assertEqual(Movement.audit(), [])

    # ---- Append-only ------------------------------------------------

    @with_transaction()
    def test_ledger_append_only(self):
        "No user creates, writes, deletes or copies a movement"
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        Movement = pool.get('course.mentor.movement')
        cat = self.setup()
        Enrollment.assign_mentor(cat.enrollment.id, cat.mentor.id)
        movement, = Movement.search([])
        for user in [cat.mentor.id, cat.dean.id]:
            with Transaction().set_user(user), \
                    Transaction().set_context(_check_access=True):
                self.assertRefused(
                    "only by the Assign Mentor", Movement.create, [{
                            'mentor': cat.mentor.id,
                            'company': cat.company.id,
                            'enrollment': cat.enrollment.id,
                            'kind': 'income', 'amount': Decimal(1)}])
        # Even server code cannot change or delete one
        self.assertRefused(
            "cannot be changed", Movement.write, [movement],
            {'amount': Decimal(1)})
        self.assertRefused("cannot be changed", Movement.delete, [movement])
        self.assertRefused("only by the Assign", Movement.copy, [movement])
        # The signs of the kinds
        for kind, amount, enrollment in [
                ('income', Decimal(-1), cat.enrollment.id),
                ('penalty', Decimal(1), cat.enrollment.id),
                ('withdrawal', Decimal(-1), cat.enrollment.id),
                ('adjust', Decimal(0), cat.enrollment.id),
                ('income', Decimal(1), None),
                ]:
            with self.subTest(kind=kind, amount=amount):
                self.assertRefused(
                    "cannot have the amount", Movement.record, [{
                            'mentor': cat.mentor.id,
                            'company': cat.company.id,
                            'enrollment': enrollment,
                            'kind': kind, 'amount': amount}])

    @with_transaction()
    def test_ledger_view_and_audit(self):
        "The ledger sums per mentor; the audit finds a broken balance"
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        Ledger = pool.get('course.mentor.ledger')
        Movement = pool.get('course.mentor.movement')
        cat = self.setup()
        Enrollment.assign_mentor(cat.enrollment.id, cat.mentor.id)
        Enrollment.assign_mentor(cat.enrollment.id, cat.mentor2.id)
        ledgers = Ledger.search([], order=[('mentor', 'ASC')])
        self.assertEqual(
            sorted((l.mentor.login, l.balance, l.matured) for l in ledgers),
            [('mentor', 0, 0), ('mentor2', Decimal('1500.00'), 0)])
        ledger, = [l for l in ledgers if l.mentor == cat.mentor2]
        self.assertEqual(
            [m.kind for m in Movement.search(
                    [('ledger', 'in', [ledger.id])])], ['adjust'])
        self.assertEqual(Movement.audit(), [])
        Enrollment.write([cat.enrollment], {
                'mentor_fee_balance': Decimal('1')})
        self.assertEqual(len(Movement.audit()), 1)

    @with_transaction()
    def test_my_student(self):
        "My Students and To Grade: the mentor's own"
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        Submission = pool.get('course.degree.submission')
        cat = self.setup()
        Enrollment.assign_mentor(cat.enrollment.id, cat.mentor.id)
        for user, count in [(cat.mentor, 1), (cat.mentor2, 0)]:
            with Transaction().set_user(user.id):
                self.assertEqual(Enrollment.search(
                        [('my_student', '=', True)], count=True), count)
                self.assertEqual(Submission.search(
                        [('my_student', '=', True)], count=True),
                    2 * count)
