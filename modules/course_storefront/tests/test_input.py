"""What a client may send that is wrong: every registered method with bad
params, the transport's errors, and a property-based run over every
method's declared params.  The answer is always a JSON-RPC error with the
right code, never an HTTP 500 or a traceback, and nothing is changed."""
import json
import re
import unittest
import uuid

from trytond.modules.course.tests.tools import run_transaction
from trytond.pool import Pool
from trytond.transaction import Transaction

from .strategies import (
    ABSENT, UNICODE, alternatives, field_schemas, methods, params_strategy)
from .tools import StorefrontClient, StorefrontTestMixin

# The codes a call may answer once its envelope is valid; -32603 (an
# exception the API did not expect) is never one of them
ALLOWED_CODES = {-32602, -32001, -32004, -32010}

# The tables a storefront call may change
SNAPSHOT_MODELS = [
    'course.order', 'course.order.line', 'course.order.discount',
    'course.storefront.cart', 'course.storefront.attempt',
    'course.coupon', 'course.coupon.grant', 'course.coupon.redeem.attempt',
    'course.credit.movement', 'course.wallet.movement',
    'course.enrollment', 'course.payment',
    'course.payment.refund.request',
    'web.user', 'web.user.session', 'party.party',
    # course_degree's, where it is activated (snapshot_models)
    'course.degree.enrollment', 'course.degree.form', 'course.degree.study',
    'course.degree.submission',
    ]


def snapshot_models():
    "The models of SNAPSHOT_MODELS in the database of the transaction"
    pool = Pool()
    names = []
    for name in SNAPSHOT_MODELS:
        try:
            pool.get(name)
        except KeyError:
            continue
        names.append(name)
    return names

# Values of every JSON type, to find those a param does not accept
SAMPLES = [
    None, True, False, 0, 1, -1, 1.5, 2 ** 63, 10 ** 30, -(2 ** 63),
    "", "1", "true", "x" * 5000, [], [1], ["1"], {}, {"a": 1},
    ]
def snapshot():
    "(id, write_date) of every row of SNAPSHOT_MODELS, read in SQL"
    def read():
        pool = Pool()
        cursor = Transaction().connection.cursor()
        rows = {}
        for name in snapshot_models():
            table = pool.get(name).__table__()
            cursor.execute(*table.select(
                    table.id, table.write_date, order_by=[table.id]))
            rows[name] = [tuple(r) for r in cursor]
        return rows
    return run_transaction(read)


def without_timeouts(value):
    "The value without the orders' timeout_seconds (they count down)"
    if isinstance(value, dict):
        return {k: without_timeouts(v) for k, v in value.items()
            if k != 'timeout_seconds'}
    if isinstance(value, list):
        return [without_timeouts(v) for v in value]
    return value


def accepts(schema, value):
    """Whether a value is of a JSON type and in the bounds the schema
    declares (patterns are left out: the values tried match none)"""
    for option in alternatives(schema):
        kind = option.get('type')
        if kind == 'null' and value is None:
            return True
        if kind == 'boolean' and isinstance(value, bool):
            return True
        if kind == 'integer' and isinstance(value, int) and not isinstance(
                value, bool):
            if (option.get('minimum', -float('inf')) <= value
                    <= option.get('maximum', float('inf'))):
                return True
        if kind == 'string' and isinstance(value, str):
            if 'enum' in option and value not in option['enum']:
                continue
            if 'pattern' in option and not re.fullmatch(
                    option['pattern'], value):
                continue
            if (option.get('minLength', 0) <= len(value)
                    <= option.get('maxLength', float('inf'))):
                return True
        if kind == 'array' and isinstance(value, list):
            if len(value) > option.get('maxItems', float('inf')):
                continue
            if all(accepts(option['items'], v) for v in value):
                return True
    return False


