"""A database that cannot be reached (stopped, restarting) or whose locks
are held: the calls answer a JSON-RPC error, never an HTTP 500"""
import unittest
from unittest.mock import patch

from trytond import backend

from .tools import StorefrontError, StorefrontTestMixin


class Locked(backend.DatabaseOperationalError):
    "What PostgreSQL raises for a NOWAIT lock held by another transaction"
    sqlstate = '55P03'


class StorefrontUnavailableTestCase(StorefrontTestMixin, unittest.TestCase):

    def database_fails(self, error, readonly_too=True):
        """get_connection raises error (for write transactions only unless
        readonly_too) while the patch is active"""
        original = backend.Database.get_connection

        def get_connection(database, *args, **kwargs):
            if readonly_too or not kwargs.get('readonly'):
                raise error
            return original(database, *args, **kwargs)
        return patch.object(backend.Database, 'get_connection',
            get_connection)

    def test_unreachable(self):
        "No connection: 'unavailable' -32603 in the student's language"
        client = self.client()
        client.register('unreachable@example.com')
        chinese = self.client(language='zh_CN')
        chinese.token = client.token
        for language_client, text in [
                (client, 'unavailable'), (chinese, '服务暂时不可用')]:
            with self.database_fails(
                    backend.DatabaseOperationalError("connection refused")):
                for method, params in [
                        ('catalog.courses', {}), ('account.me', None),
                        ('cart.add', {'course': self.catalog['b']})]:
                    status, answer = language_client.post({
                            'jsonrpc': '2.0', 'method': method,
                            'params': params or {}, 'id': 7})
                    self.assertEqual(status, 200, answer)
                    error = answer['error']
                    self.assertEqual(
                        (error['code'], error['data']['type'], answer['id']),
                        (-32603, 'unavailable', 7))
                    self.assertIn(text, error['message'])
        # Once it is back, the calls work and nothing was added
        self.assertEqual(client.call('cart.get')['items'], [])

    def test_locks_held(self):
        "The locks to take first stay held: 'busy', not an internal error"
        client = self.client()
        client.register('locked@example.com')
        with self.database_fails(Locked("could not obtain lock"),
                readonly_too=False):
            with self.assertRaises(StorefrontError) as cm:
                client.call('cart.add', {'course': self.catalog['b']})
        self.assertEqual(
            (cm.exception.code, cm.exception.type), (-32010, 'busy'))
        self.assertEqual(client.call('cart.get')['items'], [])
