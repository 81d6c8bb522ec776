"""Real RPC calls from tests: JSON-RPC and XML-RPC through trytond's own
WSGI application and dispatcher (login, sessions, access checks, argument
conversion), without a network socket.

Calls must be made outside any transaction of the test's thread (the
dispatcher starts its own), so commit the data first, e.g. with
`tools.run_transaction`.  Typical use::

    class MyRPCTestCase(RPCTestMixin, unittest.TestCase):
        module = 'course_order'

        def test_refused(self):
            sales = self.login('sales')
            with self.assertRaisesUserError('not allowed'):
                sales.call('model.course.order', 'write', [[1], {...}])

`RPCTestMixin.setUpClass` activates `module`, commits a company with the
users `admin` (every group of the project), `manager` (Course
Administration), `sales` (Course Sales) and `nobody` (no group of ours),
each of the company; their passwords are `<login>-password-1`.
"""
import base64
import json

import xmlrpc.client
from decimal import Decimal

from .tools import CommittedTestMixin

PASSWORD = '{}-password-1'

# login: the XML ids of the groups (module.id) it gets
USERS = {
    'manager': ['course.group_course_admin'],
    'sales': ['course.group_course_sales'],
    'nobody': [],
    }


class RPCError(Exception):
    """An RPC call answered with an error: `kind` is the exception class
    name on the server side (UserError, AccessError, UserWarning, …) or
    'HTTP <code>'; `message` its text"""

    def __init__(self, kind, message, data=None):
        super().__init__(f'{kind}: {message}')
        self.kind = kind
        self.message = message
        self.data = data


def _json_default(value):
    if isinstance(value, Decimal):
        return {'__class__': 'Decimal', 'decimal': str(value)}
    if isinstance(value, bytes):
        return {'__class__': 'bytes',
            'base64': base64.b64encode(value).decode()}
    raise TypeError(repr(value))


def _json_object_hook(dct):
    if dct.get('__class__') == 'Decimal':
        return Decimal(dct['decimal'])
    if dct.get('__class__') == 'bytes':
        return base64.b64decode(dct['base64'])
    return dct


class JSONRPCClient:
    "A Tryton JSON-RPC session of one user, as the web client opens it"

    def __init__(self, database, login, password, context=None):
        from werkzeug.test import Client

        from trytond.protocols import dispatcher  # noqa: F401 (routes)
        from trytond.wsgi import app
        self.client = Client(app)
        self.environ = {'REMOTE_ADDR': '127.0.0.1'}
        self.database = database
        self.login = login
        self.url = f'/{database}/rpc/'
        user_id, session, *_ = self._post(
            'common.db.login', [login, {'password': password}, 'en'])
        token = base64.b64encode(
            f'{login}:{user_id}:{session}'.encode()).decode()
        self.headers = {'Authorization': f'Session {token}'}
        self.user_id = user_id
        self.context = self._post(
            'model.res.user.get_preferences', [True, {}],
            headers=self.headers)
        self.context.update(context or {})

    def _post(self, method, params, headers=None):
        body = json.dumps(
            {'id': 1, 'method': method, 'params': params},
            default=_json_default)
        response = self.client.post(
            self.url, data=body, headers=headers or {},
            content_type='application/json', environ_base=self.environ)
        if response.status_code != 200:
            raise RPCError(
                f'HTTP {response.status_code}',
                response.get_data(as_text=True))
        answer = json.loads(
            response.get_data(as_text=True), object_hook=_json_object_hook)
        if answer.get('error'):
            kind, *rest = answer['error']
            message = rest[0] if rest else ''
            if isinstance(message, list):
                # UserError: (message, description, domain)
                message = ' '.join(
                    str(m) for m in message[:2] if isinstance(m, str))
            raise RPCError(kind, str(message), rest)
        return answer['result']

    def call(self, method, *args, context=None):
        """Call `method` (e.g. 'model.course.order.checkout') with the
        positional args and the session's context (updated by context)"""
        ctx = dict(self.context)
        ctx.update(context or {})
        return self._post(method, list(args) + [ctx], headers=self.headers)

    def model(self, model, method, *args, context=None):
        return self.call(f'model.{model}.{method}', *args, context=context)

    def execute_wizard(self, wizard, data, state='start', model=None,
            record=None, action_id=None):
        """Run a wizard the way the clients do: create it, go from the
        start state through the `state` transition with data ({state name:
        values}); return the result of that step"""
        context = dict(self.context)
        if model:
            context.update(active_model=model, active_id=record,
                active_ids=[record] if record else [])
        if action_id:
            context['action_id'] = action_id
        session, start, _ = self._post(
            f'wizard.{wizard}.create', [context], headers=self.headers)
        self._post(
            f'wizard.{wizard}.execute', [session, {}, start, context],
            headers=self.headers)
        result = self._post(
            f'wizard.{wizard}.execute', [session, data, state, context],
            headers=self.headers)
        self._post(
            f'wizard.{wizard}.delete', [session, context],
            headers=self.headers)
        return result