def bad_values(schema):
    "Values the param must refuse: wrong types, out of bounds, too long"
    values = [v for v in SAMPLES if not accepts(schema, v)]
    for option in alternatives(schema):
        if 'minimum' in option:
            values.append(option['minimum'] - 1)
        if 'maximum' in option:
            values.append(option['maximum'] + 1)
        if 'maxLength' in option:
            values.append("é" * (option['maxLength'] + 1))
        if option.get('type') == 'string':
            values += ["a\x00b", "\x00"]
        if 'enum' in option:
            values += ["nope", "😀"] + [
                # Another case of a value, when it has letters ('1-2' has
                # none: it is the value itself)
                e.upper() for e in option['enum'][:1]
                if e.upper() not in option['enum']]
        if 'pattern' in option:
            values += ["😀", "١٢@٣.٤ x", "1.00\n"]
        if 'maxItems' in option:
            values.append([1] * (option['maxItems'] + 1))
        if option.get('type') == 'array':
            values += [[0], [-1], [2 ** 63], ["1"], [True], [None], [[1]]]
    return values


def error_fields(answer):
    return {e['field'] for e in answer['error']['data'].get('errors', [])}


class InputTestMixin(StorefrontTestMixin):
    # The degree.* methods exist where course_degree is activated
    module = ['course_storefront', 'course_degree']

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Another student with an unpaid order and a course in the cart
        other = cls.new_client()
        other.register(f'other-{uuid.uuid4().hex[:8]}@example.com')
        other.call('cart.add', {'course': cls.catalog['c']})
        cls.other_order = other.call(
            'order.create', {'pay_method': 'manual'})['number']
        other.call('cart.add', {'course': cls.catalog['b']})
        cls.other = other

    @classmethod
    def new_client(cls):
        from trytond.tests.test_tryton import DB_NAME
        return StorefrontClient(DB_NAME)

    def student(self):
        "A new student with a course in the cart"
        client = self.client()
        client.register(f'{uuid.uuid4().hex[:12]}@example.com')
        client.call('cart.add', {
                'course': self.catalog['a'],
                'option': self.catalog['a_month']})
        return client

    def state_of(self, client):
        "What the student sees of their own data"
        return without_timeouts([client.call(m, p) for m, p in [
                    ('cart.get', None), ('order.list', {}),
                    ('coupon.mine', {}), ('enrollment.list', None),
                    ('account.me', None)]])

    def assertWellFormed(self, status, answer, id_=None):
        "A JSON-RPC error answer, no traceback; its error returned"
        self.assertEqual(status, 200, answer)
        self.assertEqual(answer['jsonrpc'], '2.0')
        self.assertEqual(answer['id'], id_)
        self.assertNotIn('result', answer)
        error = answer['error']
        self.assertIsInstance(error['code'], int)
        self.assertIsInstance(error['message'], str)
        self.assertIsInstance(error['data']['type'], str)
        self.assertNotIn('Traceback', json.dumps(answer))
        self.assertNotIn('File "', json.dumps(answer))
        return error


