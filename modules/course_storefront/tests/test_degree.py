"""degree.*: a student buys a degree program through the storefront, sees
it in degree.mine, submits the registration form (the gate of the modules)
and hands in homework; another student's enrollment or homework is not
found, like an unknown one; where course_degree is not activated the
methods do not exist."""
import base64
import json
import unittest
import uuid
from decimal import Decimal

from trytond.pool import Pool

from .tools import StorefrontError, StorefrontTestMixin

# A registration form the storefront accepts (salary as text)
FORM = {
    'company_name': "Acme",
    'position': "Developer",
    'salary': '12000.50',
    'experience': '3',
    'study_plan': '2-3',
    'why_course': "To learn Python well.",
    'why_us': "Good mentors.",
    'expectations': "A better job.",
    }
SECRET_NOTE = "mentor-only note 7f3a"
UNKNOWN = 2 ** 31 - 1


class DegreeTestMixin(StorefrontTestMixin):
    module = ['course_storefront', 'course_degree']

    @classmethod
    def setup_data(cls):
        from trytond.modules.course_degree.tests.tools import create_mentor
        super().setup_data()
        pool = Pool()
        Company = pool.get('company.company')
        Course = pool.get('course.course')
        Degree = pool.get('course.degree')
        catalog = cls.catalog

        def homework(name, days, sequence=1):
            return {'name': name, 'days': days, 'sequence': sequence}

        def module(course, sequence, homeworks):
            return {'course': course, 'sequence': sequence,
                'homeworks': [('create', homeworks)]}
        alone, other_course = Course.create([{
                    'name': name, 'price': Decimal(100), 'credit': 0,
                    'direction': catalog['direction'],
                    'category': catalog['category'],
                    'company': cls.company_id, 'published': True,
                    } for name in ["Alone", "Other module"]])
        catalog['alone'] = alone.id
        degree, other, hidden = Degree.create([{
                    'name': "Python Developer", 'company': cls.company_id,
                    'price': Decimal(9000), 'published': True,
                    'options': [('create', [{'name': "One year",
                                    'days': 365, 'price': Decimal(7000)}])],
                    'modules': [('create', [
                                module(catalog['a'], 1, [
                                        homework("A1", 7, 1),
                                        homework("A2", 10, 2)]),
                                module(catalog['b'], 2, [homework("B1", 3)]),
                                module(catalog['c'], 3, [homework("C1", 0)]),
                                ])],
                    }, {
                    'name': "Other program", 'company': cls.company_id,
                    'price': Decimal(500), 'published': True,
                    'modules': [('create', [
                                module(other_course.id, 1,
                                    [homework("O1", 5)])])],
                    }, {
                    'name': "Hidden program", 'company': cls.company_id,
                    'price': Decimal(10), 'published': False,
                    }])
        cls.degree_id = degree.id
        cls.option_id, = [o.id for o in degree.options]
        cls.homeworks = [
            [h.id for h in sorted(m.homeworks, key=lambda h: h.sequence)]
            for m in degree.ordered_modules]
        cls.other_degree_id = other.id
        cls.other_homework_id, = [
            h.id for m in other.modules for h in m.homeworks]
        cls.hidden_degree_id = hidden.id
        cls.mentor_id = create_mentor(
            'mentor', Company(cls.company_id)).id

    # ---- helpers ------------------------------------------------------------

    def student(self):
        client = self.client()
        user = client.register(f'{uuid.uuid4().hex[:12]}@example.com',
            name="Degree Student")
        client.party_id = self.run_transaction(
            lambda: Pool().get('web.user')(user['user']['id']).party.id)
        return client

    def assertRefused(self, type_, client, method, params=None):
        with self.assertRaises(StorefrontError) as cm:
            client.call(method, params)
        self.assertEqual(cm.exception.type, type_, cm.exception.message)
        return cm.exception

    def confirm(self, number):
        "Staff confirm the manual payment of the order"
        def confirm():
            Order = Pool().get('course.order')
            order, = Order.search([('number', '=', number)])
            Order.confirm_payment([order])
        self.run_transaction(confirm)

    def buy(self, client, degree=None, option=None):
        "The program bought (manual payment confirmed): its enrollment"
        params = {'degree': degree or self.degree_id,
            'pay_method': 'manual'}
        if option:
            params['degree_option'] = option
        order = client.call('order.create', params)
        self.confirm(order['number'])
        enrollment, = [e for e in client.call('degree.mine', {})
            if e['degree'] == (degree or self.degree_id)]
        return enrollment

    def studying(self, client):
        "A student of the program with module 1 open: the enrollment"
        enrollment = self.buy(client)
        return client.call('degree.form.submit',
            dict(FORM, enrollment=enrollment['enrollment']))

    def set_mentor(self, enrollment_id):
        def set_():
            from trytond.modules.course_degree.tests.tools import set_mentor
            pool = Pool()
            set_mentor(
                pool.get('course.degree.enrollment')(enrollment_id),
                pool.get('res.user')(self.mentor_id))
        self.run_transaction(set_)

    def grade(self, enrollment_id, homework_id, score, passed, comment):
        "The mentor grades the student's homework"
        def grade():
            Submission = Pool().get('course.degree.submission')
            submission, = Submission.search([
                    ('enrollment', '=', enrollment_id),
                    ('homework', '=', homework_id)])
            Submission.grade([submission], score, comment, passed)
        self.run_transaction(grade)


