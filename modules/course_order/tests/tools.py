"Helpers for tests of modules built on course_order"
from trytond.pool import Pool


def item(course, option=None):
    return {'course': course.id, 'option': option.id if option else None}


def checkout(party, *items, pay_method='manual', **options):
    "Check out items ((course, option) pairs or courses) for party"
    Order = Pool().get('course.order')
    return Order.checkout(party.id, [
            item(*i) if isinstance(i, tuple) else item(i) for i in items],
        pay_method, options)


class StatementCounter:
    """Count the SQL statements the current transaction runs.

    On PostgreSQL every execute of psycopg's cursors is counted; on SQLite
    the connection's trace hook is used.  Note that Tryton inserts rows one
    by one on SQLite (no multi-row ids there), so only PostgreSQL shows
    whether a create is batched.  Use as a context manager; `count` holds
    the result.  With thread_only, the statements other threads run
    meanwhile (PostgreSQL) are not counted.
    """

    def __init__(self, thread_only=False):
        from trytond.transaction import Transaction
        self.connection = Transaction().connection
        self.count = 0
        self._patched = None
        self._thread = None
        self.thread_only = thread_only

    def _trace(self, statement):
        self.count += 1

    def __enter__(self):
        from trytond import backend
        if backend.name == 'sqlite':
            self.connection.set_trace_callback(self._trace)
        else:
            import threading

            import psycopg
            original = psycopg.Cursor.execute
            counter = self
            self._thread = threading.get_ident()

            def execute(cursor, *args, **kwargs):
                if (not counter.thread_only
                        or threading.get_ident() == counter._thread):
                    counter.count += 1
                return original(cursor, *args, **kwargs)
            psycopg.Cursor.execute = execute
            self._patched = original
        return self

    def __exit__(self, *exc):
        from trytond import backend
        if backend.name == 'sqlite':
            self.connection.set_trace_callback(None)
        else:
            import psycopg
            psycopg.Cursor.execute = self._patched


def patch_release_locking_students(Order, calls=None):
    """Return a patcher of Order.release that also locks and writes the
    orders' students, as giving back credit points does (course_credit
    records the movements under lock_rows of the students); each call's
    order ids are appended to calls"""
    from unittest.mock import patch

    from trytond.modules.course.tools import lock_rows
    release = Order.release.__func__

    def locking_release(cls, orders):
        Party = Pool().get('party.party')
        lock_rows(Party, list({o.party for o in orders}))
        if calls is not None:
            calls.append([o.id for o in orders])
        release(cls, orders)
    return patch.object(Order, 'release', classmethod(locking_release))


def create_overdue_orders(company, count, students=1, pay_method='manual'):
    """Create a catalog in company and count unpaid orders past their
    deadline, one course each, the first students' orders first (each
    student has count / students); return (order ids, party id of each)"""
    import datetime as dt

    from trytond.modules.course.tests.tools import create_catalog
    from trytond.modules.course.tools import now
    pool = Pool()
    Course = pool.get('course.course')
    Order = pool.get('course.order')
    Party = pool.get('party.party')
    cat = create_catalog(company)
    per_student = -(-count // students)
    courses = Course.copy([cat.course_b] * per_student)
    Course.write(courses, {'published': True})
    parties = [cat.student] + Party.create(
        [{'name': f"Student {i}"} for i in range(1, students)])
    orders = [
        Order.checkout(
            parties[i // per_student].id,
            [{'course': courses[i % per_student].id}], pay_method, {})
        for i in range(count)]
    Order.write(orders, {'pay_deadline': now() - dt.timedelta(minutes=1)})
    return [o.id for o in orders], [o.party.id for o in orders]