class BadParamsTestCase(InputTestMixin, unittest.TestCase):
    "Every method with params it must refuse: -32602, nothing changed"

    def call(self, client, name, params):
        status, answer = client.post({
                'jsonrpc': '2.0', 'method': name, 'params': params,
                'id': 1})
        self.assertNotEqual(status, 500)
        return status, answer

    def assertInvalid(self, client, name, params, fields=None):
        status, answer = self.call(client, name, params)
        error = self.assertWellFormed(status, answer, 1)
        self.assertEqual(
            (error['code'], error['data']['type']),
            (-32602, 'params.invalid'
                if isinstance(params, dict) else 'params.by_name'),
            (name, params, error))
        for field in fields or []:
            self.assertTrue(
                any(f == field or f.startswith(field + '.')
                    for f in error_fields(answer)),
                (name, params, field, error))
        return error

    def test_wrong_values(self):
        "Wrong types, huge and negative numbers, NUL, too long, bad enums"
        client = self.student()
        before, seen = snapshot(), self.state_of(client)
        count = 0
        for name, method in methods():
            for field, (schema, _) in field_schemas(method).items():
                for value in bad_values(schema):
                    with self.subTest(method=name, field=field, value=value):
                        self.assertInvalid(
                            client, name, {field: value}, [field])
                        count += 1
        self.assertGreater(count, 300)
        self.assertEqual(snapshot(), before)
        self.assertEqual(self.state_of(client), seen)

    def test_strings_bounded(self):
        "Every string param has a maximum length (or an enum, a pattern)"
        for name, method in methods():
            for field, (schema, _) in field_schemas(method).items():
                for option in alternatives(schema):
                    if option.get('type') != 'string':
                        continue
                    with self.subTest(method=name, field=field):
                        self.assertTrue(
                            {'maxLength', 'enum', 'pattern'} & set(option),
                            option)

    def test_missing_and_unknown(self):
        "Missing required keys and unknown keys are named in data.errors"
        client = self.student()
        before, seen = snapshot(), self.state_of(client)
        for name, method in methods():
            required = [f for f, (_, r) in field_schemas(method).items()
                if r]
            with self.subTest(method=name):
                if required:
                    error = self.assertInvalid(client, name, {}, required)
                    self.assertEqual(
                        {e['type'] for e in error['data']['errors']},
                        {'missing'})
                for key in {'zz_unknown', 'id', 'party', 'user', '',
                        'émoji😀', 'x' * 1000} - set(field_schemas(method)):
                    error = self.assertInvalid(client, name, {key: 1})
                    self.assertIn('extra_forbidden',
                        {e['type'] for e in error['data']['errors']})
        self.assertEqual(snapshot(), before)
        self.assertEqual(self.state_of(client), seen)

    def test_params_not_by_name(self):
        "params as an array (by position) or a scalar: -32602"
        client = self.student()
        before = snapshot()
        for name, method in methods():
            for params in [[], [1], [self.catalog['a']], ["x", 1], "x", 1,
                    True, None]:
                with self.subTest(method=name, params=params):
                    error = self.assertInvalid(client, name, params)
                    self.assertEqual(error['data']['type'], 'params.by_name')
        self.assertEqual(snapshot(), before)

    def test_not_authenticated(self):
        "Bad or missing tokens: -32001 for every method that needs one"
        client = self.client()
        before = snapshot()
        for token in [None, '', 'x', 'a' * 201, 'a\x00b', 'é' * 10,
                'Bearer', self.other.token + 'x']:
            client.token = token
            for name, method in methods():
                if not method.auth:
                    continue
                params = {f: valid_value(s)
                    for f, (s, r) in field_schemas(method).items() if r}
                with self.subTest(method=name, token=token):
                    status, answer = self.call(client, name, params)
                    error = self.assertWellFormed(status, answer, 1)
                    self.assertEqual(
                        (error['code'], error['data']['type']),
                        (-32001, 'auth.required'))
        self.assertEqual(snapshot(), before)

    def test_unicode_strings(self):
        """Unicode, emoji, right-to-left and SQL-looking text in every
        string param: refused when the declaration says so, else answered
        without an internal error"""
        client = self.student()
        from pydantic import ValidationError
        for name, method in methods():
            if name in {'auth.logout'}:
                continue
            schemas = field_schemas(method)
            base = {f: valid_value(s) for f, (s, r) in schemas.items() if r}
            for field, (schema, _) in schemas.items():
                if not any(o.get('type') == 'string'
                        for o in alternatives(schema)):
                    continue
                for text in UNICODE:
                    params = dict(base, **{field: text})
                    try:
                        method.params.model_validate(params)
                        invalid = False
                    except ValidationError:
                        invalid = True
                    with self.subTest(method=name, field=field, text=text):
                        status, answer = self.call(client, name, params)
                        self.assertEqual(status, 200)
                        self.assertNotIn('Traceback', json.dumps(answer))
                        if 'error' in answer:
                            code = answer['error']['code']
                            self.assertIn(code, ALLOWED_CODES, answer)
                            self.assertEqual(code == -32602, invalid, answer)
                        else:
                            self.assertFalse(invalid, answer)

    def test_other_students_order(self):
        "Another student's order number: -32004 for each order method"
        client = self.student()
        before, seen = snapshot(), self.state_of(client)
        for name in ['order.get', 'order.cancel', 'order.pay', 'order.sync',
                'order.refund_request']:
            params = {'number': self.other_order}
            if name == 'order.refund_request':
                params['reason'] = "I want it"
            with self.subTest(method=name):
                status, answer = self.call(client, name, params)
                error = self.assertWellFormed(status, answer, 1)
                self.assertEqual(
                    (error['code'], error['data']['type']),
                    (-32004, 'not_found'))
        self.assertEqual(snapshot(), before)
        self.assertEqual(self.state_of(client), seen)
        order, = self.other.call('order.list', {})['items']
        self.assertEqual(order['state'], 'unpaid')


