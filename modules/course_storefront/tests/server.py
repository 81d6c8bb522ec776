"""A real trytond server for the end-to-end tests of the storefront.

`TrytondServer` runs the venv's `trytond` script in a subprocess on a free
port of 127.0.0.1 with a configuration file of its own (database, listen
address, `[course] redis`, the rate limits), waits until the storefront
answers and stops it; its log (stdout and stderr) is kept in its folder and
its tail shown when it fails.

`ServerTestMixin` serves the committed test database of the run:
- PostgreSQL: the test database itself (its data committed in setUpClass);
- SQLite: the test database is in memory, so it is copied (SQLite's backup
  API) to a file in a temporary folder that the server and the test
  process both open; `on_server()` runs code in a committed transaction of
  the database the server uses.
"""
import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from trytond import backend
from trytond.config import config
from trytond.pool import Pool
from trytond.transaction import Transaction, TransactionError

from .tools import StorefrontClient, StorefrontTestMixin

# The name of the SQLite copy of the in-memory test database
SQLITE_NAME = 'storefront_e2e'
START_TIMEOUT = 120
# Warnings and errors, without werkzeug's line per request: the tail shown
# on a failure is the server's complaint
LOGGING_CONFIG = '''[loggers]
keys=root,werkzeug

[handlers]
keys=stderr

[formatters]
keys=plain

[logger_root]
level=WARNING
handlers=stderr

[logger_werkzeug]
level=WARNING
handlers=
qualname=werkzeug

[handler_stderr]
class=StreamHandler
args=(sys.stderr,)
formatter=plain

[formatter_plain]
format=%(asctime)s %(levelname)s %(name)s %(message)s
'''


def free_port():
    "A TCP port of 127.0.0.1 free now"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def trytond_script():
    "The trytond script next to the running Python (the venv's)"
    script = os.path.join(os.path.dirname(sys.executable), 'trytond')
    if not os.path.exists(script):
        script = shutil.which('trytond')
    if not script:
        raise RuntimeError("the trytond script is not installed")
    return script


class ServerError(RuntimeError):
    pass


class TrytondServer:
    """One trytond process serving database.

    sections: {section: {option: value}} added to the configuration file
    (the database URI and path, the listen address are set here)."""

    def __init__(self, database, sections=None, folder=None):
        self.database = database
        self.sections = sections or {}
        self.folder = folder or tempfile.mkdtemp(prefix='trytond-e2e-')
        self.port = free_port()
        self.process = None
        self.log_path = os.path.join(self.folder, f'trytond-{self.port}.log')
        self.config_path = os.path.join(
            self.folder, f'trytond-{self.port}.conf')
        self.logging_path = os.path.join(
            self.folder, f'trytond-{self.port}-logging.conf')

    @property
    def base_url(self):
        return f'http://127.0.0.1:{self.port}'

    def config_text(self):
        sections = {
            'database': {'uri': config.get('database', 'uri')},
            'web': {'listen': f'127.0.0.1:{self.port}'},
            }
        for section, options in self.sections.items():
            sections.setdefault(section, {}).update(options)
        lines = []
        for section, options in sections.items():
            lines.append(f'[{section}]')
            lines.extend(f'{k} = {v}' for k, v in options.items())
            lines.append('')
        return '\n'.join(lines)

    def environ(self):
        "The test process's environment without what the file sets"
        env = dict(os.environ)
        for key in ['TRYTOND_DATABASE_URI', 'TRYTOND_DATABASE__URI',
                'TRYTOND_DATABASE__PATH', 'TRYTOND_WEB__LISTEN',
                'TRYTOND_COURSE__REDIS', 'TRYTOND_CONFIG', 'DB_NAME',
                'DB_CACHE']:
            env.pop(key, None)
        return env

    def start(self, timeout=START_TIMEOUT):
        with open(self.config_path, 'w') as fp:
            fp.write(self.config_text())
        with open(self.logging_path, 'w') as fp:
            fp.write(LOGGING_CONFIG)
        self.log = open(self.log_path, 'wb')
        self.process = subprocess.Popen(
            [sys.executable, trytond_script(), '-c', self.config_path,
                '--logconf', self.logging_path, '-d', self.database],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self.environ())
        # Not left running when the test process ends without tearDownClass
        atexit.register(self.stop)
        try:
            self.wait(timeout)
        except Exception:
            self.stop()
            raise
        return self

    def wait(self, timeout):
        "Until the storefront answers a public call"
        deadline = time.monotonic() + timeout
        client = self.client()
        while True:
            if self.process.poll() is not None:
                raise ServerError(
                    f"trytond stopped (exit {self.process.returncode}):\n"
                    + self.tail())
            try:
                status, answer = client.post({
                        'jsonrpc': '2.0', 'method': 'catalog.directions',
                        'id': 1})
            except (OSError, urllib.error.URLError, ValueError):
                status, answer = None, None
            if status == 200 and answer and 'result' in answer:
                return
            if time.monotonic() > deadline:
                raise ServerError(
                    f"trytond did not answer in {timeout}s "
                    f"(last: {status} {answer}):\n" + self.tail())
            time.sleep(0.2)

    def client(self, **kwargs):
        return StorefrontClient(
            self.database, base_url=self.base_url, **kwargs)

    def post_form(self, path, params):
        "(status, text) of a form POST to the server (Alipay's notify)"
        data = urllib.parse.urlencode(params).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method='POST', headers={
                'Content-Type': 'application/x-www-form-urlencoded'})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def tail(self, lines=60):
        "The last lines of the server's log"
        try:
            with open(self.log_path, 'rb') as fp:
                text = fp.read().decode('utf-8', 'replace')
        except OSError:
            return ''
        return '\n'.join(text.splitlines()[-lines:])

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)
        self.process = None
        self.log.close()
        atexit.unregister(self.stop)


