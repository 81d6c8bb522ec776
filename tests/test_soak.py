"""A short soak (scripts/soak.py): random storefront traffic on 2 trytond
processes, one killed with SIGKILL every few seconds, then the audit.

PostgreSQL only (parallel server processes on one database); the cart in
a private redis-server when the binary exists, else in the Redis of
COURSE_TEST_REDIS (with CI=true a missing one is a failure)."""
import os
import shutil
import sys
import tempfile
import unittest

from trytond import backend
from trytond.modules.course.tests.tools import CommittedTestMixin

sys.path.insert(0, os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        'scripts'))
import soak  # noqa: E402

CI = os.environ.get('CI', '').lower() == 'true'
DURATION = float(os.environ.get('COURSE_SOAK_SECONDS', 30))


def redis_usable():
    if soak.RedisServer.available():
        return True
    import redis
    try:
        redis.Redis.from_url(soak.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        return False
    return True


class SoakTestCase(CommittedTestMixin, unittest.TestCase):
    "The soak with kills ends with an audit that agrees"
    module = soak.MODULES

    @classmethod
    def setUpClass(cls):
        if backend.name != 'postgresql':
            raise unittest.SkipTest("the soak runs on PostgreSQL")
        if not redis_usable():
            message = f"no redis-server and no Redis at {soak.REDIS_URL}"
            if CI:
                raise RuntimeError(message)
            raise unittest.SkipTest(message)
        super().setUpClass()

    def test_soak(self):
        from trytond.tests.test_tryton import DB_NAME
        folder = tempfile.mkdtemp(prefix='soak-test-')
        self.addCleanup(shutil.rmtree, folder, True)
        options = soak.Options(
            duration=DURATION, kill_every=5, clients=3, students=3,
            order_timeout=8, expiry_every=2, stock=4)
        counts, problems, summary = soak.soak(
            DB_NAME, options, folder, company=self.company_id)

        self.assertEqual(problems, [])
        self.assertGreaterEqual(counts['kills'], 2)
        self.assertEqual(counts['client process failed'], 0)
        # Killed calls are retried; the server never answers 500 or
        # 'internal'
        self.assertEqual([k for k in counts if k.startswith((
                        'http ', 'internal', 'not json', 'client error'))],
            [])
        for method in ['auth.register', 'cart.add', 'checkout.preview',
                'order.create', 'coupon.claim', 'order.pay', 'order.cancel']:
            self.assertGreater(counts[f'ok {method}'], 0, method)
        self.assertGreater(counts['course.order paid'], 0)
        self.assertGreater(counts['notify 200 success'], 0)
        self.assertEqual(counts['notifies never answered success'], 0)
        self.assertGreater(counts['expiry runs'], 0)
        # The scarce coupons ran out
        self.assertGreater(counts['refused coupon.sold_out'], 0)
        self.assertEqual(summary['problems'], 0)

    def test_audit_finds(self):
        "The soak's audit finds what it looks for"
        from trytond.tests.test_tryton import DB_NAME
        from trytond.transaction import Transaction

        def broken(statement):
            with Transaction().start(DB_NAME, 0, context={
                        'company': self.company_id}) as transaction:
                try:
                    cursor = transaction.connection.cursor()
                    cursor.execute(statement)
                    return soak.audit(type('Fake', (), {'trades': {}}))
                finally:
                    transaction.rollback()

        self.assertEqual(broken('SELECT 1'), [])

        def create():
            from trytond.modules.course_coupon.tests.tools import (
                create_coupon)
            from trytond.pool import Pool
            company = Pool().get('company.company')(self.company_id)
            return create_coupon(company, '-30', issue_mode='claim',
                total=2, per_party_limit=1).id
        coupon = soak.run_in(
            DB_NAME, create, context={'company': self.company_id})
        problems = broken(
            f'UPDATE course_coupon SET remaining = 3 WHERE id = {coupon}')
        self.assertTrue(any(f'coupon {coupon}' in p for p in problems),
            problems)
