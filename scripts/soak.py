#!/usr/bin/env python3
"""Soak the storefront: random traffic while server processes are killed.

    python3 scripts/soak.py                          # 120 s, 2 servers, 4 clients
    python3 scripts/soak.py --duration 1800 --kill-every 10 --clients 6
    python3 scripts/soak.py --stop-redis             # Redis stopped for a while
    python3 scripts/soak.py --restart-postgresql     # PostgreSQL restarted (root)

On a throw-away PostgreSQL database (created, filled, dropped at the end;
``--keep`` keeps it) it starts ``--servers`` trytond processes (default 2)
with the cart in Redis, a fake Alipay gateway (the tests' FakeAlipay) and
``--clients`` client processes that, for ``--duration`` seconds, register
students, fill carts, preview, claim scarce coupons (a small stock, one per
student), order with coupons and points from small balances, pay from the
wallet or by Alipay (signed notifies posted again and out of order), cancel,
sync and list; orders time out after ``--order-timeout`` seconds and the
expiry job runs every few seconds.  Every ``--kill-every`` seconds a server
process is killed with SIGKILL and started again; clients retry on another
server when a connection fails.

At the end it audits the database (the ledgers' and orders' own audits and
the checks below) and exits 1 when something disagrees:

- no coupon granted beyond its stock or its per-student limit, no grant
  used by two live orders, no grant held by a cancelled or expired order;
- no credit or wallet balance below zero;
- no cancelled or expired order paid (paid_at, enrollments, a succeeded
  payment, or money kept by the gateway and not refunded), no order paid
  by two payments;
- every course line of a paid order has exactly one enrollment;
- on every order the lines' amounts add up to the payable amount, which is
  the total less the discounts.

It prints the operations done, the errors by type and the kills survived,
and ends with one JSON line.

The servers use PostgreSQL at $COURSE_TEST_POSTGRESQL (default
postgresql://postgres@127.0.0.1:5432/) and a private redis-server on a free
port when the binary exists (else $COURSE_TEST_REDIS, keys under the
database's prefix, deleted at the end).
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from decimal import Decimal

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(SCRIPTS)
PG_URI = os.environ.get(
    'COURSE_TEST_POSTGRESQL', 'postgresql://postgres@127.0.0.1:5432/')
REDIS_URL = os.environ.get('COURSE_TEST_REDIS', 'redis://127.0.0.1:6379/15')
MODULES = ['course_storefront', 'course_payment_alipay']
PASSWORD = 'soak-password'
# A call is given up after this long without an answer (servers down)
CALL_PATIENCE = 60


def log(message):
    print(message, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


# ---- Clients (separate processes: `soak.py --client <json>`) -------------

class Unreachable(Exception):
    "No server answered in CALL_PATIENCE seconds"


class Client:
    """A storefront client over HTTP that spreads its calls over the
    servers and retries on another one when a connection fails; it counts
    what happened in `counts` ('ok <method>', 'refused <type>', 'connection',
    'http <status>', ...)"""

    def __init__(self, urls, database, counts, token=None):
        self.urls = urls
        self.database = database
        self.counts = counts
        self.token = token
        self.ids = 0

    def post(self, url, path, data, headers):
        request = urllib.request.Request(
            url + path, data=data, headers=headers, method='POST')
        try:
            # Longer than the servers' wait for a database connection (30 s)
            with urllib.request.urlopen(request, timeout=90) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def send(self, path, data, headers):
        """(status, body) from the first server that answers, retrying on
        connection errors"""
        deadline = time.monotonic() + CALL_PATIENCE
        urls = list(self.urls)
        random.shuffle(urls)
        attempt = 0
        while True:
            url = urls[attempt % len(urls)]
            attempt += 1
            try:
                return self.post(url, path, data, headers)
            except (OSError, urllib.error.URLError) as error:
                self.counts['connection ' + type(
                        getattr(error, 'reason', error)).__name__] += 1
                if time.monotonic() > deadline:
                    raise Unreachable(str(error))
                time.sleep(0.1 * min(attempt, 10))

    def call(self, method, params=None):
        "The result, or None when refused (counted by type)"
        self.ids += 1
        body = {'jsonrpc': '2.0', 'method': method, 'id': self.ids}
        if params is not None:
            body['params'] = params
        headers = {'Content-Type': 'application/json'}
        if self.token:
            headers['Authorization'] = f'Bearer {self.token}'
        status, data = self.send(
            f'/{self.database}/storefront', json.dumps(body).encode(),
            headers)
        if status != 200:
            self.counts[f'http {status} {method}'] += 1
            return None
        try:
            answer = json.loads(data)
        except ValueError:
            self.counts[f'not json {method}'] += 1
            return None
        if 'error' in answer:
            error = answer['error']
            type_ = (error.get('data') or {}).get('type') or error.get('code')
            self.counts[f'refused {type_}'] += 1
            if type_ == 'internal':
                self.counts[f'internal {method}'] += 1
            return None
        self.counts[f'ok {method}'] += 1
        return answer['result']

    def notify(self, params):
        "Post an Alipay notify until a server answers it; its text"
        status, data = self.send(
            f'/{self.database}/alipay/notify',
            urllib.parse.urlencode(params).encode(),
            {'Content-Type': 'application/x-www-form-urlencoded'})
        text = data.decode('utf-8', 'replace')
        self.counts[f'notify {status} {text[:20]}'] += 1
        return text


class Student:
    def __init__(self, client):
        self.client = client
        self.orders = []  # numbers of the student's orders


class Traffic:
    "The random traffic of one client process"

    def __init__(self, setup, seed):
        self.setup = setup
        self.random = random.Random(seed)
        random.seed(seed)
        self.counts = Counter()
        self.students = [
            Student(self.new_client(token)) for token in setup['tokens']]
        # Signed notifies kept to post again later (replays, out of order)
        self.notifies = []

    def new_client(self, token=None):
        return Client(
            self.setup['urls'], self.setup['database'], self.counts, token)

    def gateway(self, method, **params):
        "A call to the soak's own methods of the fake gateway"
        data = urllib.parse.urlencode(dict(params, method=method)).encode()
        with urllib.request.urlopen(
                self.setup['gateway'], data=data, timeout=30) as response:
            return json.loads(response.read())

    # ---- operations ---------------------------------------------------

    def op_register(self):
        client = self.new_client()
        result = client.call('auth.register', {
                'email': f'soak-{uuid.uuid4().hex[:16]}@example.com',
                'password': PASSWORD, 'name': "Soak Student"})
        if result:
            client.token = result['token']
            self.students.append(Student(client))

    def op_browse(self, student):
        client = student.client
        courses = client.call('catalog.courses', {})
        if courses and courses['items']:
            client.call('catalog.course', {
                    'id': self.random.choice(courses['items'])['id']})

    def op_cart(self, student):
        client = student.client
        action = self.random.random()
        if action < 0.6:
            client.call('cart.add', {
                    'course': self.random.choice(self.setup['courses'])})
        elif action < 0.8:
            client.call('cart.remove', {
                    'course': self.random.choice(self.setup['courses'])})
        else:
            client.call('cart.get')

    def op_claim(self, student):
        client = student.client
        client.call('coupon.claim', {
                'coupon': self.random.choice(self.setup['coupons'])})

    def options(self, student):
        "Random checkout options: a coupon of the student's, points"
        options = {}
        mine = student.client.call('coupon.mine', {}) or []
        available = [g['grant'] for g in mine if g['state'] == 'available']
        if available and self.random.random() < 0.7:
            options['coupons'] = [self.random.choice(available)]
        if self.random.random() < 0.5:
            options['credit'] = self.random.choice([10, 30, 50, 100])
        return options

    def op_preview(self, student):
        student.client.call('checkout.preview', self.options(student))

    def op_order(self, student):
        client = student.client
        if not (client.call('cart.get') or {}).get('items'):
            client.call('cart.add', {
                    'course': self.random.choice(self.setup['courses'])})
        options = self.options(student)
        if self.random.random() < 0.5:
            preview = client.call('checkout.preview', options)
            if preview:
                options['expect_payable'] = preview['payable']
        options['pay_method'] = self.random.choice(['wallet', 'alipay'])
        order = client.call('order.create', options)
        if order:
            student.orders.append(order['number'])
            if order['state'] == 'unpaid' and self.random.random() < 0.6:
                self.pay_alipay(student, order['number'], order['payable'])

    def pay_alipay(self, student, number, amount):
        """The student opens the page and pays; the notify is posted now,
        later, twice or never (order.sync or the expiry job learn it)"""
        if student.client.call('order.pay', {'number': number}) is None:
            return
        answer = self.gateway('soak.pay', out_trade_no=number, amount=amount)
        if not answer.get('paid'):
            self.counts['gateway refused pay'] += 1
            return
        params = answer['notify']
        fate = self.random.random()
        if fate < 0.6:
            self.deliver(student, params)
        if fate > 0.3:
            self.notifies.append((student, params))

    def deliver(self, student, params):
        "Post a notify; kept to post again unless answered success"
        if student.client.notify(params) != 'success':
            self.notifies.append((student, params))

    def op_notify(self, student):
        "Post a kept notify again, oldest or at random"
        if self.notifies:
            index = self.random.randrange(len(self.notifies))
            owner, params = self.notifies.pop(index)
            self.deliver(owner, params)

    def op_cancel(self, student):
        if student.orders:
            student.client.call('order.cancel', {
                    'number': self.random.choice(student.orders)})

    def op_sync(self, student):
        if student.orders:
            student.client.call('order.sync', {
                    'number': self.random.choice(student.orders)})

    def op_look(self, student):
        client = student.client
        self.random.choice([
                lambda: client.call('account.me'),
                lambda: client.call('order.list', {}),
                lambda: client.call('enrollment.list'),
                lambda: client.call('coupon.claimable'),
                lambda: student.orders and client.call('order.get', {
                        'number': self.random.choice(student.orders)}),
                ])()

    WEIGHTS = {
        'register': 2, 'browse': 4, 'cart': 12, 'claim': 4, 'preview': 6,
        'order': 14, 'notify': 4, 'cancel': 3, 'sync': 2, 'look': 6,
        }

    def run(self, duration):
        names = list(self.WEIGHTS)
        weights = [self.WEIGHTS[n] for n in names]
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            name = self.random.choices(names, weights)[0]
            try:
                if name == 'register':
                    self.op_register()
                elif self.students:
                    getattr(self, 'op_' + name)(
                        self.random.choice(self.students))
                self.counts['operations'] += 1
            except Unreachable:
                self.counts['unreachable'] += 1
            except Exception as error:
                self.counts[f'client error {type(error).__name__}'] += 1
        # The notifies still held are delivered, as Alipay retries them
        for _ in range(5):
            notifies, self.notifies = self.notifies, []
            for owner, params in notifies:
                try:
                    self.deliver(owner, params)
                except Unreachable:
                    self.counts['unreachable'] += 1
            if not self.notifies:
                break
            time.sleep(2)
        self.counts['notifies never answered success'] += len(self.notifies)
        return self.counts


def client_main(setup_json):
    setup = json.loads(setup_json)
    counts = Traffic(setup, setup['seed']).run(setup['duration'])
    print(json.dumps(dict(counts)), flush=True)


# ---- The fake gateway of the soak ------------------------------------------

def soak_gateway():
    """The tests' FakeAlipay with the soak's own method `soak.pay` (the
    buyer pays on the page: refused for a closed trade, as Alipay does;
    answers the signed notify to post)"""
    from trytond.modules.course_payment_alipay.tests.tools import FakeAlipay

    pay_lock = threading.Lock()

    class SoakAlipay(FakeAlipay):
        def handle(self, handler, params):
            if params.get('method') != 'soak.pay':
                return super().handle(handler, params)
            number = params['out_trade_no']
            # Not self.lock: pay() takes it
            with pay_lock:
                trade = self.trades.get(number)
                if trade and trade['trade_status'] != 'WAIT_BUYER_PAY':
                    answer = {'paid': False}
                else:
                    self.pay(number, params['amount'])
                    answer = {'paid': True}
            if answer['paid']:
                answer['notify'] = self.notify(number)
            self.send(handler, json.dumps(answer))

    return SoakAlipay()


# ---- Server processes --------------------------------------------------------

class Servers:
    """The trytond processes of the soak on fixed ports: start, SIGKILL,
    restart (the tests' TrytondServer, a fresh log per start).  What the
    soak needs of a cluster helper: urls, start_all, kill_and_restart,
    stop_all, tails, kills."""

    def __init__(self, database, count, sections, folder):
        from trytond.modules.course_storefront.tests.server import (
            TrytondServer)
        self.servers = [
            TrytondServer(database, sections, folder) for _ in range(count)]
        self.starts = Counter()
        self.kills = 0

    @property
    def urls(self):
        return [s.base_url for s in self.servers]

    def start(self, server):
        self.starts[server.port] += 1
        server.log_path = os.path.join(
            server.folder,
            f'trytond-{server.port}-{self.starts[server.port]}.log')
        server.start()

    def start_all(self):
        threads = [threading.Thread(target=self.start, args=(s,))
            for s in self.servers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for server in self.servers:
            if not server.alive():
                raise RuntimeError(f"server {server.port} did not start")

    def kill(self, server):
        "SIGKILL: no clean-up, its transactions cut"
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        server.process = None
        server.log.close()
        self.kills += 1

    def kill_and_restart(self, rand):
        server = rand.choice(self.servers)
        self.kill(server)
        self.start(server)

    def stop_all(self):
        for server in self.servers:
            server.stop()

    def tails(self):
        return '\n'.join(
            f'--- trytond {s.port} ---\n{s.tail(30)}' for s in self.servers)


# ---- Data ------------------------------------------------------------------

def run_in(database, func, *args, context=None, **kwargs):
    from trytond.modules.course_storefront.tests.server import run_in
    return run_in(database, func, *args, context=context, **kwargs)


def setup_company():
    "Create the company (in a transaction); its id"
    from trytond.modules.company.tests import create_company
    return create_company().id


def setup_data(fake, order_timeout, stock=5):
    """The catalog, the Alipay account on the fake, the scarce coupons and
    the order timeout (in a transaction of the company); return the ids"""
    from trytond.modules.course.tests.tools import create_catalog
    from trytond.modules.course_coupon.tests.tools import create_coupon
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool()
    Account = pool.get('course.payment.alipay.account')
    Company = pool.get('company.company')
    Configuration = pool.get('course.configuration')
    Course = pool.get('course.course')
    company = Company(Transaction().context['company'])
    catalog = create_catalog(company)
    # The gateway shares the soak's process: more time than the default
    Account.create([fake.account_values(company.id, timeout=10)])
    extra = Course.create([{
                'name': name, 'price': Decimal(price), 'credit': credit,
                'direction': catalog.direction.id,
                'category': catalog.category.id, 'company': company.id,
                'published': True,
                } for name, price, credit in [
                ("D", '200', 50), ("E", '120', 50), ("F", '80', 0)]])
    coupons = [
        create_coupon(company, '-30', name="Scarce thirty off",
            issue_mode='claim', total=stock, per_party_limit=1),
        create_coupon(company, '-50', name="Scarce fifty off",
            issue_mode='claim', total=stock, per_party_limit=1),
        create_coupon(company, '-20', name="Twice twenty off",
            issue_mode='claim', total=stock * 2, per_party_limit=2),
        ]
    config = Configuration(1)
    config.order_timeout = order_timeout
    config.save()
    courses = [catalog.course_a, catalog.course_b, catalog.course_c] + extra
    return {
        'courses': [c.id for c in courses],
        'coupons': [c.id for c in coupons],
        }


def give_balances(user_ids, rand):
    "Small points and wallet balances to the students of user_ids"
    from trytond.modules.course_credit.tests.tools import grant, topup
    from trytond.pool import Pool
    WebUser = Pool().get('web.user')
    for user in WebUser.browse(user_ids):
        grant(user.party, rand.choice([30, 60, 100, 150]))
        topup(user.party, rand.choice(['150', '300', '600']))


def register_students(urls, database, count, counts):
    "count students registered over HTTP: [(token, user id)]"
    students = []
    for i in range(count):
        client = Client(urls, database, counts)
        result = client.call('auth.register', {
                'email': f'soak-base-{i}-{uuid.uuid4().hex[:8]}@example.com',
                'password': PASSWORD, 'name': f"Soak Student {i}"})
        if result is None:
            raise RuntimeError(f"could not register a student: {counts}")
        students.append((result['token'], result['user']['id']))
    return students


# ---- Expiry ----------------------------------------------------------------

class ExpiryRunner(threading.Thread):
    "The expiry job every `every` seconds, as trytond-cron would run it"

    def __init__(self, database, company, every, counts):
        super().__init__(daemon=True)
        self.database = database
        self.company = company
        self.every = every
        self.counts = counts
        self.done = threading.Event()

    def run(self):
        from trytond.pool import Pool

        def expire():
            return Pool().get('course.order')._run_expiry()
        while not self.done.wait(self.every):
            try:
                run = run_in(self.database, expire,
                    context={'company': self.company})
                self.counts['expiry runs'] += 1
                self.counts['orders expired'] += len(run.expired)
            except Exception as error:
                self.counts[f'expiry error {type(error).__name__}'] += 1


# ---- Audit -----------------------------------------------------------------

def audit(fake):
    """What disagrees in the database (in a transaction): texts"""
    from sql import Literal, Null
    from sql.aggregate import Count, Sum
    from sql.conditionals import Coalesce

    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool()
    Coupon = pool.get('course.coupon')
    Grant = pool.get('course.coupon.grant')
    Discount = pool.get('course.order.discount')
    Enrollment = pool.get('course.enrollment')
    Line = pool.get('course.order.line')
    Movement = pool.get('course.credit.movement')
    Order = pool.get('course.order')
    Party = pool.get('party.party')
    Payment = pool.get('course.payment')
    cursor = Transaction().connection.cursor()
    problems = []

    def rows(query):
        cursor.execute(*query)
        return list(cursor)

    problems += Movement.audit()
    problems += Order.audit()

    coupon, grant = Coupon.__table__(), Grant.__table__()
    for id_, total, remaining, granted in rows(coupon.join(
                grant, 'LEFT', condition=grant.coupon == coupon.id
                ).select(coupon.id, coupon.total, coupon.remaining,
                Count(grant.id), where=coupon.total > 0,
                group_by=[coupon.id, coupon.total, coupon.remaining])):
        if granted > total or remaining < 0 or granted + remaining != total:
            problems.append(f"coupon {id_}: stock {total}, granted "
                f"{granted}, remaining {remaining}")
    for id_, party, limit, count in rows(grant.join(
                coupon, condition=grant.coupon == coupon.id
                ).select(coupon.id, grant.party, coupon.per_party_limit,
                Count(grant.id),
                where=coupon.per_party_limit > 0,
                group_by=[coupon.id, grant.party, coupon.per_party_limit],
                having=Count(grant.id) > coupon.per_party_limit)):
        problems.append(f"coupon {id_}: {count} grants to party {party}, "
            f"limit {limit}")

    order, discount = Order.__table__(), Discount.__table__()
    live = ~order.state.in_(['cancelled', 'expired'])
    for origin, count in rows(discount.join(
                order, condition=discount.order == order.id
                ).select(discount.origin, Count(discount.id),
                where=discount.origin.like('course.coupon.grant,%') & live,
                group_by=[discount.origin],
                having=Count(discount.id) > 1)):
        problems.append(f"{origin} used by {count} live orders")
    for id_, state, number, order_state in rows(grant.join(
                order, condition=grant.order == order.id
                ).select(grant.id, grant.state, order.number, order.state,
                where=grant.state.in_(['reserved', 'used'])
                & ~live)):
        problems.append(f"grant {id_} {state} by {order_state} order "
            f"{number}")
    for id_, state, number, order_state in rows(grant.join(
                order, condition=grant.order == order.id
                ).select(grant.id, grant.state, order.number, order.state,
                where=((grant.state == 'used')
                    & (order.state == 'unpaid'))
                | ((grant.state == 'reserved') & (order.state != 'unpaid')))):
        problems.append(f"grant {id_} {state} by {order_state} order "
            f"{number}")

    for party in Party.search([]):
        if (party.credit_balance or 0) < 0 or (party.wallet_balance or 0) < 0:
            problems.append(f"party {party.id}: credit {party.credit_balance}"
                f" wallet {party.wallet_balance}")

    line, enrollment = Line.__table__(), Enrollment.__table__()
    payment = Payment.__table__()
    for number, state in rows(order.select(order.number, order.state,
                where=~live & (order.paid_at != Null))):
        problems.append(f"order {number} {state} has a payment date")
    for number, state, count in rows(order.join(
                line, condition=line.order == order.id
                ).join(enrollment, condition=enrollment.order_line == line.id
                ).select(order.number, order.state, Count(enrollment.id),
                where=~live, group_by=[order.number, order.state])):
        problems.append(f"order {number} {state} has {count} enrollments")
    for number, state, count in rows(payment.join(
                order, condition=payment.order == order.id
                ).select(order.number, order.state, Count(payment.id),
                where=payment.state == 'succeeded',
                group_by=[order.number, order.state])):
        if count > 1 or state in {'cancelled', 'expired'}:
            problems.append(
                f"order {number} {state} has {count} succeeded payments")
    states = dict(rows(order.select(order.number, order.state)))
    for number, trade in list(fake.trades.items()):
        if trade.get('trade_status') != 'TRADE_SUCCESS':
            continue
        refunded = sum(trade['refunds'].values(), Decimal(0))
        if (states.get(number) in {'cancelled', 'expired'}
                and refunded != Decimal(trade['total_amount'])):
            problems.append(f"order {number} {states[number]}: the gateway "
                f"kept {trade['total_amount']} (refunded {refunded})")
        elif states.get(number) == 'unpaid':
            problems.append(f"order {number} unpaid though paid on the "
                "gateway and notified")

    for number, line_id, count in rows(order.join(
                line, condition=line.order == order.id
                ).join(enrollment, 'LEFT',
                condition=enrollment.order_line == line.id
                ).select(order.number, line.id, Count(enrollment.id),
                where=(order.state == 'paid') & (line.course != Null)
                & (line.extended_enrollment == Null),
                group_by=[order.number, line.id],
                having=Count(enrollment.id) != 1)):
        problems.append(
            f"order {number} line {line_id}: {count} enrollments")

    line_sums = line.select(line.order, Sum(line.amount).as_('amount'),
        group_by=[line.order])
    discount_sums = discount.select(discount.order,
        Sum(discount.amount).as_('amount'), group_by=[discount.order])
    for number, payable, total, discounted, lines, discounts in rows(
            order.join(line_sums, 'LEFT',
                condition=line_sums.order == order.id
                ).join(discount_sums, 'LEFT',
                condition=discount_sums.order == order.id
                ).select(order.number, order.payable_amount,
                order.total_amount, order.discount_amount,
                Coalesce(line_sums.amount, 0),
                Coalesce(discount_sums.amount, 0),
                where=Literal(True))):
        if (Decimal(lines) != payable or total - discounted != payable
                or abs(Decimal(discounts)) != discounted):
            problems.append(f"order {number}: lines {lines}, payable "
                f"{payable}, total {total}, discount {discounted}, "
                f"discounts {discounts}")
    return problems


def figures():
    "How many orders of each state, grants, enrollments, payments"
    from trytond.pool import Pool
    pool = Pool()
    result = {}
    for model, field in [('course.order', 'state'),
            ('course.coupon.grant', 'state'), ('course.payment', 'state')]:
        Model = pool.get(model)
        for state in {getattr(r, field) for r in Model.search([])}:
            result[f'{model} {state}'] = Model.search_count(
                [(field, '=', state)])
    result['course.enrollment'] = pool.get('course.enrollment').search_count(
        [])
    return result


# ---- The soak ----------------------------------------------------------------

class Options:
    "The soak's settings (command line or test)"
    duration = 120
    kill_every = 8.0
    servers = 2
    clients = 4
    students = 6  # per client, with balances
    order_timeout = 20
    expiry_every = 3.0
    stock = 5
    seed = None
    stop_redis = False
    restart_postgresql = False
    pg_down = 6.0  # seconds PostgreSQL stays down
    postgresql = None  # the PostgreSQLCluster to restart
    redis_server = None

    def __init__(self, **values):
        for key, value in values.items():
            if not hasattr(self, key):
                raise TypeError(key)
            setattr(self, key, value)


def run_soak(database, company, fake, options, redis_url, folder):
    """Start the servers and the clients, kill servers while they run, the
    expiry job beside; return the counts (a Counter)"""
    seed = options.seed if options.seed is not None else random.randrange(
        1 << 30)
    rand = random.Random(seed)
    counts = Counter({'seed': seed})
    sections = {
        'course': {
            'redis': redis_url,
            'storefront_attempts_ip': '100000000',
            'storefront_attempts_email': '100000000',
            },
        }
    servers = Servers(database, options.servers, sections, folder)
    expiry = ExpiryRunner(database, company, options.expiry_every, counts)
    clients = []
    try:
        started = time.monotonic()
        servers.start_all()
        log(f"{options.servers} servers up in "
            f"{time.monotonic() - started:.1f}s: {' '.join(servers.urls)}")
        students = register_students(servers.urls, database,
            options.students * options.clients, counts)
        run_in(database, give_balances, [u for _, u in students],
            rand, context={'company': company})
        log(f"{len(students)} students registered, with balances, at "
            f"{time.monotonic() - started:.1f}s")
        started = time.monotonic()
        expiry.start()
        for i in range(options.clients):
            setup = {
                'urls': servers.urls, 'database': database,
                'gateway': fake.url, 'duration': options.duration,
                'seed': seed + i + 1,
                'courses': options.data['courses'],
                'coupons': options.data['coupons'],
                'tokens': [t for t, _ in
                    students[i::options.clients]],
                }
            clients.append(subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), '--client',
                    json.dumps(setup)],
                stdout=subprocess.PIPE, text=True))
        log(f"{options.clients} clients for {options.duration}s, "
            f"a server killed every {options.kill_every}s (seed {seed})")
        faults = Faults(options, counts)
        deadline = time.monotonic() + options.duration
        next_kill = time.monotonic() + options.kill_every
        while time.monotonic() < deadline:
            time.sleep(0.2)
            faults.tick(time.monotonic() - started, servers)
            if (options.kill_every and time.monotonic() >= next_kill
                    and not faults.postgresql_down):
                servers.kill_and_restart(rand)
                log(f"  kill {servers.kills} at "
                    f"{time.monotonic() - started:.0f}s, restarted")
                next_kill = time.monotonic() + options.kill_every
        faults.end(servers)
        for process in clients:
            out, _ = process.communicate(timeout=CALL_PATIENCE * 3)
            try:
                counts.update(json.loads(out.strip().splitlines()[-1]))
            except (ValueError, IndexError):
                counts['client process failed'] += 1
        counts['kills'] = servers.kills
    finally:
        expiry.done.set()
        for process in clients:
            if process.poll() is None:
                process.kill()
        if expiry.is_alive():
            expiry.join(60)
        if counts.get('client process failed') or any(
                k.startswith(('http 5', 'internal')) for k in counts):
            log(servers.tails())
        servers.stop_all()
    return counts


class Faults:
    """Redis stopped from 20 % to 45 % of the soak (--stop-redis), the
    soak's PostgreSQL stopped at 55 % for `pg_down` seconds then started
    again (--restart-postgresql); each checked by a probe student"""

    def __init__(self, options, counts):
        self.options = options
        self.counts = counts
        self.redis = options.redis_server if options.stop_redis else None
        self.postgresql = options.postgresql if options.restart_postgresql \
            else None
        self.redis_state = self.pg_state = 'before'
        self.pg_stopped = None
        self.probe_token = None

    @property
    def postgresql_down(self):
        "No server is killed meanwhile (it could not start)"
        return self.pg_state == 'down'

    def tick(self, elapsed, servers):
        share = elapsed / self.options.duration
        if self.redis and self.redis_state == 'before' and share > 0.2:
            self.probe_student(servers)
            self.redis.stop()
            log(f"  Redis stopped at {elapsed:.0f}s")
            self.redis_state = 'down'
            self.check_redis_down(servers)
        elif self.redis and self.redis_state == 'down' and share > 0.45:
            self.redis.start()
            log(f"  Redis started again at {elapsed:.0f}s")
            self.redis_state = 'up'
            self.check_redis_up(servers)
        if (self.postgresql and self.pg_state == 'before'
                and share > 0.55):
            self.probe_student(servers)
            self.postgresql.stop()
            log(f"  PostgreSQL stopped at {elapsed:.0f}s")
            self.pg_state = 'down'
            self.pg_stopped = time.monotonic()
            self.check_postgresql_down(servers)
        elif (self.pg_state == 'down' and time.monotonic()
                > self.pg_stopped + self.options.pg_down):
            self.postgresql.start()
            log(f"  PostgreSQL started again at {elapsed:.0f}s")
            self.pg_state = 'up'
            self.check_postgresql_up(servers)

    def probe_student(self, servers):
        "A student registered while everything runs, for the probes"
        if self.probe_token:
            return
        client = Client(servers.urls, servers.servers[0].database, Counter())
        result = client.call('auth.register', {
                'email': f'soak-probe-{uuid.uuid4().hex[:8]}@example.com',
                'password': PASSWORD, 'name': "Probe"})
        self.probe_token = result and result['token']

    def probe(self, servers, *methods):
        """The raw answers of the probe student's calls, made at once:
        [(status, answer)]"""
        answers = [None] * len(methods)

        def call(i, method):
            body = json.dumps({'jsonrpc': '2.0', 'method': method,
                    'id': 1}).encode()
            headers = {'Content-Type': 'application/json',
                'Authorization': f'Bearer {self.probe_token}'}
            client = Client(servers.urls, servers.servers[0].database,
                Counter())
            try:
                status, data = client.send(
                    f'/{client.database}/storefront', body, headers)
            except Unreachable as error:
                answers[i] = (None, str(error))
                return
            try:
                answer = json.loads(data)
            except ValueError:
                answer = data[:200].decode('utf-8', 'replace')
            answers[i] = (status, answer)
        threads = [threading.Thread(target=call, args=(i, m))
            for i, m in enumerate(methods)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return answers

    @staticmethod
    def error_type(answer):
        if isinstance(answer, dict) and 'error' in answer:
            return (answer['error'].get('data') or {}).get('type')

    def record(self, what, ok, answers):
        key = f'{what}: ' + ('ok' if ok else 'unexpected ' + json.dumps(
                answers, default=str)[:300])
        self.counts[key] += 1
        log(f"  {key}")

    def check_redis_down(self, servers):
        answers = self.probe(servers, 'cart.get', 'account.me')
        (s1, cart), (s2, me) = answers
        self.record('redis down, cart unavailable and the rest works',
            s1 == s2 == 200 and self.error_type(cart) == 'cart.unavailable'
            and isinstance(me, dict) and 'result' in me, answers)

    def check_redis_up(self, servers):
        answers = self.probe(servers, 'cart.get')
        (status, cart), = answers
        self.record('redis back, carts work',
            status == 200 and isinstance(cart, dict) and 'result' in cart,
            answers)

    def check_postgresql_down(self, servers):
        answers = self.probe(servers, 'catalog.directions', 'account.me',
            'cart.get')
        self.record('postgresql down, calls answer a JSON-RPC error',
            all(status == 200 and self.error_type(answer)
                for status, answer in answers), answers)

    def check_postgresql_up(self, servers):
        "Within 30 s of the start every probe call succeeds"
        deadline = time.monotonic() + 30
        while True:
            answers = self.probe(servers, 'catalog.directions', 'account.me',
                'cart.get')
            ok = all(status == 200 and isinstance(answer, dict)
                and 'result' in answer for status, answer in answers)
            if ok or time.monotonic() > deadline:
                break
            self.counts['postgresql back, probe retried'] += 1
            time.sleep(1)
        self.record('postgresql back, calls succeed', ok, answers)

    def end(self, servers):
        "Whatever is still down started again, and checked"
        if self.redis and self.redis_state == 'down':
            self.redis.start()
            self.redis_state = 'up'
            self.check_redis_up(servers)
        if self.pg_state == 'down':
            self.postgresql.start()
            log("  PostgreSQL started again at the end")
            self.pg_state = 'up'
            self.check_postgresql_up(servers)
        for fault, state in [(self.redis, self.redis_state),
                (self.postgresql, self.pg_state)]:
            if fault and state != 'up':
                self.counts[f'{type(fault).__name__} fault: unexpected, '
                    'the soak was too short to make it'] += 1


class PostgreSQLCluster:
    """A private PostgreSQL cluster on a free port (initdb, pg_ctl as the
    user postgres: needs root), so a restart disturbs nobody else"""

    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix='soak-pg-')
        self.data = os.path.join(self.folder, 'data')
        self.port = free_port()

    @staticmethod
    def unavailable():
        "Why a private cluster cannot be made here (None: it can)"
        import pwd
        if os.geteuid() != 0:
            return "not run as root"
        for program in ['initdb', 'pg_ctl', 'runuser']:
            if not shutil.which(program):
                return f"no {program}"
        try:
            pwd.getpwnam('postgres')
        except KeyError:
            return "no user postgres"

    @property
    def uri(self):
        return f'postgresql://postgres@127.0.0.1:{self.port}/'

    def run(self, *args):
        subprocess.run(['runuser', '-u', 'postgres', '--', *args],
            check=True, stdout=subprocess.DEVNULL, cwd=self.folder)

    def init(self):
        import pwd
        user = pwd.getpwnam('postgres')
        os.chown(self.folder, user.pw_uid, user.pw_gid)
        self.run('initdb', '-D', self.data, '-A', 'trust', '-U', 'postgres',
            '--no-sync', '-E', 'UTF8')
        self.start()
        return self

    def start(self):
        self.run('pg_ctl', '-D', self.data, '-w', '-l',
            os.path.join(self.folder, 'postgresql.log'), '-o',
            f'-p {self.port} -k {self.folder} '
            '-c listen_addresses=127.0.0.1 -c fsync=off', 'start')

    def stop(self):
        self.run('pg_ctl', '-D', self.data, '-w', '-m', 'fast', 'stop')

    def destroy(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


class RedisServer:
    "A private redis-server on a free port (stopped and started at will)"

    def __init__(self, folder):
        self.folder = folder
        self.port = free_port()
        self.process = None

    @staticmethod
    def available():
        return shutil.which('redis-server') is not None

    @property
    def url(self):
        return f'redis://127.0.0.1:{self.port}/0'

    def start(self):
        self.process = subprocess.Popen(
            ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1',
                '--save', '', '--appendonly', 'no', '--dir', self.folder],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return self
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


def report(counts, problems, elapsed):
    "Print the figures; the JSON summary"
    operations = counts.get('operations', 0)
    ok = sum(v for k, v in counts.items() if k.startswith('ok '))
    refused = {k[8:]: v for k, v in counts.items()
        if k.startswith('refused ')}
    errors = {k: v for k, v in counts.items() if k.startswith((
                'connection', 'http ', 'internal', 'not json', 'unreachable',
                'client', 'expiry error', 'notify 5', 'notifies never'))}
    others = sorted(k for k in counts if k.startswith((
                'notify 200', 'expiry runs', 'orders expired', 'redis',
                'gateway', 'postgresql', 'course.')))
    log(f"\nOperations: {operations} in {elapsed:.0f}s, "
        f"{ok} calls answered with a result")
    for key in sorted(k for k in counts if k.startswith('ok ')):
        log(f"  {key[3:]:<22} {counts[key]}")
    log("Refusals by type (business answers):")
    for key, value in sorted(refused.items(), key=lambda kv: -kv[1]):
        log(f"  {key:<28} {value}")
    log("Errors by type:")
    for key, value in sorted(errors.items()) or [('none', 0)]:
        log(f"  {key:<40} {value}")
    log("Notifies, expiry, faults and what the database holds:")
    for key in others:
        log(f"  {key:<40} {counts[key]}")
    log(f"Kills survived: {counts.get('kills', 0)}")
    if problems:
        log(f"AUDIT FAILED: {len(problems)} problem(s)")
        for problem in problems:
            log(f"  {problem}")
    else:
        log("Audit: everything agrees.")
    summary = {
        'seconds': round(elapsed), 'operations': operations, 'ok': ok,
        'kills': counts.get('kills', 0), 'refused': refused,
        'errors': errors, 'problems': len(problems),
        'seed': counts.get('seed'),
        }
    print(json.dumps(summary), flush=True)
    return summary


# ---- Standalone: a throw-away database ---------------------------------------

def create_database(uri, database, folder):
    "Create and fill the database with trytond-admin (the venv's)"
    import psycopg
    with psycopg.connect(uri.rstrip('/') + '/postgres',
            autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    conf = os.path.join(folder, 'admin.conf')
    with open(conf, 'w') as fp:
        fp.write(f'[database]\nuri = {uri}\n')
    passfile = os.path.join(folder, 'admin-pass')
    with open(passfile, 'w') as fp:
        fp.write('admin-soak\n')
    admin = os.path.join(os.path.dirname(sys.executable), 'trytond-admin')
    env = dict(os.environ, TRYTONPASSFILE=passfile)
    for key in ['TRYTOND_DATABASE_URI', 'TRYTOND_DATABASE__URI',
            'TRYTOND_CONFIG']:
        env.pop(key, None)
    for args in [['--all', '--email', 'admin@example.com'],
            ['-u', *MODULES, '--activate-dependencies']]:
        subprocess.run([sys.executable, admin, '-c', conf, '-d', database,
                *args], check=True, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT)


def drop_database(uri, database):
    import psycopg
    with psycopg.connect(uri.rstrip('/') + '/postgres',
            autocommit=True) as conn:
        conn.execute(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
            'WHERE datname = %s', (database,))
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')


def soak(database, options, folder, company=None):
    """The whole soak on database (filled with MODULES): data, traffic,
    audit; return (counts, problems, summary)"""
    redis_server = None
    fake = soak_gateway().start()
    redis_url = None
    try:
        if RedisServer.available():
            redis_server = RedisServer(folder).start()
            redis_url = redis_server.url
        elif options.stop_redis:
            log("--stop-redis skipped: no redis-server binary")
            options.stop_redis = False
        if redis_url is None:
            redis_url = REDIS_URL
        options.redis_server = redis_server
        if company is None:
            company = run_in(database, setup_company)
        options.data = run_in(database, setup_data, fake,
            options.order_timeout, options.stock,
            context={'company': company})
        started = time.monotonic()
        counts = run_soak(
            database, company, fake, options, redis_url, folder)
        elapsed = time.monotonic() - started
        problems = run_in(database, audit, fake,
            context={'company': company})
        # A fault that did not behave as it should fails the soak too
        problems += [k for k in counts if ': unexpected' in k]
        counts.update(run_in(database, figures,
                context={'company': company}))
        summary = report(counts, problems, elapsed)
        return counts, problems, summary
    finally:
        fake.stop()
        if redis_server:
            redis_server.stop()
        elif redis_url:
            clear_redis(redis_url, database)


def clear_redis(url, database):
    "Delete the soak database's keys (not the shared Redis database)"
    import redis
    server = redis.Redis.from_url(url)
    keys = list(server.scan_iter(match=f'course:{database}:*', count=1000))
    if keys:
        server.delete(*keys)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument('--duration', type=float, default=Options.duration,
        help="seconds of traffic (default %(default)s)")
    parser.add_argument('--kill-every', type=float,
        default=Options.kill_every,
        help="seconds between two SIGKILLs of a server, 0: none "
        "(default %(default)s)")
    parser.add_argument('--servers', type=int, default=Options.servers)
    parser.add_argument('--clients', type=int, default=Options.clients)
    parser.add_argument('--students', type=int, default=Options.students,
        help="students with balances per client (default %(default)s)")
    parser.add_argument('--order-timeout', type=int,
        default=Options.order_timeout,
        help="seconds an order waits for its payment (default "
        "%(default)s)")
    parser.add_argument('--stock', type=int, default=Options.stock,
        help="stock of the scarce coupons (default %(default)s)")
    parser.add_argument('--seed', type=int)
    parser.add_argument('--stop-redis', action='store_true',
        help="stop the soak's private redis-server for the middle third")
    parser.add_argument('--restart-postgresql', action='store_true',
        help="restart PostgreSQL during the soak (root only)")
    parser.add_argument('--pg-down', type=float, default=Options.pg_down,
        help="seconds PostgreSQL stays stopped (default %(default)s)")
    parser.add_argument('--keep', action='store_true',
        help="keep the database and the servers' logs")
    parser.add_argument('--client', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main():
    args = parse_args()
    if args.client:
        return client_main(args.client)
    sys.path.insert(0, SCRIPTS)
    from bootstrap import ensure_venv
    ensure_venv()
    sys.path.insert(0, ROOT)
    options = Options(**{k: getattr(args, k) for k in [
                'duration', 'kill_every', 'servers', 'clients', 'students',
                'order_timeout', 'stock', 'seed', 'stop_redis',
                'restart_postgresql', 'pg_down']})
    uri = PG_URI
    if args.restart_postgresql:
        if reason := PostgreSQLCluster.unavailable():
            log(f"--restart-postgresql skipped: {reason}")
            options.restart_postgresql = False
        else:
            options.postgresql = PostgreSQLCluster().init()
            uri = options.postgresql.uri
            log(f"A private PostgreSQL for the restart at {uri}")
    from trytond import config
    config.set('database', 'uri', uri)
    config.set('database', 'retry', '20')
    database = f'soak_{os.getpid()}_{int(time.time())}'
    folder = tempfile.mkdtemp(prefix='soak-')
    log(f"Creating {database} on {uri} (trytond-admin, about a minute)")
    try:
        create_database(uri, database, folder)
        return soak_database(database, options, folder, args.keep, uri)
    finally:
        if options.postgresql and not args.keep:
            options.postgresql.destroy()
        elif options.postgresql:
            log(f"The private PostgreSQL keeps running at {uri}: stop it "
                f"with runuser -u postgres -- pg_ctl -D "
                f"{options.postgresql.data} stop")


def soak_database(database, options, folder, keep, uri):
    from trytond.pool import Pool
    Pool(database).init()
    try:
        _, problems, _ = soak(database, options, folder)
    finally:
        from trytond.cache import Cache
        Cache.drop(database)
        Pool.stop(database)
        from trytond import backend
        backend.Database(database).close()
        if keep:
            log(f"Kept the database {database} and the logs in {folder}")
        else:
            drop_database(uri, database)
            shutil.rmtree(folder, ignore_errors=True)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