class XMLRPCClient:
    """A Tryton XML-RPC connection of one user (basic authentication on
    every call, as proteus' set_xmlrpc does; with session, one login and
    the session on every call, as the JSON-RPC client: much faster for
    many calls, the password is hashed once)"""

    def __init__(self, database, login, password, context=None,
            session=False):
        from werkzeug.test import Client

        from trytond.protocols import dispatcher  # noqa: F401 (routes)
        from trytond.wsgi import app
        self.client = Client(app)
        self.environ = {'REMOTE_ADDR': '127.0.0.1'}
        self.url = f'/{database}/rpc/'
        if session:
            self.headers = {}
            user_id, session, *_ = self._post(
                'common.db.login', [login, {'password': password}, 'en'])
            token = base64.b64encode(
                f'{login}:{user_id}:{session}'.encode()).decode()
            self.headers = {'Authorization': f'Session {token}'}
        else:
            token = base64.b64encode(
                f'{login}:{password}'.encode()).decode()
            self.headers = {'Authorization': f'Basic {token}'}
        self.context = self._post(
            'model.res.user.get_preferences', [True, {}])
        self.context.update(context or {})

    def _post(self, method, params):
        from trytond.protocols.xmlrpc import client as tryton_xmlrpc
        body = xmlrpc.client.dumps(
            tuple(params), method, allow_none=True)
        response = self.client.post(
            self.url, data=body, headers=self.headers,
            content_type='text/xml', environ_base=self.environ)
        if response.status_code != 200:
            raise RPCError(
                f'HTTP {response.status_code}',
                response.get_data(as_text=True))
        parser, unmarshaller = tryton_xmlrpc.getparser()
        parser.feed(response.get_data())
        parser.close()
        try:
            result, = unmarshaller.close()
        except xmlrpc.client.Fault as fault:
            # Tryton's own exceptions have their code, any other one 255
            kind = ('UserError' if fault.faultCode != 255
                else 'Exception')
            message = fault.faultString
            if isinstance(message, (list, tuple)):
                message = ' '.join(str(m) for m in message)
            raise RPCError(str(kind), str(message))
        return result

    def call(self, method, *args, context=None):
        ctx = dict(self.context)
        ctx.update(context or {})
        return self._post(method, list(args) + [ctx])

    def model(self, model, method, *args, context=None):
        return self.call(f'model.{model}.{method}', *args, context=context)


