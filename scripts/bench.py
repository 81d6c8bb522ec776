#!/usr/bin/env python3
"""Print the cost of the hot paths as the data grows.

    python3 scripts/bench.py                    # SQLite in memory
    python3 scripts/bench.py --postgresql       # a throw-away PostgreSQL DB
    python3 scripts/bench.py --postgresql --expiry 10000

For a checkout of 1, 10 and 30 lines and a read of the order list of 10,
100 and 1000 orders, it prints the SQL statements run and the time taken.
Statement counts must not grow with the number of lines or records (Tryton
inserts one row per statement on SQLite, which has no multi-row ids: read
the PostgreSQL figures for creates).

Then the expiry job (--expiry N, default 100000 on PostgreSQL, 2000 on
SQLite, 0 to skip) with course_coupon and course_credit: N overdue unpaid
orders, a quarter plain, a quarter with a coupon, a quarter with credit
points, a quarter with both, copied by SQL from real checkouts of each kind
(rows as checkout writes them: order, line, discounts and their lines, the
reserved grant, the spend movement with its running balance).  The job runs
as the cron does while --checkouts processes (default 3, PostgreSQL only)
run live checkouts of random students beside it (as fast as they can, or
--checkout-rate a second in all: a busy day's pace); it prints the outcomes,
the time, the job's statements, batches and transactions, the checkouts done
meanwhile and their latency, and what the job left (grants still held,
refunds, negative balances).  It checks nothing itself: it prints figures.
"""
import argparse
import os
import random
import statistics
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bootstrap import ROOT, ensure_venv  # noqa: E402


def setup_environment(postgresql):
    if postgresql:
        os.environ['TRYTOND_DATABASE_URI'] = os.environ.get(
            'COURSE_TEST_POSTGRESQL', 'postgresql://postgres@127.0.0.1:5432/')
        os.environ['DB_NAME'] = f'bench_course_{os.getpid()}'
        # As config/trytond.conf: a checkout meeting a lock retries
        os.environ.setdefault('TRYTOND_DATABASE__RETRY', '20')
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


def run(expiry, checkouts, batch_size, hot_paths=True, profile=False,
        mix=None, rate=0):
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
        if not hot_paths:
            return
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

    try:
        bench()
        if expiry:
            bench_expiry(expiry, checkouts, batch_size, profile, mix, rate)
    finally:
        drop_db()


# ---- The expiry job ---------------------------------------------------------

COURSES = 10  # overdue orders per student: one per course
LIVE_COURSES = 3  # what the live checkouts buy
POINTS = 100  # spent by an order with points
KINDS = [
    ('plain', {}),
    ('coupon', {'grants': True}),
    ('points', {'credit': POINTS}),
    ('coupon + points', {'grants': True, 'credit': POINTS}),
    ]


