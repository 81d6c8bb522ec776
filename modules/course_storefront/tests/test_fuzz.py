"""A short fuzz (tests/fuzz.py) against a running trytond: SQLite with the
cart in the database, PostgreSQL with the cart in Redis.  No HTTP 500, no
traceback, only allowed codes, nothing changed by a refused call, no other
student's data, carts and order amounts as the calls made them.

FUZZ_EXAMPLES sets the size of the run (scripts/fuzz_storefront.py runs a
long one), FUZZ_SEED a seed (none: derandomized), FUZZ_REPORT a file where
the counts are written as JSON."""
import json
import os
import unittest
from decimal import Decimal

from trytond import backend
from trytond.pool import Pool

from .fuzz import Fuzz, read_tables
from .server import ServerTestMixin
from .test_flows import CI, REDIS_URL, redis_running
from .tools import clear_redis

# Calls of the short run, about: half over the methods, half in sequences
EXAMPLES = int(os.environ.get('FUZZ_EXAMPLES') or 600)
SEED = os.environ.get('FUZZ_SEED')
STEPS = 20


class FuzzTestCase(ServerTestMixin, unittest.TestCase):
    "The fuzz of a server on the test run's backend"
    # With course_degree: its degree.* methods are fuzzed too
    module = ['course_storefront', 'course_degree']

    @classmethod
    def setUpClass(cls):
        cls.redis = None
        if backend.name == 'postgresql':
            if not redis_running():
                if CI:
                    raise RuntimeError(f"Redis is not running at {REDIS_URL}")
                raise unittest.SkipTest(f"Redis is not running at {REDIS_URL}")
            cls.redis = REDIS_URL
            cls.server_sections = {'course': {'redis': REDIS_URL}}
        super().setUpClass()
        if cls.redis:
            clear_redis(REDIS_URL)
            cls.addClassCleanup(clear_redis, REDIS_URL)

    @classmethod
    def setup_data(cls):
        from trytond.modules.course_coupon.tests.tools import create_coupon
        super().setup_data()
        pool = Pool()
        Company = pool.get('company.company')
        Course = pool.get('course.course')
        Grant = pool.get('course.coupon.grant')
        company = Company(cls.company_id)
        catalog = cls.catalog

        def course(name, price, published=True, credit=0):
            return {'name': name, 'price': Decimal(price), 'credit': credit,
                'direction': catalog['direction'],
                'category': catalog['category'],
                'company': cls.company_id, 'published': published}
        more = Course.create([course("D", '2000', credit=200),
                course("Free", '0'), course("Hidden", '100', False)])
        coupons = [
            create_coupon(company, '-30', name="Thirty", issue_mode='claim',
                total=10000),
            create_coupon(company, '*0.8', name="Scarce", issue_mode='claim',
                total=3, per_party_limit=1),
            create_coupon(company, '-50', name="Printed"),
            ]
        codes = Grant.create_codes([coupons[2]], 10)
        degree = cls.create_degree()
        cls.fuzz_data = {
            'courses': [catalog['a'], catalog['b'], catalog['c']]
            + [c.id for c in more],
            'options': [catalog['a_month'], catalog['a_permanent']],
            'coupons': [c.id for c in coupons],
            'codes': [c.code for c in codes] + ['NOPE', ''],
            'degrees': [degree.id],
            'degree_options': [o.id for o in degree.options],
            'homeworks': [h.id for m in degree.modules for h in m.homeworks],
            'form': {
                'company_name': "Acme", 'position': "Dev",
                'salary': '8000', 'experience': 'graduate',
                'study_plan': '3-5', 'why_course': "Learn",
                'why_us': "Mentors", 'expectations': "A job"},
            }

    @classmethod
    def create_degree(cls):
        "A cheap program of two new courses, with homework"
        pool = Pool()
        Course = pool.get('course.course')
        Degree = pool.get('course.degree')
        courses = Course.create([{
                    'name': name, 'price': Decimal(100), 'credit': 0,
                    'direction': cls.catalog['direction'],
                    'category': cls.catalog['category'],
                    'company': cls.company_id, 'published': True}
                for name in ["Module 1", "Module 2"]])
        degree, = Degree.create([{
                    'name': "Fuzz program", 'company': cls.company_id,
                    'price': Decimal(300), 'published': True,
                    'options': [('create', [{'name': "Half year",
                                    'days': 180, 'price': Decimal(200)}])],
                    'modules': [('create', [{
                                    'course': c.id, 'sequence': i,
                                    'homeworks': [('create', [
                                                {'name': f"H{i}a",
                                                    'days': 3},
                                                {'name': f"H{i}b",
                                                    'days': 6}])],
                                    } for i, c in enumerate(courses, 1)])],
                    }])
        return degree

    def read_state(self):
        "The tables of the served database, and the carts in Redis"
        state = self.on_server(read_tables)
        if self.redis:
            import redis
            server = redis.Redis.from_url(self.redis)
            pattern = f'course:{self.server_database}:cart:*'
            state['redis carts'] = sorted(
                (key, sorted(server.hgetall(key).items()))
                for key in server.scan_iter(match=pattern, count=1000))
        return state

    def test_fuzz(self):
        fuzz = Fuzz(self.server, self.read_state, self.on_server,
            self.fuzz_data, seed=int(SEED) if SEED else None)
        fuzz.setup()
        per_method = max(1, EXAMPLES // 2 // len(fuzz_methods()))
        fuzz.run_methods(per_method)
        fuzz.run_sequences(max(1, EXAMPLES // 2 // STEPS // 3), STEPS)
        report = fuzz.report.as_dict()
        report['backend'] = backend.name
        report['cart'] = 'redis' if self.redis else 'database'
        report['server_log_tracebacks'] = fuzz.server_log_tracebacks()
        print(f"\nfuzz on {backend.name}, cart in {report['cart']}:\n"
            + fuzz.report.format()
            + f"\nserver log tracebacks: {report['server_log_tracebacks']}")
        if os.environ.get('FUZZ_REPORT'):
            with open(os.environ['FUZZ_REPORT'], 'w') as fp:
                json.dump(report, fp, indent=1)
        self.assertEqual(report['violations'], {}, report['examples'])
        self.assertEqual(report['server_log_tracebacks'], 0)
        # The run reached past the params' checks, into every method
        self.assertEqual(set(report['by_method']),
            {n for n, _ in fuzz_methods()})
        self.assertGreater(report['results'], report['calls'] // 5)
        for type_ in ['not_found', 'params.invalid', 'auth.required']:
            self.assertTrue(any(k.endswith(' ' + type_)
                    for k in report['by_code']), (type_, report['by_code']))
        for name in ['cart.add', 'checkout.preview', 'order.create',
                'order.get', 'coupon.claim', 'coupon.redeem',
                'degree.mine', 'degree.homework.list']:
            self.assertGreater(
                report['results_by_method'].get(name, 0), 0, name)


def fuzz_methods():
    from .strategies import methods
    return methods()