def valid_value(schema):
    "A value the param accepts, that names nothing that exists"
    option = alternatives(schema)[0]
    kind = option.get('type')
    if kind == 'integer':
        return option.get('maximum', 1)
    if kind == 'boolean':
        return False
    if kind == 'array':
        return []
    if kind == 'string':
        if 'enum' in option:
            return option['enum'][0]
        if 'pattern' in option:
            for text in ['nobody@example.com', '1.00']:
                if re.fullmatch(option['pattern'], text):
                    return text
        return 'x' * max(option.get('minLength', 1), 8)
    return None


class TransportTestCase(InputTestMixin, unittest.TestCase):
    "What is not a valid JSON-RPC 2.0 call"

    def post(self, client, body, **headers):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode('utf-8')
        all_headers = client.headers()
        all_headers.update(headers)
        response = client.wsgi.post(
            f'/{client.database}/storefront', data=body,
            headers={k: v for k, v in all_headers.items() if v is not None})
        data = response.get_data()
        self.assertNotEqual(response.status_code, 500, data[:300])
        self.assertNotIn(b'Traceback', data)
        if not data:
            return response.status_code, None
        if response.status_code != 200:
            return response.status_code, data
        return response.status_code, json.loads(data)

    def assertError(self, client, body, code, type_, id_=None, **headers):
        status, answer = self.post(client, body, **headers)
        error = self.assertWellFormed(status, answer, id_)
        self.assertEqual((error['code'], error['data']['type']),
            (code, type_), answer)
        return answer

    def test_parse_error(self):
        client = self.student()
        before = snapshot()
        for body in [b'', b'{', b'{not json', b"{'a': 1}", b'[1,]',
                b'\xff\xfe', b'{"jsonrpc": "2.0"} x', b'[' * 100000,
                b'{"id": 1, "method": "cart.get", "jsonrpc": "2.0", '
                b'"params": {"a": ' + b'9' * 5000 + b'}}']:
            with self.subTest(body=body[:40]):
                self.assertError(client, body, -32700, 'parse_error')
        self.assertEqual(snapshot(), before)

    def test_invalid_request(self):
        client = self.student()
        before = snapshot()
        call = {'jsonrpc': '2.0', 'method': 'cart.get', 'id': 3}
        for body, id_ in [
                (1, None), ('"x"', None), ('null', None), ('true', None),
                ({}, None),
                (dict(call, jsonrpc='1.0'), 3),
                (dict(call, jsonrpc=2.0), 3),
                ({k: v for k, v in call.items() if k != 'jsonrpc'}, 3),
                ({k: v for k, v in call.items() if k != 'method'}, 3),
                (dict(call, method=1), 3),
                (dict(call, method=None), 3),
                (dict(call, method=['cart.get']), 3),
                (dict(call, extra=1), 3),
                (dict(call, id=1.5), None),
                (dict(call, id=True), None),
                (dict(call, id=[1]), None),
                (dict(call, id={'a': 1}), None),
                (dict(call, id='x' * 101), None),
                ]:
            with self.subTest(body=body):
                if not isinstance(body, (dict, list)):
                    body = json.dumps(body) if not isinstance(body, str) \
                        else body
                self.assertError(
                    client, body, -32600, 'invalid_request', id_)
        self.assertEqual(snapshot(), before)

    def test_batches(self):
        client = self.student()
        before = snapshot()
        # Empty and too long batches are one error
        call = {'jsonrpc': '2.0', 'method': 'catalog.directions'}
        self.assertError(client, [], -32600, 'invalid_request')
        answer = self.assertError(client, [dict(call, id=i)
                for i in range(51)], -32600, 'invalid_request')
        self.assertEqual(answer['error']['data']['maximum'], 50)
        # 50 calls are answered, each with its id
        status, answers = self.post(
            client, [dict(call, id=i) for i in range(50)])
        self.assertEqual(
            sorted(a['id'] for a in answers), list(range(50)))
        # Each element of a batch is answered on its own
        status, answers = self.post(client, [
                1, 'x', [], {},
                dict(call, id='a'),
                {'jsonrpc': '2.0', 'method': 'nope', 'id': 'b'},
                {'jsonrpc': '2.0', 'method': 'cart.add', 'id': 'c',
                    'params': {'course': 'x'}},
                {'jsonrpc': '2.0', 'method': 'cart.remove',
                    'params': {'course': 'x'}},
                ])
        self.assertEqual(status, 200)
        self.assertEqual(len(answers), 7)
        self.assertEqual(
            [a['error']['code'] for a in answers[:4]], [-32600] * 4)
        by_id = {a['id']: a for a in answers[4:]}
        self.assertIn('result', by_id['a'])
        self.assertEqual(by_id['b']['error']['code'], -32601)
        self.assertEqual(by_id['c']['error']['code'], -32602)
        self.assertEqual(snapshot(), before)

    def test_method_not_found(self):
        client = self.student()
        before = snapshot()
        for name in ['nope', '', 'cart', 'cart.', 'CART.GET', ' cart.get',
                'cart.get ', 'rpc.discover.x', '_private', 'x' * 10000,
                '__init__', 'cart.get\x00', 'order.create\n', '😀',
                'api.registry.method']:
            with self.subTest(name=name[:40]):
                answer = self.assertError(client, {
                        'jsonrpc': '2.0', 'method': name, 'id': 9},
                    -32601, 'method_not_found', 9)
                self.assertLess(len(answer['error']['message']), 300)
        # A lone surrogate is echoed escaped, in any content type
        for content_type in ['application/json', 'text/plain']:
            self.assertError(client,
                b'{"jsonrpc": "2.0", "id": "\\ud800", "method": "\\ud800"}',
                -32601, 'method_not_found', '\ud800',
                **{'Content-Type': content_type})
        self.assertEqual(snapshot(), before)

    def test_notifications(self):
        "Calls without id get no answer, even when they fail"
        client = self.student()
        cart = client.call('cart.get')
        before = snapshot()
        for body in [
                {'jsonrpc': '2.0', 'method': 'cart.get'},
                {'jsonrpc': '2.0', 'method': 'nope'},
                {'jsonrpc': '2.0', 'method': 'cart.add',
                    'params': {'course': -1}},
                {'jsonrpc': '2.0', 'method': 'order.get',
                    'params': {'number': self.other_order}},
                [{'jsonrpc': '2.0', 'method': 'catalog.directions'}] * 3,
                ]:
            with self.subTest(body=body):
                status, answer = self.post(client, body)
                self.assertEqual((status, answer), (204, None))
        self.assertEqual(snapshot(), before)
        self.assertEqual(client.call('cart.get'), cart)

    def test_headers(self):
        "Odd Accept-Language and Authorization headers: no internal error"
        client = self.student()
        token = client.token
        before = snapshot()
        call = {'jsonrpc': '2.0', 'method': 'cart.get', 'id': 1}
        for language in ['zh-CN;q=abc', 'x' * 10000, '*;q=nan',
                'en;q=1e999, zh;q=-1', ';;;,,,', 'zh_CN', '']:
            with self.subTest(language=language):
                status, answer = self.post(
                    client, call, **{'Accept-Language': language})
                self.assertEqual(status, 200)
                self.assertIn('result', answer)
        for header in ['Basic dXNlcjpwYXNz', 'Session abc', 'Bearer',
                'Bearer ' + ' ' * 50, f'Token {token}', f'{token}',
                'Bearer ' + 'é' * 50, f'Bearer {token} x']:
            with self.subTest(header=header):
                client.token = None
                self.assertError(client, call, -32001, 'auth.required', 1,
                    Authorization=header)
        client.token = None
        status, answer = self.post(
            client, call, Authorization=f'bearer   {token}  ')
        self.assertIn('result', answer)
        self.assertEqual(snapshot(), before)

    def test_content_type_and_size(self):
        """The body is read as JSON whatever the Content-Type says; a body
        over the request size limit is refused (413), not a 500"""
        client = self.student()
        before = snapshot()
        call = {'jsonrpc': '2.0', 'method': 'catalog.directions', 'id': 1}
        for content_type in ['text/plain', 'application/xml',
                'application/x-www-form-urlencoded', 'multipart/form-data',
                'application/json; charset=latin-1', 'image/png', None]:
            with self.subTest(content_type=content_type):
                status, answer = self.post(
                    client, call, **{'Content-Type': content_type})
                self.assertEqual(status, 200)
                self.assertEqual(answer['id'], 1)
                self.assertIsInstance(answer['result'], list)
        for body in [b'[' + b'1,' * 1_500_000 + b'1]',
                json.dumps(dict(call, params={'x': 'y' * 3_000_000}))]:
            status, answer = self.post(client, body)
            self.assertEqual(status, 413)
        # Under the limit, a long body is answered as any other
        self.assertError(client, dict(call, params={'x': 'y' * 1_000_000}),
            -32602, 'params.invalid', 1)
        self.assertEqual(snapshot(), before)