def bench_expiry(count, threads, batch_size, profile=False, mix=None,
        rate=0):
    from trytond import backend
    from trytond.modules.company.tests import create_company
    from trytond.modules.course.tests.tools import (
        create_catalog, run_transaction)
    from trytond.modules.course_coupon.tests.tools import (
        create_coupon, give)
    from trytond.modules.course_credit.tests.tools import (
        grant as credit_grant)
    from trytond.modules.course_order.tests.tools import StatementCounter
    from trytond.pool import Pool
    from trytond.tests.test_tryton import activate_module
    from trytond.transaction import Transaction

    print(f"\nexpiry job: {count} overdue orders with course_coupon and "
        "course_credit", flush=True)
    start = time.perf_counter()
    activate_module(['course_order', 'course_coupon', 'course_credit'])

    def setup():
        pool = Pool()
        Course = pool.get('course.course')
        Configuration = pool.get('course.configuration')
        Order = pool.get('course.order')
        Party = pool.get('party.party')
        company = create_company()
        cat = create_catalog(company)
        Configuration.write([Configuration(1)], {
                'discounts_combinable': True, 'coupon_stacking': 'single'})
        courses = Course.copy([cat.course_b] * (COURSES + LIVE_COURSES))
        Course.write(courses, {'published': True})
        coupon = create_coupon(company, '-30')
        templates = {}
        with Transaction().set_context(company=company.id):
            for i, (kind, options) in enumerate(KINDS):
                party = cat.student if not i else Party.create(
                    [{'name': f"Template {kind}"}])[0]
                # As the adjust wizard records points
                credit_grant(party, POINTS * COURSES, reason="bench")
                options = dict(options)
                if options.get('grants'):
                    options['grants'] = [give(coupon, party).id]
                order = Order.checkout(
                    party.id, [{'course': courses[0].id}], 'manual', options)
                templates[kind] = order.id
        return (company.id, [c.id for c in courses[:COURSES]],
            [c.id for c in courses[COURSES:]], templates)
    company, courses, live_courses, templates = run_transaction(setup)
    context = {'company': company}
    mix = mix or [kind for kind, _ in KINDS]
    students = run_transaction(
        copy_orders, templates, courses, count, mix, context=context)
    print(f"  created {count} orders ({', '.join(mix)}) of {len(students)} "
        "students by SQL copies of checkouts in "
        f"{time.perf_counter() - start:.1f} s", flush=True)

    live = LiveCheckouts(students, live_courses, context, rate)
    if threads and backend.name == 'postgresql':
        live.start(threads)
        time.sleep(10)  # their latency alone first
    elif threads:
        print("  (no live checkouts on SQLite: its in-memory database is "
            "the process's own)")
    counter = None

    def job():
        nonlocal counter
        Order = Pool().get('course.order')
        # The job's own statements, not those of the live checkouts
        with StatementCounter(thread_only=True) as counter:
            return Order._run_expiry(batch_size)
    if profile:
        import cProfile
        profiler = cProfile.Profile()
        job = profiled(profiler, job)
    load = os.getloadavg()[0]
    started_at = time.time()
    start, cpu = time.perf_counter(), time.process_time()
    result = run_transaction(job, context=context)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    ended_at = time.time()
    live.stop()
    if profile:
        import pstats
        pstats.Stats(profiler).sort_stats('cumulative').print_stats(
            'modules|trytond/model|transaction', 40)
        print("  the job's statements taking the most time (PostgreSQL):")
        for query, seconds in counter.seconds.most_common(10):
            print(f"    {seconds:6.2f} s  {query[:100]}")
    print(f"  job: {elapsed:.1f} s ({1000 * elapsed / count:.2f} ms an "
        f"order; its process's CPU {cpu:.1f} s; machine load "
        f"{load:.1f} before, {os.getloadavg()[0]:.1f} after), "
        f"{counter.count} statements, {result.batches} batches of "
        f"{batch_size}, {result.transactions} transactions", flush=True)
    print("  outcomes: " + ', '.join(
            f"{len(ids)} {o}" for o, ids in result.outcomes.items()))
    print(f"  {live.summary(started_at, ended_at)}")
    print("  after: " + run_transaction(
            check_after, templates, context=context), flush=True)


def profiled(profiler, func):
    def wrapper(*args):
        profiler.enable()
        try:
            return func(*args)
        finally:
            profiler.disable()
    return wrapper


