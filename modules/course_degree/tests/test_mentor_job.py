"""The daily job of degree programs with committed data (SQLite and
PostgreSQL), and with real parallel transactions (PostgreSQL): each
penalty once, timeouts, maturity; concurrent withdrawals"""
import datetime as dt
import unittest
from decimal import Decimal

from trytond.modules.course.tests.tools import ConcurrencyTestMixin
from trytond.modules.course.tools import now
from trytond.modules.course_degree.tests.tools import (
    FORM, buy_degree, create_degree, create_mentor, enrollment_of)
from trytond.pool import Pool
from trytond.transaction import Transaction


def create_students(company_id, login, count, mentor=True):
    """A program of company_id, a mentor (login) and count students
    enrolled (module 1 open, mentor assigned unless mentor is False);
    return (mentor id, [enrollment id])"""
    pool = Pool()
    Company = pool.get('company.company')
    Enrollment = pool.get('course.degree.enrollment')
    Party = pool.get('party.party')
    company = Company(company_id)
    cat = create_degree(company)
    user = create_mentor(login, company)
    enrollments = []
    for i in range(count):
        party, = Party.create([{'name': f"{login} student {i}"}])
        buy_degree(party, cat.degree)
        enrollment = enrollment_of(party, cat.degree)
        Enrollment.submit_form(enrollment.id, FORM)
        if mentor:
            Enrollment.assign_mentor(enrollment.id, user.id)
        enrollments.append(enrollment.id)
    return user.id, enrollments


def make_overdue(enrollment_ids):
    "The homework of the enrollments due three days ago"
    Submission = Pool().get('course.degree.submission')
    submissions = Submission.search([
            ('enrollment', 'in', enrollment_ids),
            ('state', '=', 'to_submit')])
    Submission.write(submissions, {
            'due': dt.date.today() - dt.timedelta(days=3)})


def submit_long_ago(enrollment_ids, days=10):
    "Submit the first homework of each enrollment, days ago"
    Submission = Pool().get('course.degree.submission')
    for enrollment in enrollment_ids:
        submission = Submission.search([
                ('enrollment', '=', enrollment),
                ('state', 'in', ['to_submit', 'failed'])],
            order=[('id', 'ASC')], limit=1)[0]
        Submission.submit(submission.id, "work")
        Submission.write([submission], {
                'submitted': now() - dt.timedelta(days=days)})


def run_daily(*args):
    Enrollment = Pool().get('course.degree.enrollment')
    return Enrollment.run_daily(*args[1:] if args else ())


