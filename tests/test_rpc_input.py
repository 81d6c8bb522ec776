"""Bad input to any RPC method of the course modules is a UserError over
real JSON-RPC and XML-RPC, never a raw server error, and writes nothing.

Table-driven: the methods are enumerated from the ``__rpc__`` of every
model the course modules define (``ir.model``), so a new model, button or
field method is covered without touching this file.  Two tables:

* every method taking record ids (``RPC.instantiate`` set, plus ``read``
  and ``history_revisions``) × bad values for those ids;
* every method with a bounded number of parameters called with one
  argument too many, and every method with a required parameter with one
  too few;

and, for the wizards of the modules, bad session ids, form values and
state names.
"""
import inspect
import unittest

from trytond.modules.course.tests.rpc import (
    BAD_IDS, BAD_LISTS, RPCTestMixin)
from trytond.modules.course.tests.tools import run_transaction

MODULES = [
    'course', 'course_order', 'course_coupon', 'course_credit',
    'course_payment', 'course_payment_alipay', 'course_payment_wechat',
    'course_degree']

# Methods without instantiate whose first parameter is a list of ids
ID_PARAMETERS = {'read': 0, 'history_revisions': 0}

# The message of course.msg_input_invalid and of
# course.msg_input_arguments (the users' language is English)
INVALID = 'is not valid'
ARGUMENTS = 'but it takes'

# A list of record ids (a classmethod's records, read's ids)
BAD_ID_LISTS = BAD_LISTS + [True, 1.5, b'\x01'] + [
    [v] for v in BAD_IDS] + [[1, 'x'], [1, None], [2 ** 31]]
# A record of an instance method (on_change, pre_validate, …): its id or
# the values of its fields, or a list of ids
BAD_RECORDS = [v for v in BAD_IDS if not isinstance(v, (list, dict))] + [
    [v] for v in BAD_IDS] + [
    {'id': 'x'}, {'id': 7.9}, {'id': True}, {'id': 10 ** 30},
    {'id': [1]}, {'no_such_field': 1}, {'_parent_no_such_field.name': 1},
    {'_parent_': 1}, {'': 1}]


def xmlrpc_can_carry(value):
    "Can XML-RPC marshal value (no int beyond 32 bits, str keys only)?"
    import xmlrpc.client
    try:
        xmlrpc.client.dumps((value,), allow_none=True)
    except (OverflowError, TypeError):
        return False
    return True


def rpc_methods():
    """The RPC methods of the models of MODULES, as dicts: model, method,
    kind ('ids' for lists of record ids, 'record' for the record of an
    instance method, None), positions (of the ids), minimum and maximum
    (number of positional arguments, maximum None for *args), unique and
    sample (an id of an existing record or None)"""
    from trytond.model import ModelSQL
    from trytond.pool import Pool
    from trytond.tools import is_instance_method
    pool = Pool()
    IrModel = pool.get('ir.model')
    methods = []
    for ir_model in IrModel.search(
            [('module', 'in', MODULES)], order=[('name', 'ASC')]):
        Model = pool.get(ir_model.name)
        sample = None
        if issubclass(Model, ModelSQL) and not Model._is_table_query():
            records = Model.search([], limit=1)
            sample = records[0].id if records else None
        for name, rpc in sorted(Model.__rpc__.items()):
            parameters = inspect.signature(
                getattr(Model, name)).parameters.values()
            positional = [p for p in parameters if p.kind in {
                    p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD}]
            minimum = len([p for p in positional if p.default is p.empty])
            maximum = len(positional)
            if any(p.kind == p.VAR_POSITIONAL for p in parameters):
                maximum = None
            kind, positions = None, []
            if rpc.instantiate is not None:
                kind = ('record' if is_instance_method(Model, name)
                    else 'ids')
                if isinstance(rpc.instantiate, slice):
                    # write(records, values, records, values)
                    positions = list(range(4))[rpc.instantiate]
                else:
                    positions = [rpc.instantiate]
            elif name in ID_PARAMETERS:
                kind, positions = 'ids', [ID_PARAMETERS[name]]
            methods.append({
                    'model': ir_model.name, 'method': name, 'kind': kind,
                    'positions': positions, 'minimum': minimum,
                    'maximum': maximum,
                    'unique': rpc.unique and rpc.instantiate is not None,
                    'sample': sample,
                    })
    return methods