class DegreeStorefrontTestCase(DegreeTestMixin, unittest.TestCase):

    def test_programs(self):
        "The published programs with options, modules and homework"
        programs = self.client().call('degree.programs')
        self.assertEqual(
            [p['id'] for p in programs],
            [self.degree_id, self.other_degree_id])
        program = programs[0]
        self.assertEqual(program['price'], '9000.00')
        self.assertEqual(program['validity_days'], 730)
        self.assertEqual(program['options'], [{
                    'id': self.option_id, 'name': "One year", 'days': 365,
                    'price': '7000.00'}])
        self.assertEqual([m['course'] for m in program['modules']], [
                self.catalog['a'], self.catalog['b'], self.catalog['c']])
        self.assertEqual([m['sequence'] for m in program['modules']],
            [1, 2, 3])
        self.assertEqual(program['modules'][0]['homeworks'], [
                {'name': "A1", 'days': 7}, {'name': "A2", 'days': 10}])

    def test_buy_program(self):
        """checkout.preview and order.create of a program: the order holds
        the program only, the cart stays; paid, degree.mine shows it"""
        client = self.student()
        client.call('cart.add', {'course': self.catalog['alone']})
        preview = client.call('checkout.preview', {
                'degree': self.degree_id, 'degree_option': self.option_id})
        line, = preview['lines']
        self.assertEqual(
            (line['degree'], line['course'], line['option'], line['amount']),
            (self.degree_id, None, self.option_id, '7000.00'))
        self.assertEqual(preview['payable'], '7000.00')
        order = client.call('order.create', {
                'degree': self.degree_id, 'degree_option': self.option_id,
                'pay_method': 'manual', 'expect_payable': '7000.00'})
        self.assertEqual((order['state'], order['payable']),
            ('unpaid', '7000.00'))
        # The cart is left as it was
        self.assertEqual([i['course'] for i in client.call(
                    'cart.get')['items']], [self.catalog['alone']])
        line, = client.call('order.get', {'number': order['number']})[
            'lines']
        self.assertEqual((line['degree'], line['course'], line['option']),
            (self.degree_id, None, self.option_id))
        self.assertIn("Python Developer", line['name'])
        # Not paid: no enrollment; a second order is refused meanwhile
        self.assertEqual(client.call('degree.mine', {}), [])
        self.assertRefused('degree.pending', client, 'order.create', {
                'degree': self.degree_id, 'pay_method': 'manual'})
        self.confirm(order['number'])
        enrollment, = client.call('degree.mine', {})
        self.assertEqual(enrollment['degree'], self.degree_id)
        self.assertEqual(enrollment['state'], 'not_started')
        self.assertEqual(enrollment['order'], order['number'])
        self.assertEqual(enrollment['validity_days'], 365)
        self.assertIsNone(enrollment['start'])
        self.assertIsNone(enrollment['mentor'])
        self.assertFalse(enrollment['form_submitted'])
        self.assertEqual(
            [(r['course'], r['state']) for r in enrollment['records']],
            [(self.catalog['a'], 'locked'), (self.catalog['b'], 'locked'),
                (self.catalog['c'], 'locked')])
        # Bought once
        self.assertRefused('degree.enrolled', client, 'checkout.preview',
            {'degree': self.degree_id})

    def test_buy_refused(self):
        "Unknown, unpublished programs and other programs' options"
        client = self.student()
        for params in [{'degree': UNKNOWN}, {'degree': self.hidden_degree_id},
                {'degree': self.other_degree_id,
                    'degree_option': self.option_id}]:
            for method, extra in [('checkout.preview', {}),
                    ('order.create', {'pay_method': 'manual'})]:
                with self.subTest(params=params, method=method):
                    error = self.assertRefused('not_found', client, method,
                        dict(params, **extra))
                    self.assertEqual(error.code, -32004)
        # An option without its program is not valid
        self.assertRefused('params.invalid', client, 'checkout.preview',
            {'degree_option': self.option_id})
        # A module of a program is not sold alone
        client.call('cart.add', {'course': self.catalog['a']})
        self.assertRefused('cart.course_not_sold_alone', client,
            'checkout.preview')
        self.assertEqual(client.call('order.list', {})['total'], 0)

    def test_form_gate(self):
        """The modules stay locked until the form is submitted; submitted
        without opening, nothing opens; with it, module 1 opens and its
        homework is due"""
        client = self.student()
        enrollment = self.buy(client)
        number = enrollment['enrollment']
        self.assertEqual(client.call(
                'degree.homework.list', {'enrollment': number}), [])
        self.assertRefused('degree.homework_closed', client,
            'degree.homework.submit', {
                'homework': self.homeworks[0][0], 'text': "early"})
        got = client.call('degree.form.submit', dict(
                FORM, enrollment=number, open_first_module=False))
        self.assertTrue(got['form_submitted'])
        self.assertEqual(got['state'], 'not_started')
        self.assertEqual({r['state'] for r in got['records']}, {'locked'})
        got = client.call('degree.form.submit', dict(
                FORM, enrollment=number, study_plan='1-2'))
        self.assertEqual(got['state'], 'studying')
        self.assertTrue(got['start'] and got['end'])
        self.assertEqual([r['state'] for r in got['records']],
            ['studying', 'locked', 'locked'])
        homework = client.call('degree.homework.list', {'enrollment': number})
        self.assertEqual([h['homework'] for h in homework], self.homeworks[0])
        self.assertEqual({h['state'] for h in homework}, {'to_submit'})
        self.assertTrue(all(h['due'] for h in homework))
        # 1-2 hours a day: 7 days × 1.5 → 11 days, 10 × 1.5 → 15
        import datetime as dt
        days = [(dt.date.fromisoformat(h['due']) - dt.date.fromisoformat(
                    got['start'][:10])).days for h in homework]
        self.assertEqual(days, [11, 15])

    def test_form_invalid(self):
        "Bad forms: params.invalid; the model's refusals; nothing saved"
        client = self.student()
        number = self.buy(client)['enrollment']
        for change in [{'salary': '-1'}, {'salary': 'abc'},
                {'salary': '1.234'}, {'salary': 1000},
                {'experience': '11'}, {'study_plan': '9+'},
                {'why_course': '   '}, {'why_us': 'x' * 1025},
                {'company_name': None}, {'memo': 'x' * 256},
                {'open_first_module': 'yes'}, {'unknown': 1}]:
            with self.subTest(change=change):
                error = self.assertRefused('params.invalid', client,
                    'degree.form.submit', dict(FORM, enrollment=number,
                        **change))
                self.assertEqual(error.code, -32602)
        missing = dict(FORM, enrollment=number)
        del missing['why_us']
        error = self.assertRefused('params.invalid', client,
            'degree.form.submit', missing)
        self.assertEqual(error.data['errors'],
            [{'field': 'why_us', 'type': 'missing'}])
        enrollment, = client.call('degree.mine', {})
        self.assertFalse(enrollment['form_submitted'])
        # A suspended enrollment: the model refuses the form
        def suspend():
            Enrollment = Pool().get('course.degree.enrollment')
            Enrollment.suspend([Enrollment(number)])
        self.run_transaction(suspend)
        error = self.assertRefused('degree.closed', client,
            'degree.form.submit', dict(FORM, enrollment=number))
        self.assertEqual(error.code, -32010)
        enrollment, = client.call('degree.mine', {})
        self.assertEqual(
            (enrollment['state'], enrollment['form_submitted']),
            ('suspended', False))

    def test_homework(self):
        """Text or attachment (exactly one), graded by the mentor, handed
        in again after a failed grade; module 2 opens once module 1 passed"""
        client = self.student()
        enrollment = self.studying(client)
        number = enrollment['enrollment']
        first, second = self.homeworks[0]
        got = client.call('degree.homework.submit',
            {'homework': first, 'text': "  my answer  "})
        self.assertEqual(
            (got['homework'], got['state'], got['count'], got['text']),
            (first, 'to_grade', 1, "my answer"))
        self.assertRefused('degree.homework_closed', client,
            'degree.homework.submit', {'homework': first, 'text': "again"})
        data = b'%PDF-1.4 homework'
        got = client.call('degree.homework.submit', {
                'homework': second, 'attachment': {
                    'name': "answer.pdf",
                    'data': base64.b64encode(data).decode()}})
        self.assertEqual((got['attachment_name'], got['text'], got['state']),
            ("answer.pdf", None, 'to_grade'))
        self.assertEqual(self.run_transaction(lambda: bytes(Pool().get(
                        'course.degree.submission').search([
                            ('enrollment', '=', number),
                            ('homework', '=', second)])[0].attachment)),
            data)
        # The mentor: their name only in degree.mine
        self.set_mentor(number)
        self.grade(number, first, 'D', False, "Try again")
        self.grade(number, second, 'A', True, "Good")
        homework = {h['homework']: h for h in client.call(
                'degree.homework.list', {'enrollment': number})}
        self.assertEqual(
            [(homework[h]['state'], homework[h]['score'],
                    homework[h]['points'], homework[h]['comment'])
                for h in [first, second]],
            [('failed', 'D', -1, "Try again"), ('passed', 'A', 90, "Good")])
        self.assertTrue(homework[first]['graded'])
        got = client.call('degree.homework.submit',
            {'homework': first, 'text': "better"})
        self.assertEqual((got['state'], got['count'], got['score']),
            ('to_grade', 2, None))
        self.grade(number, first, 'B+', True, None)
        enrollment, = client.call('degree.mine', {})
        self.assertEqual(enrollment['mentor'], "Mentor")
        self.assertEqual([r['state'] for r in enrollment['records']],
            ['completed', 'studying', 'locked'])
        self.assertEqual(
            [h['homework'] for h in client.call(
                    'degree.homework.list', {'enrollment': number})],
            self.homeworks[0] + self.homeworks[1])

    def test_homework_invalid(self):
        "Neither or both of text and attachment, bad base64, too large"
        client = self.student()
        self.studying(client)
        homework = self.homeworks[0][0]
        good = {'name': "a.txt", 'data': base64.b64encode(b'x').decode()}
        big = base64.b64encode(b'x' * (1024 * 1024 + 1)).decode()
        for params in [{}, {'text': "a", 'attachment': good},
                {'text': "   "}, {'text': 'x' * 20001},
                {'attachment': dict(good, data="not base64!")},
                {'attachment': dict(good, data="eA")},
                {'attachment': dict(good, data=big)},
                {'attachment': dict(good, name="../etc/passwd")},
                {'attachment': dict(good, name="")},
                {'attachment': dict(good, extra=1)},
                {'attachment': "eA=="}]:
            with self.subTest(params=str(params)[:80]):
                self.assertRefused('params.invalid', client,
                    'degree.homework.submit', dict(params, homework=homework))
        got, _ = client.call('degree.homework.list', {
                'enrollment': client.call('degree.mine', {})[0][
                    'enrollment']})
        self.assertEqual((got['state'], got['count']), ('to_submit', 0))


