"Helpers for tests of modules built on course_order"
import time
from decimal import Decimal

from trytond.modules.course.course import SalePrice
from trytond.modules.course.tools import check_id
from trytond.pool import Pool


def item(course, option=None):
    return {'course': course.id, 'option': option.id if option else None}


def checkout(party, *items, pay_method='manual', **options):
    "Check out items ((course, option) pairs or courses) for party"
    Order = Pool().get('course.order')
    return Order.checkout(party.id, [
            item(*i) if isinstance(i, tuple) else item(i) for i in items],
        pay_method, options)


def plug(test, Model, **attributes):
    """Set attributes of Model for the test (a TestCase), as a module's
    extension would; undone at its cleanup"""
    from unittest.mock import patch
    for name, value in attributes.items():
        patcher = patch.object(Model, name, value, create=True)
        patcher.start()
        test.addCleanup(patcher.stop)


def sell_kind(test, kind, Product, price, fulfil=None, revoke=None):
    """Plug for test a kind of checkout item, {kind: id}, selling a record of
    Product at price, the way a module would: the kind, the product
    model, the check and price of its items, its line; fulfil(lines)
    and revoke(lines) of its paid lines"""
    pool = Pool()
    Order = pool.get('course.order')
    Line = pool.get('course.order.line')
    kinds, products = Order._get_checkout_item_kinds, Line._get_product
    get_line = Order._get_checkout_line
    if kind in kinds():
        return  # plugged already: the test restarted (Model.lock)

    def check(cls, checkout, items):
        price_ = SalePrice(Decimal(price), Decimal(price), kind, None)
        return [(dict(i, **{kind: Product(i[kind])}), price_)
            for i in items]

    def checkout_line(cls, checkout, item, price):
        line = get_line(checkout, item, price)
        if kind in item:
            line.product = item[kind]
        return line

    def lines_of(orders):
        return [l for o in orders for l in o.lines
            if l.product.__name__ == Product.__name__]
    plug(
        test, Order, _get_checkout_item_kinds=classmethod(
            lambda cls: kinds() + [kind]),
        _get_checkout_line=classmethod(checkout_line),
        **{f'checkout_items_{kind}': classmethod(check),
            f'_checkout_item_{kind}': classmethod(
                lambda cls, item: {kind: check_id(item[kind], kind)})})
    plug(test, Line, _get_product=classmethod(
            lambda cls: products() + [Product.__name__]))
    for name, hook in [('fulfil', fulfil), ('revoke', revoke)]:
        if hook:
            base = getattr(Order, name)

            def extended(cls, orders, base=base, hook=hook):
                base(orders)
                hook(lines_of(orders))
            plug(test, Order, **{name: classmethod(extended)})


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
        from collections import Counter

        from trytond.transaction import Transaction
        self.connection = Transaction().connection
        self.count = 0
        # PostgreSQL: seconds spent by statement (its first words)
        self.seconds = Counter()
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
                if (counter.thread_only
                        and threading.get_ident() != counter._thread):
                    return original(cursor, *args, **kwargs)
                counter.count += 1
                start = time.perf_counter()
                try:
                    return original(cursor, *args, **kwargs)
                finally:
                    query = str(args[0]) if args else ''
                    counter.seconds[' '.join(query.split()[:6])] += (
                        time.perf_counter() - start)
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


def print_receipt(orders, output=None):
    """Print the receipt of orders as the clients do (report execute);
    output sets the action's output format first, as an administrator
    does ('' for the template's ODT, 'pdf'); return (extension, content)"""
    pool = Pool()
    ActionReport = pool.get('ir.action.report')
    Receipt = pool.get('course.order.receipt', type='report')
    action, = ActionReport.search(
        [('report_name', '=', 'course.order.receipt')])
    if output is not None:
        ActionReport.write([action], {'extension': output})
    extension, content, _, _ = Receipt.execute(
        [o.id for o in orders], {'action_id': action.id})
    return extension, content


def odt_paragraphs(content):
    "The texts of the paragraphs of an ODT file (its content.xml)"
    import io
    import zipfile
    from xml.etree import ElementTree
    with zipfile.ZipFile(io.BytesIO(content)) as odt:
        root = ElementTree.fromstring(odt.read('content.xml'))
    text = '{urn:oasis:names:tc:opendocument:xmlns:text:1.0}'
    return [''.join(p.itertext()) for p in root.iter()
        if p.tag in {f'{text}p', f'{text}h'}]