def wizard_names():
    "The names of the wizards of MODULES"
    from trytond.pool import Pool
    names = []
    for name, Wizard in Pool().iterobject(type='wizard'):
        if any(k.__module__.split('.')[:2] == ['trytond', 'modules']
                and k.__module__.split('.')[2] in MODULES
                for k in Wizard.__mro__):
            names.append(name)
    return sorted(names)


def fingerprint():
    """What the models of MODULES, the parties and the model logs hold:
    (id, create_date, write_date) of every row"""
    from trytond.model import ModelSQL
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool()
    IrModel = pool.get('ir.model')
    cursor = Transaction().connection.cursor()
    names = [m.name for m in IrModel.search([('module', 'in', MODULES)])]
    result = {}
    for name in sorted(names) + ['party.party', 'ir.model.log']:
        Model = pool.get(name)
        if not issubclass(Model, ModelSQL) or Model._is_table_query():
            continue
        table = Model.__table__()
        cursor.execute(*table.select(
                table.id, table.create_date, table.write_date,
                order_by=[table.id]))
        result[name] = list(cursor)
    return result


class RPCInputTestCase(RPCTestMixin, unittest.TestCase):
    "Every RPC method of the course modules × bad input: a UserError"
    module = [
        'course_coupon', 'course_credit', 'course_payment_alipay',
        'course_payment_wechat', 'course_degree']

    @classmethod
    def setUpClass(cls):
        super().setUpClass()

        def data():
            # A record of most models, in several states
            from trytond.modules.course.tests.tools import create_catalog
            from trytond.modules.course_coupon.tests.tools import (
                create_coupon, give)
            from trytond.modules.course_credit.tests.tools import (
                grant, topup)
            from trytond.modules.course_order.tests.tools import checkout
            from trytond.pool import Pool
            pool = Pool()
            Company = pool.get('company.company')
            Order = pool.get('course.order')
            catalog = create_catalog(Company(cls.company_id))
            grant(catalog.student, 500)
            topup(catalog.student, '100')
            coupon = create_coupon(catalog.company, '-30')
            coupon_grant = give(coupon, catalog.student)
            paid = checkout(catalog.student, catalog.course_a,
                grants=[coupon_grant.id])
            Order.confirm_payment([paid])
            checkout(catalog.other_student, catalog.course_b, credit=0)
        run_transaction(data, context={'company': cls.company_id})
        cls.methods = run_transaction(rpc_methods)

    def fingerprint(self):
        return self.run_transaction(fingerprint)

    def bad_calls(self):
        "[(model, method, args, description)] with one bad id each"
        calls = []
        for method in self.methods:
            if not method['kind']:
                continue
            values = (BAD_ID_LISTS if method['kind'] == 'ids'
                else BAD_RECORDS)
            if method['unique']:
                values = values + [[1, 1]]
            for position in method['positions']:
                # The other arguments: valid records (none) or None, as
                # many as the method needs
                length = max(method['minimum'], position + 1)
                for value in values:
                    args = [None] * length
                    for other in method['positions']:
                        if other < length:
                            args[other] = (
                                [] if method['kind'] == 'ids' else {})
                    args[position] = value
                    calls.append((method['model'], method['method'], args,
                            f'{position}: {value!r}'))
        return calls

    def test_methods_enumerated(self):
        "The tables see the buttons, the fields' methods and read"
        names = {(m['model'], m['method']): m for m in self.methods}
        for model, method, kind in [
                ('course.order', 'cancel', 'ids'),
                ('course.order', 'confirm_payment', 'ids'),
                ('course.order', 'refund', 'ids'),
                ('course.order', 'write', 'ids'),
                ('course.order', 'read', 'ids'),
                ('course.order', 'pre_validate', 'record'),
                ('course.order', 'checkout', None),
                ('course.enrollment', 'end_access', 'ids'),
                ('course.coupon', 'generate_codes', 'ids'),
                ('course.coupon.grant', 'revoke', 'ids'),
                ('course.course', 'on_change_with_currency', 'record'),
                ('course.credit.movement', 'audit', None),
                ]:
            with self.subTest(model=model, method=method):
                self.assertEqual(names[model, method]['kind'], kind)
        self.assertEqual(names['course.order', 'write']['positions'], [0, 2])

    def test_bad_ids_json(self):
        """Every method taking records × every bad id over JSON-RPC as a
        staff user: a UserError naming the value, nothing written"""
        self.check_bad_ids('json')

    def test_bad_ids_xml(self):
        """The same over XML-RPC, for the values XML-RPC can carry"""
        self.check_bad_ids('xml')

    def check_bad_ids(self, protocol):
        calls = self.bad_calls()
        self.assertGreater(len(calls), 1000)
        before = self.fingerprint()
        # XML-RPC with a session: basic authentication hashes the password
        # on every call
        client = self.login('admin', protocol, session=True)
        for model, method, args, description in calls:
            if protocol == 'xml' and not xmlrpc_can_carry(args):
                continue
            with self.subTest(model=model, method=method, value=description):
                self.assertRPCError(
                    client.model, model, method, *args, text=INVALID)
        self.assertEqual(self.fingerprint(), before)

    def test_arguments_count(self):
        """Every method called with one argument too many (when it has a
        bounded number) or one too few (when it needs one) over JSON-RPC:
        a UserError, nothing written"""
        before = self.fingerprint()
        client = self.login('admin')
        xml_client = self.login('manager', 'xml', session=True)
        count = 0
        for method in self.methods:
            def filler(position):
                if position in method['positions']:
                    if method['kind'] == 'record':
                        return {}
                    return [method['sample']] if method['sample'] else []
                return None
            lengths = []
            if method['maximum'] is not None:
                lengths.append(method['maximum'] + 1)
            if method['minimum']:
                lengths.append(method['minimum'] - 1)
            for length in lengths:
                args = [filler(p) for p in range(length)]
                with self.subTest(model=method['model'],
                        method=method['method'], length=length):
                    self.assertRPCError(
                        client.model, method['model'], method['method'],
                        *args, text=ARGUMENTS)
                    count += 1
                    if method['method'] in {'cancel', 'audit', 'read'}:
                        self.assertRPCError(
                            xml_client.model, method['model'],
                            method['method'], *args, text=ARGUMENTS)
        self.assertGreater(count, 400)
        self.assertEqual(self.fingerprint(), before)

    def test_wizards_bad_input(self):
        """Every wizard of the modules with a bad session id, bad form
        values, a bad state name or one argument too many or too few, over
        JSON-RPC and XML-RPC: a UserError, nothing written; the session
        still works afterwards"""
        wizards = self.run_transaction(wizard_names)

        def paid_order():
            from trytond.pool import Pool
            Order = Pool().get('course.order')
            order, = Order.search([('state', '=', 'paid')])
            return order.id
        paid = self.run_transaction(paid_order)
        self.assertEqual(wizards, [
                'course.coupon.generate_codes', 'course.coupon.grant_wizard',
                'course.credit.adjust',
                'course.degree.enrollment.assign_mentor',
                'course.degree.enrollment.complaint',
                'course.degree.submission.grade',
                'course.enrollment.give', 'course.mentor.withdraw',
                'course.payment.refund.request.reject',
                'course.payment.refund.wizard'])
        before = self.fingerprint()
        for protocol in ['json', 'xml']:
            client = self.login('admin', protocol, session=True)
            for wizard in wizards:
                session, start, end = client.call(f'wizard.{wizard}.create')
                calls = []
                for value in BAD_IDS + [[]]:
                    calls += [
                        ('execute', (value, {}, start), INVALID),
                        ('delete', (value,), INVALID),
                        ]
                for value in [None, 'x', 1, [start], {start: 'x'},
                        {start: [1]}, {'no_such_state': {}}, {end: {}},
                        {'': {}}]:
                    calls.append(('execute', (session, value, start), INVALID))
                for value in [None, 1, [start], 'no_such_state', '',
                        {start: 1}]:
                    calls.append(('execute', (session, {}, value), INVALID))
                calls += [
                    ('create', (None,), ARGUMENTS),
                    ('delete', (), ARGUMENTS),
                    ('delete', (session, None), ARGUMENTS),
                    ('execute', (session, {}), ARGUMENTS),
                    ('execute', (session, {}, start, None), ARGUMENTS),
                    ]
                for method, args, text in calls:
                    if protocol == 'xml' and not xmlrpc_can_carry(args):
                        continue
                    with self.subTest(protocol=protocol, wizard=wizard,
                            method=method, args=args):
                        self.assertRPCError(
                            client.call, f'wizard.{wizard}.{method}', *args,
                            text=text)
                context = None
                if wizard == 'course.payment.refund.wizard':
                    # It runs on an order only
                    self.assertRPCError(
                        client.call, f'wizard.{wizard}.execute', session,
                        {}, start, text="Open the refund from an order")
                    context = {
                        'active_model': 'course.order', 'active_id': paid,
                        'active_ids': [paid]}
                self.assertIn('view', client.call(
                        f'wizard.{wizard}.execute', session, {}, start,
                        context=context))
                client.call(f'wizard.{wizard}.delete', session)
        self.assertEqual(self.fingerprint(), before)

    def test_valid_calls_unchanged(self):
        """Valid calls of the same kinds still work: read, write of
        nothing, a button, an instance method with values, a list of one
        id, an empty list"""
        def ids():
            from trytond.pool import Pool
            pool = Pool()
            Order = pool.get('course.order')
            unpaid, = Order.search([('state', '=', 'unpaid')])
            course, = pool.get('course.course').search(
                [('name', '=', 'A')])
            return unpaid.id, course.id
        unpaid, course = self.run_transaction(ids)
        for protocol in ['json', 'xml']:
            with self.subTest(protocol=protocol):
                client = self.login('admin', protocol)
                values, = client.model(
                    'course.order', 'read', [unpaid], ['state'])
                self.assertEqual(values['state'], 'unpaid')
                self.assertEqual(
                    client.model('course.order', 'read', [], ['state']), [])
                client.model('course.order', 'write', [], {})
                client.model('course.order', 'cancel', [])
                currency = client.model('course.course', 'read', [course],
                    ['currency'])[0]['currency']
                for id_ in [course, -1]:
                    result = client.model(
                        'course.course', 'on_change_with_currency',
                        {'id': id_, 'company': self.company_id})
                    self.assertEqual(result['currency'], currency)
                client.model('course.course', 'pre_validate', {
                        'id': course, 'name': "A",
                        '_parent_direction.name': "Python"})
        client = self.login('admin')
        client.model('course.order', 'cancel', [unpaid])
        values, = client.model('course.order', 'read', [unpaid], ['state'])
        self.assertEqual(values['state'], 'cancelled')

    def test_every_entry_checked(self):
        """Every __rpc__ entry of the models and wizards of the modules
        checks its input"""
        def check():
            from trytond.modules.course.rpc import InputRPC
            from trytond.pool import Pool
            pool = Pool()
            IrModel = pool.get('ir.model')
            classes = [pool.get(m.name) for m in IrModel.search(
                    [('module', 'in', MODULES)])]
            classes += [pool.get(n, type='wizard') for n in wizard_names()]
            unchecked = []
            for Class in classes:
                for name, rpc in Class.__rpc__.items():
                    if not isinstance(rpc, InputRPC):
                        unchecked.append(f'{Class.__name__}.{name}')
            return len(classes), unchecked
        count, unchecked = self.run_transaction(check)
        self.assertGreater(count, 25)
        self.assertEqual(unchecked, [])

