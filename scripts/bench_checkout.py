#!/usr/bin/env python3
"""The storefront checkout over HTTP, from several client processes, against
real trytond processes on PostgreSQL and Redis.

    python3 scripts/bench_checkout.py                    # 1 process, 4 clients
    python3 scripts/bench_checkout.py --processes 2 -c 4 -k 25
    python3 scripts/bench_checkout.py --duration 60      # 60 s per client
    python3 scripts/bench_checkout.py --peer --rounds 2  # peer, ours, peer, ours
    python3 scripts/bench_checkout.py -k 0 --grants 1000 --lines 20  # preview only

It builds a throw-away PostgreSQL database (courses, an amount-off coupon,
the Alipay account of a fake gateway), starts --processes trytond processes
(scripts/bench_server.py: trytond counting each request's SQL statements and
transactions) with the cart in Redis, and registers one student per client
over HTTP; each student gets a coupon grant and 100 points per order it
will place.  Then -c client processes (client i calls process i mod N, as a
load balancer would) place -k orders each, or as many as they can in
--duration seconds:

    cart.add × 3, checkout.preview (a coupon and 100 points),
    order.create (the same, expect_payable), order.pay (the gateway's page),
    the gateway's signed notify POSTed to /<db>/alipay/notify

It prints orders/s, the latency p50/p95/p99 of each call and of the whole
order as the clients see it, and per call what the server counted: SQL
statements, attempts (transactions started: 1 when the call runs once, one
more per restart to take a lock first or retry of a lock held by another)
and lookups (the read-only transaction the notify runs first to find the
rows to lock).  With --peer it runs Tryton's own sale flow
(/work/shared/bench/peer/peer_run.sh, as it is) before each round of ours
and prints the ratio of orders/s.  Then checkout.preview of a student with
--grants coupon grants (three scopes) and --lines cart lines, timed --repeat
times on an idle server.  The last line is a JSON summary.  The database
and the Redis keys are removed at the end (unless --keep).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bootstrap import ROOT, ensure_venv  # noqa: E402

PG_URI = os.environ.get(
    'COURSE_TEST_POSTGRESQL', 'postgresql://postgres@127.0.0.1:5432/')
REDIS_URL = os.environ.get('COURSE_TEST_REDIS', 'redis://127.0.0.1:6379/15')
PEER = os.environ.get(
    'COURSE_PEER_BENCH', '/work/shared/bench/peer/peer_run.sh')
HERE = os.path.dirname(os.path.abspath(__file__))
COURSE_PRICE = '100'
COURSES_PER_ORDER = 3
POINTS_PER_ORDER = 100
COUPON = '-30'
STEPS = ['cart.add', 'checkout.preview', 'order.create', 'order.pay',
    'alipay.notify']


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('-c', '--clients', type=int, default=4)
    parser.add_argument('-k', '--orders', type=int, default=25,
        help="orders per client (default 25; 0: no checkout run)")
    parser.add_argument('--duration', type=float, default=0,
        help="seconds the clients place orders (instead of -k)")
    parser.add_argument('--max-orders', type=int, default=150,
        help="orders a client can place at most with --duration")
    parser.add_argument('--processes', default='1',
        help="trytond server processes; a list (1,2) runs each in turn in "
        "every round")
    parser.add_argument('--peer', action='store_true',
        help="run the peer's sale flow before each round")
    parser.add_argument('--rounds', type=int, default=None,
        help="rounds of the checkout run (default 2 with --peer, else 1)")
    parser.add_argument('--grants', type=int, default=1000,
        help="coupon grants of the preview student (0: no preview run)")
    parser.add_argument('--lines', type=int, default=20,
        help="cart lines of the preview student")
    parser.add_argument('--repeat', type=int, default=30,
        help="checkout.preview calls of the preview student")
    parser.add_argument('--keep', action='store_true',
        help="keep the database, the Redis keys and the server logs")
    args = parser.parse_args()
    if args.rounds is None:
        args.rounds = 2 if args.peer else 1
    args.processes = [int(n) for n in args.processes.split(',')]
    return args


def setup_environment():
    os.environ['TRYTOND_DATABASE_URI'] = PG_URI
    os.environ['DB_NAME'] = f'bench_checkout_{os.getpid()}'
    os.environ.pop('DB_CACHE', None)
    sys.path.insert(0, ROOT)


def percentile(values, p):
    "The p-th percentile (nearest rank) of values, None when empty"
    if not values:
        return None
    values = sorted(values)
    rank = max(0, min(len(values) - 1, round(p / 100 * len(values) + .5) - 1))
    return values[rank]


def ms(value):
    return None if value is None else round(value, 1)


# ---- The database ------------------------------------------------------------

def create_data(course_count, fake):
    """The company, courses, the coupon and the Alipay account; return
    {company, courses, coupon, scoped coupons}"""
    from decimal import Decimal

    from trytond.modules.company.tests import create_company
    from trytond.modules.course.tests.tools import create_catalog
    from trytond.modules.course_coupon.tests.tools import create_coupon
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool()
    Account = pool.get('course.payment.alipay.account')
    Configuration = pool.get('course.configuration')
    Course = pool.get('course.course')
    company = create_company()
    with Transaction().set_context(company=company.id):
        cat = create_catalog(company)
        configuration = Configuration(1)
        # A coupon and points on one order
        configuration.discounts_combinable = True
        configuration.save()
        courses = Course.create([{
                    'name': f"Course {i}", 'price': Decimal(COURSE_PRICE),
                    'credit': POINTS_PER_ORDER, 'direction': cat.direction.id,
                    'category': cat.category.id, 'company': company.id,
                    'published': True,
                    } for i in range(course_count)])
        coupon = create_coupon(company, COUPON, name="Thirty off")
        # The preview student's grants: the whole order, some courses, a
        # direction
        scoped = [
            create_coupon(company, '-10', name="Ten off"),
            create_coupon(company, '*0.9', name="Ten percent", scope='course',
                courses=courses[-10:]),
            create_coupon(company, '-5', name="Five off Python",
                scope='direction', directions=[cat.direction]),
            ]
        Account.create([fake.account_values(company.id)])
    return {
        'company': company.id, 'courses': [c.id for c in courses],
        'coupon': coupon.id, 'scoped': [c.id for c in scoped],
        }


def give(party_ids, coupon_ids, per_coupon, points):
    """Issue per_coupon grants of each coupon and points to each party"""
    from trytond.modules.course_coupon.grant import MAX_ISSUE
    from trytond.modules.course_credit.tests.tools import grant
    from trytond.pool import Pool
    pool = Pool()
    Coupon = pool.get('course.coupon')
    Grant = pool.get('course.coupon.grant')
    Party = pool.get('party.party')
    parties = Party.browse(party_ids)
    for coupon in Coupon.browse(coupon_ids):
        chunk = max(1, MAX_ISSUE // max(1, len(parties)))
        left = per_coupon
        while left > 0:
            Grant.issue([coupon] * min(chunk, left), parties)
            left -= chunk
    for party in parties:
        if points:
            grant(party, points, reason="bench")


# ---- The servers -------------------------------------------------------------

def start_servers(count, database, calls_folder, folder):
    """count trytond processes (bench_server.py) on database, cart in Redis"""
    from trytond.modules.course_storefront.tests import server as tools
    os.environ['BENCH_CHECKOUT_CALLS'] = calls_folder
    # TrytondServer runs `python <script> -c … -d …`: ours counts
    tools.trytond_script = lambda: os.path.join(HERE, 'bench_server.py')
    sections = {
        'database': {'uri': PG_URI, 'retry': '20'},
        'cache': {'clean_timeout': '0'},
        'course': {
            'redis': REDIS_URL,
            'storefront_attempts_ip': '1000000',
            'storefront_attempts_email': '1000000',
            },
        }
    servers = []
    try:
        for _ in range(count):
            servers.append(
                tools.TrytondServer(database, sections, folder).start())
    except Exception:
        for server in servers:
            server.stop()
        raise
    return servers


def read_calls(folder, start, end):
    "The server records of requests answered between start and end"
    records = []
    for name in os.listdir(folder):
        if not name.endswith('.jsonl'):
            continue
        with open(os.path.join(folder, name)) as fp:
            for line in fp:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line being written
                if start <= record['t'] <= end:
                    records.append(record)
    return records


def record_name(record):
    if record['method']:
        return record['method']
    if record['path'].endswith('/alipay/notify'):
        return 'alipay.notify'
    return record['path']


# ---- The clients -------------------------------------------------------------

def register(server, count):
    "count new students registered over HTTP: [(token, user id)]"
    students = []
    for _ in range(count):
        client = server.client()
        result = client.register(
            f'bench-{uuid.uuid4().hex[:12]}@example.com', name="Bench")
        students.append((client.token, result['user']['id']))
    return students


def party_ids(user_ids):
    from trytond.pool import Pool
    User = Pool().get('web.user')
    return [u.party.id for u in User.browse(user_ids)]


def place_orders(index, server, token, courses, orders, duration, fake,
        ready, start_event, queue):
    """One client process: an order to warm up, then at the start orders
    of courses[3i:3i+3] until orders or the deadline; puts its timings and
    errors on queue"""
    from trytond.modules.course_storefront.tests.tools import StorefrontError
    client = server.client()
    client.token = token
    grants = [g['grant'] for g in client.call('coupon.mine', {})
        if g['state'] == 'available']
    database = server.database
    # The gateway's trade numbers are unique across the client processes
    fake._count = (index + 1) * 10 ** 12 + int(time.time() * 1000) * 100
    steps = {name: [] for name in STEPS}
    totals, errors, examples = [], {}, {}

    def timed(name, func, *args):
        started = time.perf_counter()
        result = func(*args)
        steps[name].append((time.perf_counter() - started) * 1000)
        return result

    def order(basket, grant):
        "Place and pay one order of basket; its milliseconds"
        started = time.perf_counter()
        for course in basket:
            timed('cart.add', client.call, 'cart.add', {'course': course})
        params = {'coupons': [grant], 'credit': POINTS_PER_ORDER}
        preview = timed(
            'checkout.preview', client.call, 'checkout.preview', params)
        order = timed('order.create', client.call, 'order.create', dict(
                params, pay_method='alipay',
                expect_payable=preview['payable']))
        timed('order.pay', client.call, 'order.pay',
            {'number': order['number']})
        fake.pay(order['number'], order['payable'])
        status, text = timed('alipay.notify', server.post_form,
            f'/{database}/alipay/notify', fake.notify(order['number']))
        if (status, text) != (200, 'success'):
            raise RuntimeError(f"notify answered {status} {text}")
        return (time.perf_counter() - started) * 1000

    def baskets():
        for i in range(0, len(courses) - COURSES_PER_ORDER + 1,
                COURSES_PER_ORDER):
            yield courses[i:i + COURSES_PER_ORDER]
    baskets = baskets()
    # Warm the server process's caches with an order not counted
    try:
        order(next(baskets), grants.pop())
    except Exception as error:
        errors['warm-up'] = 1
        examples['warm-up'] = str(error)[:300]
        orders = 0
    for name in steps:
        steps[name].clear()
    ready.put(index)
    start_event.wait()
    deadline = time.time() + duration if duration else None
    done = 0
    for basket in baskets:
        if done >= orders or not grants or (
                deadline and time.time() >= deadline):
            break
        done += 1
        try:
            totals.append(order(basket, grants.pop()))
        except Exception as error:
            name = (error.type if isinstance(error, StorefrontError)
                else type(error).__name__)
            errors[name] = errors.get(name, 0) + 1
            examples.setdefault(name, str(error)[:300])
    queue.put({'index': index, 'steps': steps, 'orders': totals,
            'errors': errors, 'examples': examples, 'end': time.time()})


def run_round(args, servers, data, fake, calls_folder):
    """One run of the clients calling every process of servers; return
    its summary"""
    import multiprocessing

    from trytond.modules.course.tests.tools import run_transaction
    context = {'company': data['company']}
    students = register(servers[0], args.clients)
    # One more: the warm-up order
    per_student = (args.max_orders if args.duration else args.orders) + 1
    parties = run_transaction(
        party_ids, [user for _, user in students], context=context)
    run_transaction(give, parties, [data['coupon']], per_student,
        POINTS_PER_ORDER * per_student, context=context)

    mp = multiprocessing.get_context('fork')
    ready, start_event, queue = mp.Queue(), mp.Event(), mp.Queue()
    processes = []
    for i, (token, _) in enumerate(students):
        processes.append(mp.Process(target=place_orders, args=(
                    i, servers[i % len(servers)], token, data['courses'],
                    per_student - 1, args.duration, fake, ready, start_event,
                    queue)))
    for process in processes:
        process.start()
    for _ in processes:
        ready.get()  # each has placed its warm-up order
    start = time.time()
    start_event.set()
    results = [queue.get() for _ in processes]
    end = max(r['end'] for r in results)
    for process in processes:
        process.join()
    time.sleep(0.2)  # the servers' last lines
    return summarize(args, len(servers), results,
        read_calls(calls_folder, start, end), end - start)


def summarize(args, processes, results, records, wall):
    orders = sorted(t for r in results for t in r['orders'])
    errors, examples = {}, {}
    for result in results:
        for name, n in result['errors'].items():
            errors[name] = errors.get(name, 0) + n
        examples.update(result['examples'])
    by_step = {}
    for name in STEPS:
        values = [t for r in results for t in r['steps'][name]]
        server = [c for c in records if record_name(c) == name]
        statements = [c['statements'] for c in server]
        attempts = [c['attempts'] for c in server]
        restarts = {}
        for call in server:
            for table in call.get('restarts', []):
                restarts[table] = restarts.get(table, 0) + 1
        by_step[name] = {
            'calls': len(values),
            'p50': ms(percentile(values, 50)),
            'p95': ms(percentile(values, 95)),
            'p99': ms(percentile(values, 99)),
            'server_ms_p50': ms(percentile([c['ms'] for c in server], 50)),
            'statements': round(statistics.mean(statements), 1)
            if statements else None,
            'statements_max': max(statements, default=None),
            'attempts': round(statistics.mean(attempts), 2)
            if attempts else None,
            'attempts_max': max(attempts, default=None),
            'lookups': round(statistics.mean(
                    c.get('lookups', 0) for c in server), 2)
            if server else None,
            'busy': sum(c.get('busy', 0) for c in server),
            'restarts': restarts,
            }
    return {
        'clients': args.clients, 'processes': processes,
        'orders': len(orders), 'errors': errors, 'error_examples': examples,
        'wall_s': round(wall, 2),
        'orders_per_s': round(len(orders) / wall, 2) if wall else None,
        'order_ms': {'p50': ms(percentile(orders, 50)),
            'p95': ms(percentile(orders, 95)),
            'p99': ms(percentile(orders, 99))},
        'calls': by_step,
        }


def print_round(summary):
    print(f"\nours: {summary['orders']} orders in {summary['wall_s']} s = "
        f"{summary['orders_per_s']} orders/s ({summary['clients']} clients, "
        f"{summary['processes']} server processes), errors "
        f"{summary['errors'] or 'none'}")
    for name, text in summary['error_examples'].items():
        print(f"  {name}: {text}")
    order = summary['order_ms']
    print(f"  per order (5 calls + 3 cart.add): p50 {order['p50']} ms, "
        f"p95 {order['p95']} ms, p99 {order['p99']} ms")
    print(f"  {'call':<18}{'calls':>6}{'p50':>8}{'p95':>8}{'p99':>8}"
        f"{'server p50':>11}{'SQL':>7}{'SQL max':>8}{'attempts':>9}"
        f"{'max':>5}{'lookups':>8}{'busy':>6}")
    for name, step in summary['calls'].items():
        print(f"  {name:<18}{step['calls']:>6}{fmt(step['p50']):>8}"
            f"{fmt(step['p95']):>8}{fmt(step['p99']):>8}"
            f"{fmt(step['server_ms_p50']):>11}{fmt(step['statements']):>7}"
            f"{fmt(step['statements_max']):>8}{fmt(step['attempts']):>9}"
            f"{fmt(step['attempts_max']):>5}{fmt(step['lookups']):>8}"
            f"{step['busy']:>6}")
    restarts = {name: step['restarts'] for name, step in
        summary['calls'].items() if step['restarts']}
    if restarts:
        print(f"  restarts to take a lock first, by table: {restarts}")
    sys.stdout.flush()


def fmt(value):
    return '-' if value is None else str(value)


# ---- The peer ----------------------------------------------------------------

def run_peer(args):
    "The peer's summary (its last line), None when it failed"
    command = ['bash', PEER, '--postgresql', '-c', str(args.clients),
        '-k', '25']
    print(f"\npeer: {' '.join(command)}", flush=True)
    process = subprocess.run(command, capture_output=True, text=True)
    lines = process.stdout.strip().splitlines()
    try:
        summary = json.loads(lines[-1])
    except (IndexError, ValueError):
        print(f"  the peer failed (exit {process.returncode}):\n"
            + process.stderr[-2000:], flush=True)
        return None
    print(f"  peer: {summary.get('orders_per_s')} orders/s, latency "
        f"{summary.get('latency_ms')}, ok {summary.get('ok')}", flush=True)
    return summary


# ---- checkout.preview with many grants -----------------------------------------

def run_preview(args, servers, data, calls_folder):
    from trytond.modules.course.tests.tools import run_transaction
    context = {'company': data['company']}
    (token, user), = register(servers[0], 1)
    party, = run_transaction(party_ids, [user], context=context)
    per_coupon = -(-args.grants // len(data['scoped']))
    run_transaction(give, [party], data['scoped'], per_coupon,
        10 * POINTS_PER_ORDER, context=context)
    client = servers[0].client()
    client.token = token
    # The last courses: the course coupon's ones
    for course in data['courses'][-args.lines:]:
        client.call('cart.add', {'course': course})
    # coupon.mine answers a page: a grant of the first coupon is enough
    grant = client.call('coupon.mine', {})[0]['grant']
    params = {'coupons': [grant], 'credit': POINTS_PER_ORDER}
    client.call('checkout.preview', params)  # warm the caches
    times = []
    start = time.time()
    for _ in range(args.repeat):
        started = time.perf_counter()
        preview = client.call('checkout.preview', params)
        times.append((time.perf_counter() - started) * 1000)
    time.sleep(0.2)
    records = [r for r in read_calls(calls_folder, start, time.time())
        if r['method'] == 'checkout.preview']
    summary = {
        'grants': per_coupon * len(data['scoped']),
        'lines': len(preview['lines']),
        'usable_coupons': len(preview['usable_coupons']),
        'p50': ms(percentile(times, 50)), 'p95': ms(percentile(times, 95)),
        'server_ms_p50': ms(percentile([r['ms'] for r in records], 50)),
        'statements': max((r['statements'] for r in records), default=None),
        'attempts': max((r['attempts'] for r in records), default=None),
        }
    print(f"\ncheckout.preview, {summary['grants']} grants in the wallet, "
        f"{summary['lines']} lines ({summary['usable_coupons']} usable "
        f"coupons listed), {args.repeat} calls: p50 {summary['p50']} ms, "
        f"p95 {summary['p95']} ms (server p50 {summary['server_ms_p50']} ms), "
        f"{summary['statements']} statements, {summary['attempts']} attempt(s)"
        " (target < 50 ms)", flush=True)
    return summary


# ---- main --------------------------------------------------------------------

def machine():
    model = ''
    try:
        with open('/proc/cpuinfo') as fp:
            for line in fp:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return {'nproc': os.cpu_count(), 'cpu': model}


def main():
    args = parse_args()
    ensure_venv()
    setup_environment()
    import shutil

    from trytond.modules.course.tests.tools import run_transaction
    from trytond.modules.course_payment_alipay.tests.tools import FakeAlipay
    from trytond.modules.course_storefront.tests.tools import clear_redis
    from trytond.tests.test_tryton import DB_NAME, activate_module, drop_db

    print(f"machine: {machine()}", flush=True)
    started = time.perf_counter()
    activate_module(['course_storefront', 'course_payment_alipay'])
    fake = FakeAlipay().start()
    per_student = (args.max_orders if args.duration else args.orders) + 1
    course_count = max(COURSES_PER_ORDER * per_student, args.lines)
    folder = tempfile.mkdtemp(prefix='bench-checkout-')
    calls_folder = os.path.join(folder, 'calls')
    os.makedirs(calls_folder)
    servers = []
    try:
        data = run_transaction(create_data, course_count, fake)
        servers = start_servers(
            max(args.processes), DB_NAME, calls_folder, folder)
        print(f"database {DB_NAME}, {course_count} courses, "
            f"{max(args.processes)} trytond process(es) ready in "
            f"{time.perf_counter() - started:.0f} s", flush=True)
        rounds, peers = [], []
        if args.orders or args.duration:
            for _ in range(args.rounds):
                if args.peer:
                    peers.append(run_peer(args))
                for processes in args.processes:
                    summary = run_round(
                        args, servers[:processes], data, fake, calls_folder)
                    print_round(summary)
                    rounds.append(summary)
        preview = None
        if args.grants:
            preview = run_preview(args, servers, data, calls_folder)
        result = {'machine': machine(), 'rounds': rounds,
            'preview': preview}
        per_round = len(args.processes)
        if args.peer:
            ratios = []
            for i, peer in enumerate(peers):
                for ours in rounds[i * per_round:(i + 1) * per_round]:
                    if peer and peer.get('orders_per_s') and (
                            ours['orders_per_s']):
                        ratios.append((ours['processes'], round(
                                    ours['orders_per_s']
                                    / peer['orders_per_s'], 2)))
            result['peer'] = [p and {k: p.get(k) for k in [
                        'orders_per_s', 'latency_ms', 'ok']} for p in peers]
            result['peer_ratio'] = ratios
            print("\nours / peer orders/s: " + (', '.join(
                        f'{r}× ({n} process{"es" if n > 1 else ""})'
                        for n, r in ratios) or 'n/a') + " (target ≥ 10×)",
                flush=True)
        if per_round > 1 and rounds:
            base = args.processes[0]
            scaling = []
            for i in range(0, len(rounds), per_round):
                first = rounds[i]['orders_per_s']
                for ours in rounds[i + 1:i + per_round]:
                    if first:
                        scaling.append((ours['processes'], round(
                                    ours['orders_per_s'] / first, 2)))
            result['process_ratio'] = scaling
            print(f"orders/s against {base} process(es): " + ', '.join(
                    f'{n} processes {r}×' for n, r in scaling)
                + " (target for 2: ≥ 1.6×)", flush=True)
        print(json.dumps(result), flush=True)
    finally:
        for server in servers:
            server.stop()
        fake.stop()
        if not args.keep:
            clear_redis(REDIS_URL)
            drop_db()
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"kept: database {DB_NAME}, {folder}", flush=True)


if __name__ == '__main__':
    main()
