"Test helpers: a JSON-RPC client of the storefront route"
import itertools
import json

from trytond.modules.course.tests.tools import (  # noqa: F401 (set_config)
    CommittedTestMixin, create_catalog, set_config, unset_config)
from trytond.pool import Pool


class StorefrontError(Exception):
    "A JSON-RPC error answer: code, message, data"

    def __init__(self, error):
        super().__init__(error.get('message'))
        self.code = error.get('code')
        self.message = error.get('message')
        self.data = error.get('data') or {}
        self.type = self.data.get('type')


class StorefrontClient:
    """Calls POST /<database>/storefront through a werkzeug test client
    (trytond's WSGI app, in process) or over real HTTP (base_url)"""

    def __init__(self, database, base_url=None, language=None,
            remote_addr=None):
        self.database = database
        self.base_url = base_url
        self.language = language
        # The client's address (in process only)
        self.remote_addr = remote_addr
        self.token = None
        self.ids = itertools.count(1)
        if base_url is None:
            from werkzeug.test import Client

            from trytond.protocols import dispatcher  # noqa: F401
            from trytond.wsgi import app
            self.wsgi = Client(app)

    def headers(self):
        headers = {'Content-Type': 'application/json'}
        if self.token:
            headers['Authorization'] = f'Bearer {self.token}'
        if self.language:
            headers['Accept-Language'] = self.language
        return headers

    def post(self, body):
        "(status, parsed JSON or None) of a raw body"
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode('utf-8')
        path = f'/{self.database}/storefront'
        if self.base_url is None:
            environ = ({'REMOTE_ADDR': self.remote_addr}
                if self.remote_addr else None)
            response = self.wsgi.post(
                path, data=body, headers=self.headers(),
                environ_base=environ)
            status, data = response.status_code, response.get_data()
        else:
            import urllib.error
            import urllib.request
            request = urllib.request.Request(
                self.base_url + path, data=body, headers=self.headers(),
                method='POST')
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    status, data = response.status, response.read()
            except urllib.error.HTTPError as error:
                status, data = error.code, error.read()
        return status, (json.loads(data) if data else None)

    def raw(self, method, params=None):
        "The whole answer to one call"
        call = {'jsonrpc': '2.0', 'method': method, 'id': next(self.ids)}
        if params is not None:
            call['params'] = params
        status, answer = self.post(call)
        assert status == 200, (status, answer)
        return answer

    def call(self, method, params=None):
        "The result, or StorefrontError raised"
        answer = self.raw(method, params)
        if 'error' in answer:
            raise StorefrontError(answer['error'])
        return answer['result']

    def register(self, email, password='secret-pass', name="Student"):
        result = self.call('auth.register', {
                'email': email, 'password': password, 'name': name})
        self.token = result['token']
        return result


class StorefrontTestMixin(CommittedTestMixin):
    """A committed database with course_storefront, a company and the
    catalog of create_catalog (ids in cls.catalog)"""
    module = 'course_storefront'

    @classmethod
    def setup_data(cls):
        super().setup_data()
        Company = Pool().get('company.company')
        cat = create_catalog(Company(cls.company_id))
        cls.catalog = {
            'a': cat.course_a.id, 'b': cat.course_b.id, 'c': cat.course_c.id,
            'a_month': cat.option_a_month.id,
            'a_permanent': cat.option_a_permanent.id,
            'direction': cat.direction.id, 'category': cat.category.id,
            }

    def setUp(self):
        super().setUp()
        # Many students register from 127.0.0.1 in a test run: tests of the
        # rate limit set their own limits
        set_config(self, 'course', 'storefront_attempts_ip', '1000000')
        set_config(self, 'course', 'storefront_attempts_email', '1000000')

    def client(self, **kwargs):
        from trytond.tests.test_tryton import DB_NAME
        return StorefrontClient(DB_NAME, **kwargs)


def clear_redis(url):
    """Delete this test database's keys (not the whole Redis database: the
    SQLite and PostgreSQL runs share it)"""
    import redis

    from trytond.tests.test_tryton import DB_NAME
    server = redis.Redis.from_url(url)
    keys = list(server.scan_iter(match=f'course:{DB_NAME}:*', count=1000))
    if keys:
        server.delete(*keys)