def copy_memory_database(path, name):
    "Copy the in-memory test database to <path>/<name>.sqlite"
    import sqlite3

    from trytond.tests.test_tryton import DB_NAME
    target = os.path.join(path, name + '.sqlite')
    database = backend.Database(DB_NAME).connect()
    connection = database.get_connection()
    try:
        with sqlite3.connect(target) as out:
            connection.backup(out)
        out.close()
    finally:
        database.put_connection(connection)


def run_in(database, func, *args, context=None, **kwargs):
    """Run func in a committed transaction of database as root, restarting
    it for a lock to take first and retrying a busy database"""
    extras, count = {}, 0
    retries = config.getint('database', 'retry')
    while True:
        try:
            with Transaction().start(
                    database, 0, context=context or {}, **extras
                    ) as transaction:
                try:
                    result = func(*args, **kwargs)
                except TransactionError as error:
                    transaction.rollback()
                    error.fix(extras)
                    continue
                except Exception:
                    transaction.rollback()
                    raise
                transaction.commit()
                return result
        except backend.DatabaseOperationalError:
            if count >= retries:
                raise
            count += 1
            time.sleep(0.02 * count)


class ServerTestMixin(StorefrontTestMixin):
    """The committed test database served by a trytond process for the
    class (cls.server); `server_sections` adds to its configuration"""
    server_sections = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.folder = tempfile.mkdtemp(prefix='storefront-e2e-')
        cls.addClassCleanup(shutil.rmtree, cls.folder, True)
        cls.servers = []
        try:
            cls.server_database = cls.serve_database()
            cls.server = cls.start_server()
        except Exception:
            cls.stop_servers()
            cls.unserve_database()
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.stop_servers()
        cls.unserve_database()
        super().tearDownClass()

    @classmethod
    def serve_database(cls):
        "The name of the database the servers use"
        from trytond.tests.test_tryton import DB_NAME
        if backend.name != 'sqlite':
            # The server's connections are its own: nothing else to do
            return DB_NAME
        cls.old_path = config.get('database', 'path')
        copy_memory_database(cls.folder, SQLITE_NAME)
        # This process opens the copy too (on_server)
        config.set('database', 'path', cls.folder)
        Pool(SQLITE_NAME).init()
        return SQLITE_NAME

    @classmethod
    def unserve_database(cls):
        if backend.name == 'sqlite' and hasattr(cls, 'old_path'):
            from trytond.cache import Cache
            Cache.drop(SQLITE_NAME)
            Pool.stop(SQLITE_NAME)
            backend.Database(SQLITE_NAME).close()
            config.set('database', 'path', cls.old_path)
            del cls.old_path

    @classmethod
    def sections(cls, **overrides):
        "The configuration of a server: server_sections with overrides"
        sections = {
            'database': {'path': cls.folder},
            # Every student of the tests registers from 127.0.0.1
            'course': {
                'storefront_attempts_ip': '1000000',
                'storefront_attempts_email': '1000000',
                },
            }
        for extra in [cls.server_sections, overrides]:
            for section, options in extra.items():
                sections.setdefault(section, {}).update(options)
        return sections

    @classmethod
    def start_server(cls, **overrides):
        "Start a server on the database (stopped at the end of the class)"
        server = TrytondServer(
            cls.server_database, cls.sections(**overrides), cls.folder)
        server.start()
        cls.servers.append(server)
        return server

    @classmethod
    def stop_servers(cls):
        for server in getattr(cls, 'servers', []):
            server.stop()
        cls.servers = []

    def run(self, result=None):
        "Show the server's log tail when a test fails"
        failures = len(result.failures) + len(result.errors) if result else 0
        outcome = super().run(result)
        if result and len(result.failures) + len(result.errors) > failures:
            for server in self.servers:
                sys.stderr.write(
                    f"\n--- trytond on port {server.port}, last lines ---\n"
                    f"{server.tail()}\n")
        return outcome

    def client(self, server=None, **kwargs):
        return (server or self.server).client(**kwargs)

    def on_server(self, func, *args, **kwargs):
        """Run func in a committed transaction of the served database, in
        the company"""
        return run_in(
            self.server_database, func, *args, context=self.context,
            **kwargs)