def create_users(company_id):
    """Create the test users (USERS) of the company, with their passwords;
    `admin` gets every group of the installed project modules.  Run inside
    a transaction; return {login: id}."""
    from trytond.pool import Pool
    pool = Pool()
    User = pool.get('res.user')
    Group = pool.get('res.group')
    ModelData = pool.get('ir.model.data')

    def group_ids(xml_ids):
        ids = []
        for xml_id in xml_ids:
            module, fs_id = xml_id.split('.')
            try:
                ids.append(ModelData.get_id(module, fs_id))
            except KeyError:
                pass
        return ids
    result = {}
    for login, groups in USERS.items():
        user, = User.create([{
                    'name': login.title(), 'login': login,
                    'password': PASSWORD.format(login),
                    'companies': [('add', [company_id])],
                    'company': company_id,
                    'groups': [('add', group_ids(groups))],
                    }])
        result[login] = user.id
    admin, = User.search([('login', '=', 'admin')])
    ours = ModelData.search([
            ('model', '=', 'res.group'),
            ('module', 'like', 'course%'),
            ])
    User.write([admin], {
            'password': PASSWORD.format('admin'),
            'companies': [('add', [company_id])],
            'company': company_id,
            'groups': [('add', [d.db_id for d in ours])],
            })
    result['admin'] = admin.id
    return result


class RPCTestMixin(CommittedTestMixin):
    """A test case whose tests call the server over RPC as the users of
    create_users; setUpClass activates `module` (a name or a list) and
    commits a company and the users.  Works on SQLite and PostgreSQL."""

    @classmethod
    def setup_data(cls):
        super().setup_data()
        cls.user_ids = create_users(cls.company_id)

    def login(self, login, protocol='json', session=False):
        """An RPC session of login ('admin', 'manager', 'sales', 'nobody');
        XML-RPC authenticates each call, or with session once"""
        from trytond.tests.test_tryton import DB_NAME
        if protocol == 'json':
            return JSONRPCClient(DB_NAME, login, PASSWORD.format(login),
                context={'company': self.company_id})
        return XMLRPCClient(DB_NAME, login, PASSWORD.format(login),
            context={'company': self.company_id}, session=session)

    def login_chinese(self, login, groups):
        """A JSON-RPC session of login, a user of groups (XML ids
        'module.id') whose language is Chinese, created on first use (with
        the zh_CN translations loaded)"""
        from trytond.tests.test_tryton import DB_NAME

        def create():
            from trytond.pool import Pool
            pool = Pool()
            Lang = pool.get('ir.lang')
            ModelData = pool.get('ir.model.data')
            User = pool.get('res.user')
            if User.search([('login', '=', login)]):
                return
            chinese, = Lang.search([('code', '=', 'zh_CN')])
            if not chinese.translatable:
                Lang.load_translations([chinese])
            User.create([{
                        'name': login.title(), 'login': login,
                        'password': PASSWORD.format(login),
                        'language': chinese.id,
                        'companies': [('add', [self.company_id])],
                        'company': self.company_id,
                        'groups': [('add', [
                                    ModelData.get_id(*g.split('.'))
                                    for g in groups])],
                        }])
        self.run_transaction(create)
        return JSONRPCClient(DB_NAME, login, PASSWORD.format(login),
            context={'company': self.company_id})

    def assertRPCError(self, call, *args, kinds=('UserError',),
            text=None, **kwargs):
        """call(*args, **kwargs) must fail with one of kinds (server-side
        exception class names, e.g. UserError, AccessError,
        ValidationError) and, when given, text in the message; return the
        error"""
        with self.assertRaises(RPCError) as cm:
            call(*args, **kwargs)
        self.assertIn(cm.exception.kind, kinds, cm.exception)
        if text is not None:
            self.assertIn(text, cm.exception.message)
        return cm.exception





# Values that no id, list or dict parameter of an RPC method accepts; use
# them in table-driven tests (method × value → a UserError, nothing
# written).
BAD_IDS = [None, 'abc', '1', -1, 0, 7.9, 10 ** 30, [1], {'id': 1}, True]
BAD_LISTS = [None, 1, 'abc', {'a': 1}]
BAD_INTS = [None, 'x', 1.5, -1, 2 ** 40, 10 ** 30, [1], True]
BAD_AMOUNTS = [None, 'x', 'NaN', 'Infinity', '1e400', 1.5, '-1', [1], '0.001']
