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
    the result.
    """

    def __init__(self):
        from trytond.transaction import Transaction
        self.connection = Transaction().connection
        self.count = 0
        self._patched = None

    def _trace(self, statement):
        self.count += 1

    def __enter__(self):
        from trytond import backend
        if backend.name == 'sqlite':
            self.connection.set_trace_callback(self._trace)
        else:
            import psycopg
            original = psycopg.Cursor.execute
            counter = self

            def execute(cursor, *args, **kwargs):
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
