#!/usr/bin/env python3
"""Print the cost of the hot paths as the data grows.

    python3 scripts/bench.py                    # SQLite in memory
    python3 scripts/bench.py --postgresql       # a throw-away PostgreSQL DB

For a checkout of 1, 10 and 30 lines, a read of the order list of 10, 100
and 1000 orders, and the expiry job over 1000 overdue orders, it prints the
SQL statements run and the time taken.  Statement counts must not grow with
the number of lines or records (Tryton inserts one row per statement on
SQLite, which has no multi-row ids: read the PostgreSQL figures for
creates).  It checks nothing itself: it prints figures.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bootstrap import ROOT, ensure_venv  # noqa: E402


def setup_environment(postgresql):
    if postgresql:
        os.environ['TRYTOND_DATABASE_URI'] = os.environ.get(
            'COURSE_TEST_POSTGRESQL', 'postgresql://postgres@127.0.0.1:5432/')
        os.environ['DB_NAME'] = f'bench_course_{os.getpid()}'
    else:
        os.environ['TRYTOND_DATABASE_URI'] = 'sqlite://'
        os.environ['DB_NAME'] = ':memory:'
    sys.path.insert(0, ROOT)


def measure(label, func, *args):
    from trytond.modules.course_order.tests.tools import StatementCounter
    start = time.perf_counter()
    with StatementCounter() as counter:
        result = func(*args)
    elapsed = (time.perf_counter() - start) * 1000
    print(f"{label:<42} {counter.count:>6} statements {elapsed:>9.1f} ms",
        flush=True)
    return result


def run():
    import datetime as dt
    from decimal import Decimal

    from trytond.modules.company.tests import create_company
    from trytond.modules.course.tests.tools import create_catalog
    from trytond.modules.course_order.tests.tools import checkout
    from trytond.pool import Pool
    from trytond.tests.test_tryton import (
        activate_module, drop_db, with_transaction)
    from trytond.transaction import Transaction

    activate_module('course_order')

    @with_transaction()
    def bench():
        pool = Pool()
        Course = pool.get('course.course')
        Order = pool.get('course.order')
        Party = pool.get('party.party')
        company = create_company()
        transaction = Transaction()
        transaction.context = dict(transaction.context, company=company.id)
        cat = create_catalog(company)
        courses = Course.copy([cat.course_b] * 41)
        Course.write(courses, {'published': True, 'price': Decimal('99.90')})
        students = Party.create([{'name': f"S{i}"} for i in range(1100)])
        checkout(students[-1], courses[-1])  # warm the caches
        offset = 0
        for size in [1, 10, 30]:
            measure(f"checkout, {size} lines", checkout,
                students[1000 + size], *courses[offset:offset + size])
            offset += size

        for i, student in enumerate(students[:1000]):
            checkout(student, courses[i % 40])
        fields = ['number', 'party.rec_name', 'order_date', 'title',
            'payable_amount', 'pay_method', 'pay_deadline', 'state']
        for size in [10, 100, 1000]:
            ids = [o.id for o in Order.search([], limit=size)]
            transaction.counter += 1
            measure(f"order list, {size} orders", Order.read, ids, fields)

        orders = Order.search([('state', '=', 'unpaid')])
        Order.write(orders, {
                'pay_deadline': dt.datetime.now() - dt.timedelta(hours=1)})
        count = measure(
            f"expiry job, {len(orders)} overdue (batches of 500)",
            lambda: len(Order.expire_overdue()))
        print(f"expired {count} orders")
    try:
        bench()
    finally:
        drop_db()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--postgresql', action='store_true')
    args = parser.parse_args()
    ensure_venv()
    setup_environment(args.postgresql)
    run()


if __name__ == '__main__':
    main()
