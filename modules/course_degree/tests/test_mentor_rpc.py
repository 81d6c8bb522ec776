"""The mentor part of course_degree over real JSON-RPC: a mentor sees
their own students only; the ledger cannot be written; the wizards and
the configuration check the caller's group and their input."""
import unittest
from decimal import Decimal

from trytond.modules.course_degree.tests import test_rpc
from trytond.pool import Pool


class MentorRPCTestCase(test_rpc.DegreeRPCTestCase):
    "Mentors, ledger and wizards over RPC"

    # The base's tests run in their own class, not again here
    for name in list(vars(test_rpc.DegreeRPCTestCase)):
        if name.startswith('test_'):
            locals()[name] = None
    del name

    def assign(self, client, enrollment, mentor):
        return client.execute_wizard(
            'course.degree.enrollment.assign_mentor',
            {'start': {'mentor': mentor}}, 'assign',
            model='course.degree.enrollment', record=enrollment)

    def complain(self, client, enrollment, reason):
        return client.execute_wizard(
            'course.degree.enrollment.complaint',
            {'start': {'reason': reason}}, 'record_',
            model='course.degree.enrollment', record=enrollment)

    def withdraw(self, client, amount):
        return client.execute_wizard(
            'course.mentor.withdraw', {'start': {'amount': amount}},
            'withdraw')

    def movements(self):
        "Every movement, as root: (mentor login, kind, amount)"
        def read():
            Movement = Pool().get('course.mentor.movement')
            return [(m.mentor.login, m.kind, m.amount)
                for m in Movement.search([], order=[('id', 'ASC')])]
        return self.run_transaction(read)

    def snapshot(self):
        return (super().snapshot(), self.movements())

    def test_mentor_sees_own_students(self):
        "Enrollments, homework, follow-ups, movements: their own only"
        mine = self.student('mentor')
        theirs = self.student('mentor2')
        dean = self.login('dean')
        for s, login in [(mine, 'mentor'), (theirs, 'mentor2')]:
            self.assign(dean, s['enrollment'], self.data['users'][login])
        self.login('mentor2').model('course.degree.followup', 'create', [{
                    'enrollment': theirs['enrollment'], 'tool': 'qq',
                    'text': "Hello"}])
        mentor = self.login('mentor')
        for model, field in [
                ('course.degree.enrollment', 'id'),
                ('course.degree.submission', 'enrollment'),
                ('course.degree.study', 'enrollment'),
                ('course.degree.form', 'enrollment'),
                ('course.degree.followup', 'enrollment'),
                ('course.mentor.movement', 'enrollment'),
                ]:
            with self.subTest(model=model):
                found = mentor.model(model, 'search', [
                        (field, 'in',
                            [mine['enrollment'], theirs['enrollment']])],
                    0, None, None)
                ids = {r[field] if field != 'id' else r['id']
                    for r in mentor.model(model, 'read', found, [field])}
                self.assertEqual(ids - {mine['enrollment']}, set())
        self.assertRefusedRPC(
            mentor.model, 'course.degree.enrollment', 'read',
            [theirs['enrollment']], ['party'])
        self.assertRefusedRPC(
            mentor.model, 'course.degree.submission', 'read',
            theirs['submissions'], ['text'])
        ledgers = mentor.model('course.mentor.ledger', 'search_read',
            [], 0, None, None, ['mentor', 'balance', 'matured'])
        self.assertEqual(
            {l['mentor'] for l in ledgers}, {self.data['users']['mentor']})
        # My Students: the searcher of the menu's domain
        mine_only = mentor.model('course.degree.enrollment', 'search',
            [('my_student', '=', True)], 0, None, None)
        self.assertIn(mine['enrollment'], mine_only)
        # The dean sees both
        both = dean.model('course.degree.enrollment', 'search', [
                ('id', 'in', [mine['enrollment'], theirs['enrollment']])],
            0, None, None)
        self.assertEqual(len(both), 2)

    def test_ledger_audit(self):
        "The degree administration audits the ledger over RPC; no other"
        s = self.student('mentor')
        self.assign(self.login('dean'), s['enrollment'],
            self.data['users']['mentor'])
        self.assertEqual(self.login('dean').model(
                'course.mentor.movement', 'audit'), [])
        for login in ['mentor', 'nobody']:
            with self.subTest(login=login):
                self.assertRefusedRPC(self.login(login).model,
                    'course.mentor.movement', 'audit')

    def test_ledger_refused_to_all(self):
        "No group creates, writes or deletes a movement over RPC"
        s = self.student('mentor')
        self.assign(self.login('dean'), s['enrollment'],
            self.data['users']['mentor'])

        def first():
            Movement = Pool().get('course.mentor.movement')
            return Movement.search([])[0].id
        movement = self.run_transaction(first)
        for login in ['admin', 'dean', 'mentor', 'nobody']:
            client = self.login(login)
            with self.subTest(login=login):
                self.assertRefusedRPC(
                    client.model, 'course.mentor.movement', 'create', [{
                            'mentor': self.data['users']['mentor'],
                            'company': self.company_id, 'kind': 'income',
                            'enrollment': s['enrollment'],
                            'amount': Decimal(5)}])
                self.assertRefusedRPC(
                    client.model, 'course.mentor.movement', 'write',
                    [movement], {'amount': Decimal(5)})
                self.assertRefusedRPC(
                    client.model, 'course.mentor.movement', 'delete',
                    [movement])

    def test_assign_wizard(self):
        "Degree administration assigns a mentor; others and bad input not"
        s = self.student(None)
        users = self.data['users']
        for login in ['mentor', 'manager', 'nobody']:
            with self.subTest(login=login):
                self.assertRefusedRPC(
                    self.assign, self.login(login), s['enrollment'],
                    users['mentor'])
        dean = self.login('dean')
        for value in [users['dean'], 999999, -1, 'x']:
            with self.subTest(mentor=value):
                self.assertRefusedRPC(
                    self.assign, dean, s['enrollment'], value)
        self.assign(dean, s['enrollment'], users['mentor'])
        self.assign(dean, s['enrollment'], users['mentor'])
        self.assign(dean, s['enrollment'], users['mentor2'])
        self.assertEqual(self.movements()[-3:], [
                ('mentor', 'income', Decimal('1500.00')),
                ('mentor', 'adjust', Decimal('-1500.00')),
                ('mentor2', 'adjust', Decimal('1500.00')),
                ])

    def test_complaint_wizard(self):
        "Degree administration records a complaint with a reason"
        s = self.student(None)
        dean = self.login('dean')
        self.assign(dean, s['enrollment'], self.data['users']['mentor'])
        for login in ['mentor', 'manager', 'nobody']:
            with self.subTest(login=login):
                self.assertRefusedRPC(
                    self.complain, self.login(login), s['enrollment'], "x")
        for reason in ['', '  ', 'x' * 256]:
            with self.subTest(reason=reason[:5]):
                self.assertRefusedRPC(
                    self.complain, dean, s['enrollment'], reason)
        self.complain(dean, s['enrollment'], "Does not answer")
        self.assertEqual(self.movements()[-1], (
                'mentor', 'penalty', Decimal('-100.00')))

    def test_withdraw_wizard(self):
        "A mentor withdraws matured income; more, or bad amounts, refused"
        s = self.student(None)
        dean = self.login('dean')
        self.assign(dean, s['enrollment'], self.data['users']['mentor2'])
        dean.model('course.degree.enrollment', 'graduate', [s['enrollment']])

        def mature():
            Enrollment = Pool().get('course.degree.enrollment')
            Enrollment._mature(Enrollment._maturing_batch(None, 0, 1000), None)
        self.run_transaction(mature)
        mentor = self.login('mentor2')

        def ledger():
            row, = mentor.model('course.mentor.ledger', 'search_read',
                [], 0, None, None, ['balance', 'matured'])
            return row['balance'], row['matured']
        balance, matured = ledger()
        self.assertGreaterEqual(matured, Decimal('1500.00'))
        for login in ['nobody', 'manager']:
            with self.subTest(login=login):
                self.assertRefusedRPC(
                    self.withdraw, self.login(login), Decimal('1'))
        self.assertRefusedRPC(
            self.withdraw, dean, Decimal('1'), text="Only a user")
        for amount in [matured + Decimal('0.01'), Decimal('0'), Decimal('-1'),
                Decimal('0.001'), 'x', 1.5, None]:
            with self.subTest(amount=amount):
                self.assertRefusedRPC(self.withdraw, mentor, amount)
        self.withdraw(mentor, Decimal('1000'))
        self.assertEqual(self.movements()[-1], (
                'mentor2', 'withdrawal', Decimal('-1000.00')))
        self.assertEqual(ledger(), (
                balance - Decimal('1000.00'), matured - Decimal('1000.00')))

    def test_configuration_rights(self):
        "Degree administration sets the score rules, validated"
        dean = self.login('dean')
        dean.model('course.degree.configuration', 'write', [1],
            {'complaint_penalty': Decimal('80')})
        for values in [{'complaint_penalty': Decimal('-1')},
                {'grading_days': 0},
                {'late_grading_penalty': Decimal('0.001')}]:
            with self.subTest(values=values):
                self.assertRefusedRPC(
                    dean.model, 'course.degree.configuration', 'write', [1],
                    values)
        self.assertRefusedRPC(
            self.login('mentor').model, 'course.degree.configuration',
            'write', [1], {'grading_days': 3})
        dean.model('course.degree.configuration', 'write', [1],
            {'complaint_penalty': Decimal('100')})

    def test_wizard_records(self):
        "The wizards refuse a record that does not exist"
        dean = self.login('dean')
        self.assertRefusedRPC(
            self.assign, dean, 999999, self.data['users']['mentor'],
            kinds=('UserError', 'AccessError', 'MissingError'))
        self.assertRefusedRPC(
            self.complain, dean, 999999, "x",
            kinds=('UserError', 'AccessError', 'MissingError'))