def copy_orders(templates, courses, count, kinds):
    """Copy the rows of the template checkouts into count overdue orders
    (student i % S buys course (i // S) % COURSES, of the kinds in turn);
    give each student its points by a grant movement; return the student
    ids"""
    import datetime as dt

    from trytond.modules.course.tools import now
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool()
    Order = pool.get('course.order')
    Line = pool.get('course.order.line')
    Discount = pool.get('course.order.discount')
    DiscountLine = pool.get('course.order.discount-course.order.line')
    Grant = pool.get('course.coupon.grant')
    Credit = pool.get('course.credit.movement')
    Party = pool.get('party.party')
    at = now()
    prefix = f"BENCH{Transaction().context['company']}-"  # unique codes
    rows = {kind: template_rows(order) for kind, order in templates.items()}
    student_count = -(-count // COURSES)
    party = read_rows(Party, 'id', [rows['plain']['order']['party']])[0]
    students = insert_rows(Party, [
            dict(party, name=f"Bench student {i}", code=f"{prefix}{i}",
                create_date=at)
            for i in range(student_count)])
    grant_movement = rows['points']['grant movement']
    insert_rows(Credit, [
            dict(grant_movement, party=s, date=at, create_date=at,
                balance=POINTS * COURSES)
            for s in students])
    balances = dict.fromkeys(students, POINTS * COURSES)
    # Each student has orders of every kind; the batches by id take
    # orders of many students
    plan = [
        (students[i % student_count],
            courses[(i // student_count) % COURSES],
            kinds[(i + i // student_count) % len(kinds)])
        for i in range(count)]
    created = at - dt.timedelta(hours=1)
    deadline = at - dt.timedelta(minutes=30)
    # Numbers of the template's date, above what the sequence gave
    numbers = [
        f"{rows[kind]['order']['number'][:8]}9{i:08d}"
        for i, (_, _, kind) in enumerate(plan)]
    order_ids = insert_rows(Order, [
            dict(rows[kind]['order'], party=student, number=number,
                create_date=created, pay_deadline=deadline)
            for number, (student, _, kind) in zip(numbers, plan)])
    line_ids = insert_rows(Line, [
            dict(rows[kind]['line'], order=order, course=course,
                create_date=created)
            for order, (_, course, kind) in zip(order_ids, plan)])
    # The grants (a tenth of them past their validity: released as
    # expired) and the spend movements the discounts come from
    with_grant = [
        (n, order, student) for n, (order, (student, _, kind)) in enumerate(
            zip(order_ids, plan)) if 'grant' in rows[kind]]
    grant_ids = dict(zip([o for _, o, _ in with_grant], insert_rows(Grant, [
                dict(rows['coupon']['grant'], party=student, order=order,
                    code=f"{prefix}{n}", granted_at=created,
                    create_date=created,
                    valid_to=(deadline if n % 10 == 0
                        else rows['coupon']['grant']['valid_to']))
                for n, order, student in with_grant])))
    spends = []
    for order, (student, _, kind), number in zip(order_ids, plan, numbers):
        if 'spend' in rows[kind]:
            balances[student] -= POINTS
            spends.append((order, dict(rows[kind]['spend'],
                        party=student, order=order, date=created,
                        create_date=created, balance=balances[student],
                        note=rows[kind]['spend']['note'].replace(
                            rows[kind]['order']['number'], number))))
    spend_ids = dict(zip([o for o, _ in spends],
            insert_rows(Credit, [r for _, r in spends])))
    discounts, links = [], []
    for order, line, (_, _, kind) in zip(order_ids, line_ids, plan):
        for discount in rows[kind]['discounts']:
            model = discount['origin'].split(',')[0]
            origin = (grant_ids if model == Grant.__name__ else spend_ids)[
                order]
            discounts.append(dict(discount, order=order,
                    origin=f'{model},{origin}', create_date=created))
            links.append(line)
    link = rows['coupon']['discount line']
    insert_rows(DiscountLine, [
            dict(link, discount=discount, line=line, create_date=created)
            for discount, line in zip(
                insert_rows(Discount, discounts), links)])
    return students


def template_rows(order_id):
    "The rows a checkout wrote for the order (one line)"
    from trytond.pool import Pool
    pool = Pool()
    Grant = pool.get('course.coupon.grant')
    Credit = pool.get('course.credit.movement')
    Discount = pool.get('course.order.discount')
    order, = read_rows(pool.get('course.order'), 'id', [order_id])
    line, = read_rows(pool.get('course.order.line'), 'order', [order_id])
    rows = {
        'order': order, 'line': line,
        'discounts': read_rows(Discount, 'order', [order_id]),
        }
    for grant in read_rows(Grant, 'order', [order_id]):
        rows['grant'] = grant
    for movement in read_rows(Credit, 'party', [order['party']]):
        rows['spend' if movement['order'] else 'grant movement'] = movement
    for link in read_rows(
            pool.get('course.order.discount-course.order.line'), 'discount',
            [d['id'] for d in rows['discounts']]):
        rows['discount line'] = link
    return rows


def read_rows(Model, column, values):
    "The rows of Model's table whose column is in values, as dicts"
    from sql import Column

    from trytond.transaction import Transaction
    if not values:
        return []
    cursor = Transaction().connection.cursor()
    table = Model.__table__()
    cursor.execute(*table.select(
            where=Column(table, column).in_(list(values)),
            order_by=[table.id.asc]))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor]


def insert_rows(Model, rows):
    """Insert rows (dicts of the same columns) into Model's table with new
    ids, by multi-row INSERTs; return the ids in order"""
    from sql import Column
    from sql.aggregate import Max

    from trytond import backend
    from trytond.tools import grouped_slice
    from trytond.transaction import Transaction
    if not rows:
        return []
    transaction = Transaction()
    cursor = transaction.connection.cursor()
    table = Model.__table__()
    ids = transaction.database.nextid(
        transaction.connection, Model._table, count=len(rows))
    if isinstance(ids, int):
        ids = [ids]
    elif ids is None:  # SQLite: the only writer
        cursor.execute(*table.select(Max(table.id)))
        first = (cursor.fetchone()[0] or 0) + 1
        ids = list(range(first, first + len(rows)))
    names = [n for n in rows[0] if n != 'id'] + ['id']
    columns = [Column(table, n) for n in names]
    values = [[r[n] for n in names[:-1]] + [i] for r, i in zip(rows, ids)]
    for chunk in grouped_slice(
            values, backend.MAX_QUERY_PARAMS // len(names)):
        cursor.execute(*table.insert(columns, list(chunk)))
    return ids


def check_after(templates):
    "What the job left: grants still held, refunds, balances"
    from sql.aggregate import Count, Sum

    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool()
    cursor = Transaction().connection.cursor()
    order = pool.get('course.order').__table__()
    grant = pool.get('course.coupon.grant').__table__()
    credit = pool.get('course.credit.movement').__table__()
    cursor.execute(*grant.join(order, condition=grant.order == order.id
            ).select(Count(grant.id), where=(order.state == 'expired')
            & (grant.state == 'reserved')))
    held, = cursor.fetchone()
    cursor.execute(*credit.select(
            Count(credit.id), where=credit.kind == 'refund'))
    refunds, = cursor.fetchone()
    cursor.execute(*credit.select(credit.party, Sum(credit.points),
            group_by=[credit.party],
            having=Sum(credit.points) < 0))
    negative = len(cursor.fetchall())
    cursor.execute(*grant.select(grant.state, Count(grant.id),
            group_by=[grant.state]))
    grants = ', '.join(f"{n} {s}" for s, n in sorted(cursor))
    return (f"{held} grants still reserved by expired orders, grants: "
        f"{grants}; {refunds} point refunds, {negative} negative balances")


class LiveCheckouts:
    """Processes (the server's workers) checking out random students one
    after the other, alternately plain and with 50 points, until stopped;
    each (student, course) once; paced to rate a second in all when rate is
    set.  Processes, not threads: the job's process keeps its CPU as the
    cron's would."""

    def __init__(self, students, courses, context, rate=0):
        import multiprocessing
        pairs = [(s, c) for c in courses for s in students]
        random.Random(14).shuffle(pairs)
        self.pairs = pairs
        self.context = context
        self.mp = multiprocessing.get_context('spawn')
        self.stopping = self.mp.Event()
        self.results = self.mp.Queue()
        self.processes = []
        self.latencies, self.errors = [], []
        self.rate = rate

    def start(self, count):
        readies = []
        for n in range(count):
            ready = self.mp.Event()
            interval = count / self.rate if self.rate else 0
            process = self.mp.Process(target=live_checkouts, args=(
                    ROOT, self.pairs[n::count], self.context, ready,
                    self.stopping, self.results, interval))
            process.start()
            self.processes.append(process)
            readies.append(ready)
        for ready in readies:
            ready.wait()

    def stop(self):
        self.stopping.set()
        for _ in self.processes:
            latencies, errors = self.results.get()
            self.latencies += latencies
            self.errors += errors
        for process in self.processes:
            process.join()

    def summary(self, start, end):
        "The checkouts before the job (from start) and during it (to end)"
        if not self.processes:
            return "no live checkouts"
        lines = []
        for label, inside in [
                ("alone before the job", lambda t: t < start),
                ("beside the job", lambda t: start <= t < end)]:
            ms = sorted(1000 * l for t, l in self.latencies if inside(t))
            failed = Counter(e for t, e in self.errors if inside(t))
            pace = (f", paced to {self.rate:g}/s in all" if self.rate
                else "")
            text = (f"live checkouts ({len(self.processes)} processes"
                f"{pace}) {label}: {len(ms)} done, "
                f"{sum(failed.values())} failed")
            if failed:
                text += ' (' + '; '.join(
                    f"{n} × {e}" for e, n in failed.most_common(2)) + ')'
            if ms:
                p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
                text += (f"; latency ms: median {statistics.median(ms):.0f},"
                    f" p95 {p95:.0f}, max {ms[-1]:.0f}")
            lines.append(text)
        return '\n  '.join(lines)


def live_checkouts(root, pairs, context, ready, stopping, results,
        interval=0):
    """The loop of one live checkout process (see LiveCheckouts): one
    checkout every interval seconds at most (0: one after the other)"""
    sys.path.insert(0, root)
    from trytond.modules.course.tests.tools import run_transaction
    from trytond.pool import Pool
    from trytond.tests.test_tryton import DB_NAME
    Pool(DB_NAME).init()

    def buy(student, course, credit):
        Order = Pool().get('course.order')
        return Order.checkout(student, [{'course': course}], 'manual',
            {'credit': credit} if credit else {}).id
    ready.set()
    latencies, errors = [], []
    began = time.perf_counter()
    for count, (student, course) in enumerate(pairs):
        wait = began + count * interval - time.perf_counter()
        if wait > 0 and stopping.wait(wait):
            break
        if stopping.is_set():
            break
        at, start = time.time(), time.perf_counter()
        try:
            run_transaction(
                buy, student, course, 50 * (count % 2), context=context)
        except Exception as error:
            errors.append((at, f"{type(error).__name__}: "
                    f"{getattr(error, 'message', error)}"[:100]))
        else:
            latencies.append((at, time.perf_counter() - start))
    results.put((latencies, errors))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--postgresql', action='store_true')
    parser.add_argument(
        '--expiry', type=int, default=None, metavar='N',
        help="overdue orders for the expiry job (default 100000 on "
        "PostgreSQL, 2000 on SQLite; 0 skips it)")
    parser.add_argument(
        '--checkouts', type=int, default=3, metavar='PROCESSES',
        help="processes of live checkouts beside the job (PostgreSQL)")
    parser.add_argument(
        '--checkout-rate', type=float, default=0, metavar='PER_SECOND',
        help="pace the live checkouts to this many a second in all "
        "(default 0: each process as fast as it can)")
    parser.add_argument('--batch-size', type=int, default=500)
    parser.add_argument(
        '--skip-hot-paths', action='store_true',
        help="only the expiry job")
    parser.add_argument(
        '--profile', action='store_true',
        help="print where the expiry job spends its time (cProfile)")
    parser.add_argument(
        '--mix', type=lambda v: v.split(','), default=None,
        metavar='KIND,…', help="the kinds of overdue orders, in turn: "
        + ', '.join(repr(k) for k, _ in KINDS) + " (default all)")
    args = parser.parse_args()
    ensure_venv()
    setup_environment(args.postgresql)
    expiry = args.expiry
    if expiry is None:
        expiry = 100000 if args.postgresql else 2000
    if args.mix and not set(args.mix) <= {k for k, _ in KINDS}:
        parser.error(f"--mix: kinds are {[k for k, _ in KINDS]}")
    run(expiry, args.checkouts, args.batch_size, not args.skip_hot_paths,
        args.profile, args.mix, args.checkout_rate)


if __name__ == '__main__':
    main()
