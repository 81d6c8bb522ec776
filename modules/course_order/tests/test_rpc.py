"""Orders over real RPC as the staff users: only the workflow writes them,
and every exposed method checks its caller and its input"""
import unittest
import xmlrpc.client
from decimal import Decimal

from trytond.modules.course.tests.rpc import (
    BAD_IDS, BAD_LISTS, RPCTestMixin)

from .tools import checkout

STAFF = ['sales', 'manager', 'admin']


def xmlrpc_can_carry(value):
    "Can XML-RPC marshal value (no int beyond 32 bits, str keys only)?"
    try:
        xmlrpc.client.dumps((value,), allow_none=True)
    except (OverflowError, TypeError):
        return False
    return True


class CourseOrderRPCTestCase(RPCTestMixin, unittest.TestCase):
    "Orders, lines, discounts and enrollments over JSON-RPC and XML-RPC"
    module = 'course_order'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()

        def catalog():
            from trytond.modules.course.tests.tools import create_catalog
            from trytond.pool import Pool
            Company = Pool().get('company.company')
            cat = create_catalog(Company(cls.company_id))
            return {
                'course_a': cat.course_a.id, 'course_b': cat.course_b.id,
                'course_c': cat.course_c.id,
                'option_a_month': cat.option_a_month.id,
                }
        cls.cat = cls.run_transaction_class(catalog)

    @classmethod
    def run_transaction_class(cls, func, *args):
        from trytond.modules.course.tests.tools import run_transaction
        return run_transaction(
            func, *args, context={'company': cls.company_id})

    # ---- Helpers (as root, committed) -------------------------------------

    def student(self):
        "A new student: each test checks out its own courses"
        def create():
            from trytond.pool import Pool
            Party = Pool().get('party.party')
            party, = Party.create([{'name': "Student"}])
            return party.id
        return self.run_transaction(create)

    def order(self, *courses, state='unpaid'):
        "Check out courses (names of self.cat) for a new student"
        def create(party_id):
            from trytond.pool import Pool
            pool = Pool()
            Course = pool.get('course.course')
            Order = pool.get('course.order')
            Party = pool.get('party.party')
            order = checkout(Party(party_id),
                *Course.browse([self.cat[c] for c in courses]))
            if state in {'paid', 'refunded'}:
                Order.confirm_payment([order])
            if state == 'refunded':
                Order.refund([order])
            elif state == 'cancelled':
                Order.cancel([order])
            return order.id
        return self.run_transaction(create, self.student())

    def read(self, model, id_, *names):
        "The values of names of a record, read as root"
        def read():
            from trytond.pool import Pool
            record, = Pool().get(model).read([id_], list(names))
            return {n: record[n] for n in names}
        return self.run_transaction(read)

    def counts(self):
        "How many orders, lines, discounts and enrollments there are"
        def count():
            from trytond.pool import Pool
            pool = Pool()
            return {name: pool.get(name).search([], count=True) for name in [
                    'course.order', 'course.order.line',
                    'course.order.discount', 'course.enrollment',
                    'party.party']}
        return self.run_transaction(count)

    def lines_of(self, order_id):
        return list(self.read('course.order', order_id, 'lines')['lines'])

    def enrollments_of(self, order_id):
        return list(self.read('course.order', order_id, 'enrollments')[
                'enrollments'])

    def assertRefused(self, client, model, method, *args, text=None):
        "The call is refused with a UserError (with text) over RPC"
        return self.assertRPCError(
            client.model, model, method, *args, text=text)

    # ---- Part 1: workflow fields are written by the workflow only -----------

    def test_write_paid_to_unpaid_refused(self):
        """Writing a paid order back to unpaid is refused for every group, so
        cancel cannot give anything back afterwards"""
        order = self.order('course_a', state='paid')
        enrollment, = self.enrollments_of(order)
        for login in STAFF:
            for protocol in ['json', 'xml']:
                with self.subTest(login=login, protocol=protocol):
                    client = self.login(login, protocol)
                    self.assertRefused(
                        client, 'course.order', 'write', [order],
                        {'state': 'unpaid'}, text="cannot be changed by hand")
                    self.assertRefused(
                        client, 'course.order', 'cancel', [order],
                        text='is Paid: this action is not possible any more')
        self.assertEqual(
            self.read('course.order', order, 'state')['state'], 'paid')
        self.assertEqual(self.read(
                'course.enrollment', enrollment, 'state')['state'], 'live')

    def test_write_workflow_fields_refused(self):
        """State, amounts, method, party, dates and numbers of an order are
        refused to every group; nothing changes"""
        unpaid = self.order('course_a')
        paid = self.order('course_b', state='paid')
        other = self.student()
        fields = ['state', 'payable_amount', 'pay_method', 'party',
            'paid_at', 'number', 'total_amount', 'pay_deadline']
        before = {o: self.read('course.order', o, *fields)
            for o in [unpaid, paid]}
        cases = [
            (unpaid, {'state': 'paid'}),
            (unpaid, {'payable_amount': Decimal('0.01'),
                    'pay_method': 'free'}),
            (unpaid, {'pay_deadline': None}),
            (paid, {'state': 'cancelled'}),
            (paid, {'party': other}),
            (paid, {'number': '1'}),
            (paid, {'paid_at': None}),
            (paid, {'lines': [('delete', self.lines_of(paid))]}),
            ]
        for login in STAFF:
            client = self.login(login)
            for order, values in cases:
                with self.subTest(login=login, values=values):
                    self.assertRefused(
                        client, 'course.order', 'write', [order], values,
                        text="an order changes only through its actions")
        for order, values in before.items():
            self.assertEqual(
                self.read('course.order', order, *fields), values)
        self.assertEqual(self.enrollments_of(unpaid), [])

    def test_create_copy_delete_order_refused(self):
        "Orders are created by checkout only and never deleted by a user"
        paid = self.order('course_a', state='paid')
        cancelled = self.order('course_b', state='cancelled')
        party = self.student()
        before = self.counts()
        for login in STAFF:
            for protocol in ['json', 'xml']:
                with self.subTest(login=login, protocol=protocol):
                    client = self.login(login, protocol)
                    self.assertRefused(
                        client, 'course.order', 'create', [{
                                'party': party, 'company': self.company_id,
                                'state': 'paid', 'pay_method': 'free',
                                'total_amount': Decimal(0),
                                'discount_amount': Decimal(0),
                                'payable_amount': Decimal(0),
                                }], text="created by checking out")
                    self.assertRefused(
                        client, 'course.order', 'copy', [paid], {},
                        text="created by checking out")
                    for order in [paid, cancelled]:
                        self.assertRefused(
                            client, 'course.order', 'delete', [order])
        self.assertEqual(self.counts(), before)

    def test_lines_and_discounts_refused(self):
        """Lines, discounts and their links cannot be created, written or
        deleted by any group"""
        order = self.order('course_a', 'course_b', state='paid')
        line, other_line = self.lines_of(order)

        def discount():
            from trytond.pool import Pool
            Discount = Pool().get('course.order.discount')
            discount, = Discount.create([{
                        'order': order, 'amount': Decimal(0),
                        'description': "test", 'lines': [('add', [line])],
                        }])
            return discount.id
        discount = self.run_transaction(discount)
        amounts = self.read('course.order.line', line, 'amount', 'course')
        before = self.counts()
        for login in STAFF:
            client = self.login(login)
            for args, text in [
                    (('course.order.line', 'write', [line],
                            {'amount': Decimal(0)}), "cannot be created"),
                    (('course.order.line', 'write', [line],
                            {'course': self.cat['course_c']}),
                        "cannot be created"),
                    (('course.order.line', 'create', [{
                                    'order': order,
                                    'course': self.cat['course_c'],
                                    'list_price': Decimal(1),
                                    'unit_price': Decimal(1),
                                    'discount_amount': Decimal(0),
                                    'amount': Decimal(1)}]),
                        "cannot be created"),
                    (('course.order.line', 'delete', [other_line]), None),
                    (('course.order.line', 'copy', [line], {}), None),
                    (('course.order.discount', 'write', [discount],
                            {'amount': Decimal(100)}), "discounts of order"),
                    (('course.order.discount', 'create', [{
                                    'order': order,
                                    'amount': Decimal(100)}]),
                        "discounts of order"),
                    (('course.order.discount', 'delete', [discount]), None),
                    (('course.order.discount', 'write', [discount],
                            {'lines': [('add', [other_line])]}),
                        "discounts of order"),
                    (('course.order.discount', 'write', [discount],
                            {'lines': [('remove', [line])]}),
                        "discounts of order"),
                    ]:
                with self.subTest(login=login, call=args[:2]):
                    self.assertRefused(client, *args, text=text)
        self.assertEqual(self.counts(), before)
        self.assertEqual(
            self.read('course.order.line', line, 'amount', 'course'),
            amounts)
        self.assertEqual(list(self.read(
                    'course.order.discount', discount, 'lines')['lines']),
            [line])

    def test_enrollments_refused(self):
        """An enrollment of a paid order cannot be created, changed or
        deleted by any group"""
        order = self.order('course_a', state='paid')
        enrollment, = self.enrollments_of(order)
        party = self.student()
        values = self.read(
            'course.enrollment', enrollment, 'end', 'party', 'source')
        before = self.counts()
        for login in STAFF:
            client = self.login(login)
            for args, text in [
                    (('write', [enrollment], {'end': None}),
                        "cannot be changed or deleted by hand"),
                    (('write', [enrollment], {'party': party}),
                        "cannot be changed or deleted by hand"),
                    (('write', [enrollment], {'source': 'gift'}),
                        "cannot be changed or deleted by hand"),
                    (('delete', [enrollment]), None),
                    (('create', [{'party': party,
                                    'course': self.cat['course_b'],
                                    'company': self.company_id,
                                    'source': 'purchase'}]),
                        "cannot be created by hand"),
                    (('copy', [enrollment], {'party': party}),
                        "cannot be created by hand"),
                    ]:
                with self.subTest(login=login, call=args[0]):
                    self.assertRefused(
                        client, 'course.enrollment', *args, text=text)
        self.assertEqual(self.counts(), before)
        self.assertEqual(self.read(
                'course.enrollment', enrollment, 'end', 'party', 'source'),
            values)

    def test_buttons_record_users(self):
        "Confirm payment, cancel and refund record the user who pressed"
        paid, cancelled = self.order('course_a'), self.order('course_b')
        sales = self.login('sales')
        sales.model('course.order', 'confirm_payment', [paid])
        sales.model('course.order', 'cancel', [cancelled])
        self.assertRPCError(sales.model, 'course.order', 'refund', [paid])
        manager = self.login('manager', 'xml')
        manager.model('course.order', 'refund', [paid])
        self.assertEqual(
            self.read('course.order', paid, 'state', 'paid_by', 'refunded_by',
                'cancelled_by'), {
                'state': 'refunded', 'paid_by': self.user_ids['sales'],
                'refunded_by': self.user_ids['manager'],
                'cancelled_by': None})
        self.assertEqual(
            self.read('course.order', cancelled, 'state', 'cancelled_by',
                'paid_by'), {
                'state': 'cancelled',
                'cancelled_by': self.user_ids['sales'], 'paid_by': None})

    # ---- Part 2: the exposed methods check rights and input -----------------

    def test_checkout_needs_create_access(self):
        "A user without create access on orders cannot check out"
        party = self.student()
        before = self.counts()
        nobody = self.login('nobody')
        self.assertRPCError(
            nobody.model, 'course.order', 'checkout', party,
            [{'course': self.cat['course_a']}], 'manual', {},
            text='not allowed to access "Course Order"')
        self.assertEqual(self.counts(), before)
        sales = self.login('sales', 'xml')
        order = sales.model(
            'course.order', 'checkout', party,
            [{'course': self.cat['course_a'], 'option': None}], 'manual', {})
        self.assertIsInstance(order, int)
        self.assertEqual(
            self.read('course.order', order, 'party', 'state'),
            {'party': party, 'state': 'unpaid'})

    def checkout_bad_calls(self):
        "[(description, args)] of checkouts whose input is refused"
        party = self.student()
        course = self.cat['course_a']
        item = {'course': course}
        calls = []
        for value in BAD_IDS:
            calls.append((f"party {value!r}", (value, [item], 'manual', {})))
        for value in BAD_LISTS + [[]]:
            calls.append((f"items {value!r}", (party, value, 'manual', {})))
        for value in BAD_IDS:
            calls.append((f"course {value!r}",
                    (party, [{'course': value}], 'manual', {})))
            if value is not None:
                calls.append((f"option {value!r}", (party, [
                                {'course': course, 'option': value}],
                            'manual', {})))
        for value in [None, 1, 'abc', [], {'option': None}, {'course': course,
                    'opton': 1}, {'course': 999999}]:
            calls.append((f"item {value!r}", (party, [value], 'manual', {})))
        for value in [None, ['x'], 1, 'bitcoin', {'a': 1}, 'x' * 51, 'free']:
            calls.append((f"pay_method {value!r}", (party, [item], value, {})))
        for value in [1, 'abc', [1], {'x': 1}, {'grants': [1]},
                {'credit': 10}]:
            calls.append((f"options {value!r}", (party, [item], 'manual',
                        value)))
        return calls

    def test_checkout_bad_input(self):
        """Every bad parameter of checkout is a UserError over JSON-RPC and
        XML-RPC, and nothing is written"""
        calls = self.checkout_bad_calls()
        before = self.counts()
        clients = {p: self.login('sales', p) for p in ['json', 'xml']}
        for description, args in calls:
            for protocol, client in clients.items():
                if protocol == 'xml' and not xmlrpc_can_carry(args):
                    continue
                with self.subTest(description, protocol=protocol):
                    self.assertRPCError(
                        client.model, 'course.order', 'checkout', *args)
        self.assertEqual(self.counts(), before)

    def test_audit_rights(self):
        "Only Course Administration runs the audit and lists the gifts"
        for method in ['audit', 'audit_gifts']:
            for login in ['nobody', 'sales']:
                with self.subTest(method=method, login=login):
                    client = self.login(login)
                    self.assertRPCError(
                        client.model, 'course.order', method,
                        text='Only the group "Course Administration"')
            for login in ['manager', 'admin']:
                with self.subTest(method=method, login=login):
                    self.assertIsInstance(
                        self.login(login).model('course.order', method),
                        list)

    def test_audit_companies(self):
        """The audit and the gifts over RPC see the user's companies only;
        root sees them all"""
        def other_company():
            from trytond.modules.company.tests import create_company
            from trytond.pool import Pool
            pool = Pool()
            Company = pool.get('company.company')
            Course = pool.get('course.course')
            Enrollment = pool.get('course.enrollment')
            Party = pool.get('party.party')
            mine = Company(self.company_id)
            other = create_company("Other School", currency=mine.currency)
            course, = Course.copy([Course(self.cat['course_c'])],
                {'company': other.id, 'name': "Secret course"})
            party, friend = Party.create([
                    {'name': "Secret student"}, {'name': "Secret friend"}])
            # as code would, without a reason: a problem to report
            Enrollment.create([{'party': party.id, 'course': course.id,
                        'company': other.id, 'source': 'system'}])
            Enrollment.create([{'party': friend.id, 'course': course.id,
                        'company': other.id, 'source': 'gift',
                        'given_by': 1, 'gift_reason': "Secret reason"}])

        def root(method):
            from trytond.pool import Pool
            return getattr(Pool().get('course.order'), method)()
        self.run_transaction(other_company)
        for method, text in [
                ('audit', "Secret student"), ('audit_gifts', "Secret friend")]:
            with self.subTest(method=method):
                texts = self.run_transaction(root, method)
                self.assertTrue(any(text in t for t in texts), texts)
                texts = self.login('manager').model('course.order', method)
                self.assertFalse(any("Secret" in t for t in texts), texts)

    def test_audit_finds_and_lists(self):
        """The audit over RPC names an enrollment no order explains, a
        live enrollment of a refunded order and a paid line that gave
        nothing"""
        refunded = self.order('course_a', state='refunded')
        paid = self.order('course_b', state='paid')

        def break_things():
            from trytond.pool import Pool
            pool = Pool()
            Enrollment = pool.get('course.enrollment')
            Order = pool.get('course.order')
            # raw changes no user could make any more
            refunded_enrollment, = Order(refunded).enrollments
            Enrollment.write([refunded_enrollment], {'end': None})
            Enrollment.delete(list(Order(paid).enrollments))
            return Order(refunded).number, Order(paid).number
        refunded_number, paid_number = self.run_transaction(break_things)
        texts = self.login('manager').model('course.order', 'audit')
        self.assertTrue(any(
                f'still live although its order "{refunded_number}" was '
                'refunded' in t for t in texts), texts)
        self.assertTrue(any(
                f'Order "{paid_number}" is Paid but its line for "B" gave '
                'no enrollment' in t for t in texts), texts)


    # ---- Buttons racing another user; who sees Refund -----------------------

    def number(self, order_id):
        return self.read('course.order', order_id, 'number')['number']

    def test_racing_buttons_say_state(self):
        """A button pressed on an order another user has just moved on says
        which order is in which state, in the user's language (trytond
        would say 'You can not call "confirm_payment"…')"""
        order = self.order('course_a')
        number = self.number(order)
        chinese = self.login_chinese('sales_zh', ['course.group_course_sales'])
        # The other user was first
        self.login('sales').model('course.order', 'confirm_payment', [order])
        for method in ['confirm_payment', 'cancel']:
            with self.subTest(method=method):
                error = self.assertRPCError(
                    chinese.model, 'course.order', method, [order],
                    text=f'订单“{number}”已支付')
                self.assertNotIn('You can not call', error.message)
                self.assertRPCError(
                    self.login('sales').model, 'course.order', method,
                    [order], text=f'Order "{number}" is Paid')
        manager_zh = self.login_chinese(
            'manager_zh', ['course.group_course_admin'])
        self.login('manager').model('course.order', 'refund', [order])
        self.assertRPCError(
            manager_zh.model, 'course.order', 'refund', [order],
            text=f'订单“{number}”已退款')
        cancelled = self.order('course_b', state='cancelled')
        self.assertRPCError(
            chinese.model, 'course.order', 'confirm_payment', [cancelled],
            text=f'订单“{self.number(cancelled)}”已取消')
        self.assertEqual(
            self.read('course.order', order, 'state', 'paid_by'),
            {'state': 'refunded', 'paid_by': self.user_ids['sales']})

    def test_racing_button_names_the_refused_order(self):
        "In a selection, the order refused is named, and nothing is done"
        paid = self.order('course_a', state='paid')
        unpaid = self.order('course_b')
        self.assertRPCError(
            self.login('sales').model, 'course.order', 'cancel',
            [unpaid, paid], text=f'Order "{self.number(paid)}" is Paid')
        self.assertEqual(
            self.read('course.order', unpaid, 'state')['state'], 'unpaid')

    def test_refund_button_groups(self):
        """Refund: hidden for the groups that may not (the view's states
        with each user's context) and refused to them by the server"""
        from trytond.pyson import PYSONDecoder
        for login, allowed in [
                ('sales', False), ('manager', True), ('admin', True),
                ('nobody', False)]:
            with self.subTest(login=login):
                client = self.login(login)
                order = self.order('course_a', state='paid')
                if login != 'nobody':
                    view = client.model(
                        'course.order', 'fields_view_get', None, 'form')
                    states = self.button_states(view['arch'], 'refund')
                    env = {'state': 'paid',
                        'context': client.context}
                    self.assertEqual(
                        PYSONDecoder(env).decode(states).get('invisible'),
                        not allowed)
                if allowed:
                    client.model('course.order', 'refund', [order])
                    self.assertEqual(self.read(
                            'course.order', order, 'state')['state'],
                        'refunded')
                else:
                    self.assertRPCError(
                        client.model, 'course.order', 'refund', [order],
                        kinds=('UserError', 'AccessError'))
                    self.assertEqual(self.read(
                            'course.order', order, 'state')['state'],
                        'paid')

    @staticmethod
    def button_states(arch, name):
        "The encoded states of the button name in a view's arch"
        from lxml import etree
        button, = etree.fromstring(arch).xpath(f'//button[@name="{name}"]')
        return button.get('states')