class DailyJobTestCase(ConcurrencyTestMixin, unittest.TestCase):
    "The daily job with committed data"
    module = 'course_degree'
    postgresql_only = False

    def students(self, count=1, mentor=True):
        type(self).logins = getattr(type(self), 'logins', 0) + 1
        return self.run_transaction(
            create_students, self.company_id,
            f'mentor{self.logins}', count, mentor)

    def job(self, batch_size=500):
        return self.run_transaction(
            lambda: Pool().get('course.degree.enrollment').run_daily(
                batch_size))

    def state(self, enrollment_ids):
        """[(reward states of the submissions), balance, [(kind, amount,
        matured)]] of each enrollment"""
        def read():
            pool = Pool()
            Enrollment = pool.get('course.degree.enrollment')
            Movement = pool.get('course.mentor.movement')
            result = []
            for enrollment in Enrollment.browse(enrollment_ids):
                result.append((
                        [s.reward_state for s in sorted(
                                enrollment.submissions, key=lambda s: s.id)],
                        enrollment.mentor_fee_balance,
                        [(m.kind, m.amount, m.matured)
                            for m in Movement.search(
                                [('enrollment', '=', enrollment.id)],
                                order=[('id', 'ASC')])]))
            return result
        return self.run_transaction(read)

    def test_late_submission_once(self):
        "A late homework is marked and penalized once, run after run"
        _, (first, second) = self.students(2)
        self.run_transaction(make_overdue, [first])
        done = self.job(batch_size=1)
        self.job()
        income = ('income', Decimal('1500.00'), False)
        penalty = ('penalty', Decimal('-50.00'), False)
        self.assertEqual(self.state([first, second]), [
                (['late', 'late'], Decimal('1400.00'),
                    [income, penalty, penalty]),
                (['none', 'none'], Decimal('1500.00'), [income]),
                ])
        self.assertEqual(len(done['late_submission']), 2)

    def test_handed_in_late_once(self):
        "Homework handed in after its due date is penalized once too"
        _, (first, second) = self.students(2)
        self.run_transaction(make_overdue, [first])
        self.run_transaction(submit_long_ago, [first, second], 0)
        self.job()
        self.job()
        income = ('income', Decimal('1500.00'), False)
        penalty = ('penalty', Decimal('-50.00'), False)
        self.assertEqual(self.state([first, second]), [
                (['late', 'late'], Decimal('1400.00'),
                    [income, penalty, penalty]),
                (['none', 'none'], Decimal('1500.00'), [income]),
                ])

    def test_late_grading_once(self):
        "Homework waiting longer than the grading days: penalized once"
        _, (late, recent) = self.students(2)
        self.run_transaction(submit_long_ago, [late], 8)
        self.run_transaction(submit_long_ago, [recent], 6)
        self.job()
        self.job()
        (states, balance, movements), (states2, balance2, _) = self.state(
            [late, recent])
        self.assertEqual(states, ['grading_late', 'none'])
        self.assertEqual(balance, Decimal('1450.00'))
        self.assertEqual(
            [m[0] for m in movements], ['income', 'penalty'])
        self.assertEqual((states2, balance2), (
                ['none', 'none'], Decimal('1500.00')))

    def test_both_penalties_and_cap(self):
        "Late, then graded late: both, never below zero; no mentor: none"
        _, (enrollment,) = self.students()
        _, (alone,) = self.students(mentor=False)

        def low_balance():
            Enrollment = Pool().get('course.degree.enrollment')
            Enrollment.write(
                [Enrollment(enrollment)],
                {'mentor_fee_balance': Decimal('70')})
        self.run_transaction(make_overdue, [enrollment, alone])
        # The audit sees the balance written by hand
        self.run_transaction(low_balance)
        self.job()
        self.run_transaction(submit_long_ago, [enrollment, alone])
        self.job()
        (states, balance, movements), (alone_states, _, alone_moves) = (
            self.state([enrollment, alone]))
        self.assertEqual(states, ['penalized', 'late'])
        self.assertEqual(balance, Decimal('0.00'))
        self.assertEqual([m[1] for m in movements], [
                Decimal('1500.00'), Decimal('-50.00'), Decimal('-20.00')])
        self.assertEqual(alone_states, ['penalized', 'late'])
        self.assertEqual(alone_moves, [])

    def test_timeout_and_maturity(self):
        "Past their end: timed out; graduated: the fee matures"
        mentor, (ended, graduated, studying) = self.students(3)

        def prepare():
            Enrollment = Pool().get('course.degree.enrollment')
            Enrollment.write([Enrollment(ended)], {
                    'end': now() - dt.timedelta(minutes=1)})
            Enrollment.graduate([Enrollment(graduated)])
        self.run_transaction(prepare)
        done = self.job()
        self.assertIn(ended, done['timed_out'])

        def read():
            pool = Pool()
            Enrollment = pool.get('course.degree.enrollment')
            Company = pool.get('company.company')
            Movement = pool.get('course.mentor.movement')
            return ([e.state for e in Enrollment.browse(
                            [ended, graduated, studying])],
                Movement.mentor_amounts(
                    [mentor], Company(self.company_id))[mentor])
        self.assertEqual(read_ := self.run_transaction(read), (
                ['timed_out', 'graduated', 'studying'],
                (Decimal('4500.00'), Decimal('1500.00'))))
        self.assertEqual(self.job()['matured'], [])
        self.assertEqual(self.run_transaction(read), read_)

    def test_cron_record(self):
        "The job is an ir.cron at 02:00 every day"
        def read():
            Cron = Pool().get('ir.cron')
            cron, = Cron.search([
                    ('method', '=', 'course.degree.enrollment|run_daily')])
            return cron.interval_number, cron.interval_type, cron.hour, (
                cron.minute)
        self.assertEqual(self.run_transaction(read), (1, 'days', 2, 0))


class DailyJobParallelTestCase(ConcurrencyTestMixin, unittest.TestCase):
    "Two daily jobs and two withdrawals at once (PostgreSQL)"
    module = 'course_degree'

    def test_jobs_in_parallel(self):
        "Two jobs at once take each penalty once"
        _, enrollments = self.run_transaction(
            create_students, self.company_id, 'parallel', 4)
        self.run_transaction(make_overdue, enrollments[:2])
        self.run_transaction(submit_long_ago, enrollments[2:])
        results = self.in_parallel(2, run_daily)
        self.assertEqual([r[0] for r in results], ['ok', 'ok'], results)

        def read():
            Movement = Pool().get('course.mentor.movement')
            return sorted(
                (str(m.origin), m.amount) for m in Movement.search([
                        ('enrollment', 'in', enrollments),
                        ('kind', '=', 'penalty')]))
        penalties = self.run_transaction(read)
        self.assertEqual(len(penalties), 6)  # 2 × 2 late, 2 graded late
        self.assertEqual(len({o for o, _ in penalties}), 6)

    def test_withdrawals_in_parallel(self):
        "Two withdrawals of 600 from 1000 matured: one passes"
        mentor, (enrollment,) = self.run_transaction(
            create_students, self.company_id, 'withdrawer', 1)

        def mature():
            pool = Pool()
            Enrollment = pool.get('course.degree.enrollment')
            Configuration = pool.get('course.degree.configuration')
            Enrollment.graduate([Enrollment(enrollment)])
            Enrollment._mature(Enrollment._maturing_batch(None, 0, 100), None)
            return Configuration(1).penalty('complaint')
        self.run_transaction(mature)

        def withdraw(i):
            Movement = Pool().get('course.mentor.movement')
            with Transaction().set_user(mentor):
                return Movement.withdraw(Decimal('900')).id
        results = self.in_parallel(2, withdraw)
        outcomes = sorted(r[0] for r in results)
        self.assertEqual(outcomes, ['error', 'ok'], results)
        error, = [r[1] for r in results if r[0] == 'error']
        self.assertIn("your matured income is 600.00", error.message)

        def read():
            pool = Pool()
            Company = pool.get('company.company')
            Movement = pool.get('course.mentor.movement')
            return Movement.mentor_amounts(
                [mentor], Company(self.company_id))[mentor]
        self.assertEqual(
            self.run_transaction(read),
            (Decimal('600.00'), Decimal('600.00')))
