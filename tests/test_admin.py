"""trytond-admin creates and then updates a PostgreSQL database with every
module of the project (the deployment path of the README).

PostgreSQL pass only: the SQLite path is exercised by tests/test_demo.py.
"""
import os
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def project_modules():
    folder = os.path.join(ROOT, 'modules')
    return sorted(
        n for n in os.listdir(folder)
        if os.path.exists(os.path.join(folder, n, 'tryton.cfg')))


@unittest.skipUnless(
    os.environ.get('TRYTOND_DATABASE_URI', '').startswith('postgresql'),
    "PostgreSQL pass only")
class AdminTestCase(unittest.TestCase):
    "trytond-admin on PostgreSQL"

    def setUp(self):
        import psycopg
        self.uri = os.environ['TRYTOND_DATABASE_URI']
        self.name = f'test_admin_{os.getpid()}_{int(time.time())}'
        self.server = psycopg.connect(
            self.uri.rstrip('/') + '/postgres', autocommit=True)
        self.server.execute(f'CREATE DATABASE "{self.name}"')
        self.addCleanup(self.drop)
        folder = tempfile.mkdtemp()
        self.passfile = os.path.join(folder, 'pass')
        with open(self.passfile, 'w') as fp:
            fp.write('admin-password\n')

    def drop(self):
        self.server.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
        self.server.close()

    def admin(self, *args):
        env = dict(os.environ, TRYTONPASSFILE=self.passfile)
        result = subprocess.run(
            [os.path.join(BIN, 'trytond-admin'), '-d', self.name, *args],
            env=env, stdin=subprocess.DEVNULL, capture_output=True,
            text=True, timeout=600)
        self.assertEqual(
            result.returncode, 0, result.stdout + result.stderr)

    def activated(self):
        import psycopg
        with psycopg.connect(self.uri.rstrip('/') + '/' + self.name) as conn:
            return {name for name, in conn.execute(
                    "SELECT name FROM ir_module WHERE state = 'activated'")}

    def test_create_then_update(self):
        "Create with --all, activate every module, update with --all"
        modules = project_modules()
        self.admin('--all', '--email', 'admin@example.com')
        self.admin('-u', *modules, '--activate-dependencies')
        self.assertLessEqual(set(modules), self.activated())
        self.admin('--all')
        self.assertLessEqual(set(modules), self.activated())
