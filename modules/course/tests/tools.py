"Test helpers other modules' tests use to build a small catalog"
import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

from trytond.pool import Pool


def create_catalog(company):
    """Create a direction, a category, courses A (1000), B (500), C (300)
    and a student; course A has a one-month option at 199."""
    pool = Pool()
    Direction = pool.get('course.direction')
    Course = pool.get('course.course')
    Party = pool.get('party.party')
    direction, = Direction.create([{
                'name': "Python",
                'categories': [('create', [{'name': "Web"}])],
                }])
    category, = direction.categories

    def course(name, price, credit=0, options=()):
        return {
            'name': name, 'price': Decimal(price), 'credit': credit,
            'direction': direction.id, 'category': category.id,
            'company': company.id, 'published': True,
            'options': [('create', list(options))],
            }
    course_a, course_b, course_c = Course.create([
            course("A", '1000', 100, [
                    {'name': "One month", 'days': 30,
                        'price': Decimal('199')},
                    {'name': "Permanent", 'days': 0,
                        'price': Decimal('1000')}]),
            course("B", '500', 100),
            course("C", '300'),
            ])
    student, other = Party.create([{'name': "Student"}, {'name': "Other"}])
    return SimpleNamespace(
        company=company, direction=direction, category=category,
        course_a=course_a, course_b=course_b, course_c=course_c,
        option_a_month=course_a.options[0],
        option_a_permanent=course_a.options[1],
        student=student, other_student=other)


def create_activity(course, method, value=None, name="限时折扣"):
    """Create a price activity running from yesterday to tomorrow with one
    rule for course: method ('free', 'percentage', …) and value"""
    Activity = Pool().get('course.activity')
    now = dt.datetime.now()
    activity, = Activity.create([{
                'name': name,
                'start': now - dt.timedelta(days=1),
                'end': now + dt.timedelta(days=1),
                'lines': [('create', [{
                                'course': course.id, 'method': method,
                                'value': value}])],
                }])
    return activity


def run_transaction(func, *args, context=None, retries=None, **kwargs):
    """Run func in a transaction of its own and commit it, the way the RPC
    dispatcher does: restart on TransactionError (a lock to take first) and
    retry a DatabaseOperationalError (lock held, serialization failure)."""
    import time

    from trytond import backend
    from trytond.config import config
    from trytond.tests.test_tryton import DB_NAME
    from trytond.transaction import Transaction, TransactionError
    if retries is None:
        retries = config.getint('database', 'retry')
    extras, count = {}, 0
    while True:
        try:
            with Transaction().start(
                    DB_NAME, 0, context=context or {}, **extras
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


def in_parallel(count, func, *args, context=None, **kwargs):
    """Run func(i, *args) in count threads at once, each in its own committed
    transaction; return a list of ('ok', result) or ('error', exception)."""
    import threading
    barrier = threading.Barrier(count)
    results = [None] * count

    def work(i):
        barrier.wait()
        try:
            results[i] = ('ok', run_transaction(
                    func, i, *args, context=context, **kwargs))
        except Exception as error:
            results[i] = ('error', error)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


class CommittedTestMixin:
    """Tests that commit their data, each in transactions of its own.

    setUpClass activates `module` (a name or a list) and commits what
    `setup_data()` makes (by default a company: `company_id`); the database
    is dropped at the end of the class, so use fresh records per test.
    """
    module = None

    @classmethod
    def setUpClass(cls):
        from trytond.tests.test_tryton import activate_module
        super().setUpClass()
        activate_module(cls.module)
        run_transaction(cls.setup_data)

    @classmethod
    def setup_data(cls):
        from trytond.modules.company.tests import create_company
        cls.company_id = create_company().id

    @classmethod
    def tearDownClass(cls):
        from trytond.tests.test_tryton import drop_db
        super().tearDownClass()
        drop_db()

    @property
    def context(self):
        return {'company': self.company_id}

    def run_transaction(self, func, *args, **kwargs):
        "Run func in a committed transaction as root, in the company"
        return run_transaction(func, *args, context=self.context, **kwargs)


class ConcurrencyTestMixin(CommittedTestMixin):
    """Tests with real parallel transactions; PostgreSQL only (SQLite
    serializes writers on the database file).  Tests that only need
    committed data in transactions of their own set `postgresql_only` False
    to run on SQLite too."""
    postgresql_only = True

    @classmethod
    def setUpClass(cls):
        import unittest

        from trytond import backend
        if cls.postgresql_only and backend.name != 'postgresql':
            raise unittest.SkipTest("parallel transactions need PostgreSQL")
        super().setUpClass()

    def in_parallel(self, count, func, *args, **kwargs):
        return in_parallel(count, func, *args, context=self.context, **kwargs)


def set_company_language(company, code='zh_CN'):
    """Make code the language of company (its party's), its translations
    loaded; return the ir.lang"""
    pool = Pool()
    Lang = pool.get('ir.lang')
    Party = pool.get('party.party')
    lang, = Lang.search([('code', '=', code)])
    if not lang.translatable:
        Lang.load_translations([lang])
    party = Party(company.party.id)
    party.lang = lang
    party.save()
    return lang


def set_config(test, section, option, value):
    """Set a trytond configuration option for the test; after it the option
    gets its former value back (trytond's defaults are options too: removing
    'database retry' would break every later login) or is removed"""
    from trytond import config
    if not config.has_section(section):
        config.add_section(section)
    if config._config.has_option(section, option):
        test.addCleanup(
            config.set, section, option, config.get(section, option))
    else:
        test.addCleanup(unset_config, section, option)
    config.set(section, option, value)


def unset_config(section, option):
    from trytond import config
    config._config.remove_option(section, option)
    config._cache_clear()


class TransactionStarts:
    """Count the transactions this thread starts: `count` in all,
    `writes` the read-write ones (a call that runs once starts one; a
    restart for a lock starts one more)"""

    def __init__(self):
        self.count = self.writes = 0

    def __enter__(self):
        import threading

        from trytond.transaction import Transaction
        self._start = start = Transaction.start
        thread, counter = threading.get_ident(), self

        def counted(transaction, *args, **kwargs):
            if threading.get_ident() == thread:
                counter.count += 1
                readonly = kwargs.get('readonly', args[2] if len(args) > 2
                    else False)
                counter.writes += not readonly
            return start(transaction, *args, **kwargs)
        Transaction.start = counted
        return self

    def __exit__(self, *exc):
        from trytond.transaction import Transaction
        Transaction.start = self._start