class PropertyTestCase(InputTestMixin, unittest.TestCase):
    """Hypothesis: arbitrary JSON, and values shaped by each method's
    declared params with wrong types mixed in, never get an HTTP 500, an
    internal error or a traceback"""
    examples = 60

    def test_every_method(self):
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st

        client = self.student()
        email = client.call('account.me')['email']
        checked = []

        def make_check(name, method):
            @settings(max_examples=self.examples, deadline=None,
                derandomize=True, database=None, print_blob=True,
                suppress_health_check=list(HealthCheck))
            @given(params=params_strategy(method), notification=st.booleans())
            def check(params, notification):
                body = {'jsonrpc': '2.0', 'method': name}
                if not notification:
                    body['id'] = 7
                if params is not ABSENT:
                    body['params'] = params
                status, answer = client.post(body)
                if name == 'auth.logout':
                    # Log in again for the next examples
                    client.token = client.call('auth.login', {
                            'email': email, 'password': 'secret-pass'})[
                        'token']
                if notification:
                    self.assertEqual((status, answer), (204, None))
                    return
                self.assertEqual(status, 200, (name, params, answer))
                text = json.dumps(answer)
                self.assertNotIn('Traceback', text)
                self.assertNotIn('File "', text)
                self.assertEqual(answer['id'], 7)
                if 'error' in answer:
                    self.assertNotIn('result', answer)
                    self.assertIn(answer['error']['code'], ALLOWED_CODES,
                        (name, params, answer))
                    self.assertIsInstance(
                        answer['error']['data']['type'], str)
                else:
                    self.assertIn('result', answer)
                checked.append(name)
            return check

        for name, method in methods():
            with self.subTest(method=name):
                make_check(name, method)()
        self.assertEqual(
            set(checked), {n for n, _ in methods()})