class DegreeIsolationTestCase(DegreeTestMixin, unittest.TestCase):
    """A student never sees or touches another student's enrollment,
    homework or mentor notes: their ids are not found, like unknown ids"""

    def assertSameNotFound(self, client, method, params, key, other):
        "The answer for another's id is the answer for an unknown id"
        answers = []
        for value in [other, UNKNOWN]:
            error = self.assertRefused(
                'not_found', client, method, dict(params, **{key: value}))
            answers.append((error.code, error.type,
                    error.message.replace(str(value), '#'), error.data))
        self.assertEqual(answers[0], answers[1])

    def test_isolation(self):
        alice, bob = self.student(), self.student()
        alice_enrollment = self.studying(alice)['enrollment']
        bob_enrollment = self.studying(bob)['enrollment']
        self.buy(bob, self.other_degree_id)
        bob_other, = [e['enrollment'] for e in bob.call('degree.mine', {})
            if e['degree'] == self.other_degree_id]
        bob.call('degree.form.submit', dict(FORM, enrollment=bob_other))
        bob.call('degree.homework.submit',
            {'homework': self.other_homework_id, 'text': "bob's work"})
        self.set_mentor(bob_enrollment)

        def note():
            Followup = Pool().get('course.degree.followup')
            Followup.create([{'enrollment': e, 'tool': 'wechat',
                        'text': SECRET_NOTE}
                    for e in [alice_enrollment, bob_enrollment]])
        self.run_transaction(note)

        def bob_state():
            return [bob.call('degree.mine', {})] + [
                bob.call('degree.homework.list', {'enrollment': e})
                for e in [bob_enrollment, bob_other]]
        before = bob_state()

        for other in [bob_enrollment, bob_other]:
            self.assertSameNotFound(alice, 'degree.homework.list', {},
                'enrollment', other)
            self.assertSameNotFound(alice, 'degree.form.submit', FORM,
                'enrollment', other)
        # A homework of Bob's other program: Alice has none of it
        self.assertSameNotFound(alice, 'degree.homework.submit',
            {'text': "mine?"}, 'homework', self.other_homework_id)
        # The homework of their common program is Alice's own submission
        alice.call('degree.homework.submit',
            {'homework': self.homeworks[0][0], 'text': "alice's"})
        self.assertEqual(bob_state(), before)

        seen = json.dumps([alice.call('degree.mine', {}), alice.call(
                    'degree.homework.list',
                    {'enrollment': alice_enrollment})], ensure_ascii=False)
        self.assertNotIn(SECRET_NOTE, seen)
        self.assertNotIn("bob's work", seen)
        self.assertNotIn(str(bob_enrollment), [
                str(e['enrollment']) for e in alice.call('degree.mine', {})])
        # The other programs' ids stay out of Alice's results
        mine, = alice.call('degree.mine', {})
        self.assertEqual(set(mine), {
                'enrollment', 'degree', 'name', 'state', 'refunded', 'start',
                'end', 'validity_days', 'form_submitted', 'mentor', 'order',
                'records'})
        self.assertIsNone(mine['mentor'])
        self.assertEqual(bob.call('degree.mine', {})[-1]['mentor'], "Mentor")

    def test_not_authenticated(self):
        client = self.client()
        for method, params in [('degree.mine', {}),
                ('degree.homework.list', {'enrollment': 1}),
                ('degree.homework.submit', {'homework': 1, 'text': "x"}),
                ('degree.form.submit', dict(FORM, enrollment=1))]:
            with self.subTest(method=method):
                self.assertRefused('auth.required', client, method, params)


class WithoutDegreeTestCase(StorefrontTestMixin, unittest.TestCase):
    "Where course_degree is not activated the degree methods do not exist"

    def test_methods_absent(self):
        client = self.client()
        client.register(f'{uuid.uuid4().hex[:12]}@example.com')
        for method, params in [('degree.programs', None),
                ('degree.mine', {}),
                ('degree.homework.list', {'enrollment': 1})]:
            with self.subTest(method=method):
                answer = client.raw(method, params)
                self.assertEqual(answer['error']['code'], -32601)
                self.assertEqual(answer['error']['data']['type'],
                    'method_not_found')
        names = [m['name'] for m in client.call('rpc.discover')['methods']]
        self.assertFalse([n for n in names if n.startswith('degree.')])
        self.assertIn('order.create', names)
        answer = client.raw('checkout.preview', {'degree': 1})
        self.assertEqual(answer['error']['data']['type'], 'not_found')
