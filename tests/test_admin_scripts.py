"""The admin scripts of scripts/ (grant_coupon, adjust_credit,
export_orders, audit_credit) against the local test database (their main()
in this process, -d) and against a running trytond (their command line in
a subprocess, --url), as a user of Course Administration."""
import contextlib
import datetime as dt
import io
import os
import re
import subprocess
import sys
import tempfile
import unittest
from decimal import Decimal
from unittest.mock import patch

from trytond.modules.course.tests.rpc import PASSWORD, create_users
from trytond.modules.course_storefront.tests.server import ServerTestMixin
from trytond.modules.course_storefront.tests.tools import StorefrontTestMixin
from trytond.pool import Pool
from trytond.transaction import Transaction

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, 'scripts')
sys.path.insert(0, SCRIPTS)

import adjust_credit  # noqa: E402
import admin_common  # noqa: E402
import audit_credit  # noqa: E402
import export_orders  # noqa: E402
import grant_coupon  # noqa: E402

D = Decimal
SCRIPT_TIMEOUT = 300
PROBLEM = re.compile(r'^row (\d+), column (\w+): ', re.M)


# ---- Data, made as root in a committed transaction (local or server) ------

def make_students(prefix):
    """Students of a test: ann (an e-mail contact), bob (a web user), cai
    (a code only), two sharing an e-mail; return {name: (id, code, e-mail)}"""
    pool = Pool()
    Party = pool.get('party.party')
    WebUser = pool.get('web.user')
    students = {}
    for name in ['ann', 'bob', 'cai', 'twin1', 'twin2']:
        email = f'{prefix}-{name}@example.com'
        values = {'name': f'{prefix} {name}', 'code': f'{prefix}-{name}'}
        if name == 'ann':
            values['contact_mechanisms'] = [('create', [
                        {'type': 'email', 'value': email.upper()}])]
        elif name.startswith('twin'):
            email = f'{prefix}-twin@example.com'
            values['contact_mechanisms'] = [('create', [
                        {'type': 'email', 'value': email}])]
        party, = Party.create([values])
        if name == 'bob':
            WebUser.create([{'email': email, 'party': party.id}])
        students[name] = (party.id, values['code'], email)
    return students


def make_coupon(name, limit=1, total=None):
    from trytond.modules.course_coupon.tests.tools import create_coupon
    Company = Pool().get('company.company')
    company = Company(Transaction().context['company'])
    return create_coupon(company, '-30', name=name, per_party_limit=limit,
        total=total).id


def grants_of(coupon):
    "{party id: number of grants} of the coupon"
    Grant = Pool().get('course.coupon.grant')
    counts = {}
    for grant in Grant.search([('coupon', '=', coupon)]):
        counts[grant.party.id] = counts.get(grant.party.id, 0) + 1
    return counts


def ledger_state(party_ids):
    """{party id: (points, wallet)} and the number of adjustments"""
    pool = Pool()
    Party = pool.get('party.party')
    Adjustment = pool.get('course.credit.adjustment')
    return ({p.id: (p.credit_balance, p.wallet_balance)
            for p in Party.browse(party_ids)},
        Adjustment.search([], count=True))


def make_orders(course_ids, party_ids, dates):
    """One unpaid order per (party, date) of course_ids[i], made at dates
    (UTC); the last one cancelled; return their numbers"""
    pool = Pool()
    Order = pool.get('course.order')
    orders = []
    for course, party, date in zip(course_ids, party_ids, dates):
        order = Order.checkout(party, [{'course': course}], 'manual', {})
        orders.append((order, date))
    Order.cancel([orders[-1][0]])
    table = Order.__table__()
    cursor = Transaction().connection.cursor()
    for order, date in orders:
        cursor.execute(*table.update(
                [table.create_date], [date], where=table.id == order.id))
    return [o.number for o, _ in orders]


def orders_by_number(numbers):
    "{number: what the export shows of the order}"
    Order = Pool().get('course.order')
    return {o.number: {
            'code': o.party.code, 'student': o.party.rec_name,
            'total': f'{o.total_amount:.2f}',
            'discount': f'{o.discount_amount:.2f}',
            'payable': f'{o.payable_amount:.2f}', 'title': o.title,
            'currency': o.currency.code,
            } for o in Order.search([('number', 'in', numbers)])}


def corrupt_ledger(party_id):
    """A credit earn no order explains, written in the table; return its
    id"""
    Movement = Pool().get('course.credit.movement')
    table = Movement.__table__()
    cursor = Transaction().connection.cursor()
    cursor.execute(*table.insert(
            [table.party, table.company, table.kind, table.points,
                table.balance, table.date, table.user],
            [[party_id, Transaction().context['company'], 'earn', 500,
                    500, dt.datetime(2030, 1, 1), 0]]))
    return Movement.search([], order=[('id', 'DESC')], limit=1)[0].id


def delete_movement(movement_id):
    Movement = Pool().get('course.credit.movement')
    table = Movement.__table__()
    cursor = Transaction().connection.cursor()
    cursor.execute(*table.delete(where=table.id == movement_id))


def write_csv(folder, name, text):
    path = os.path.join(folder, name)
    with open(path, 'w', encoding='utf-8') as fp:
        fp.write(text)
    return path


class AdminScriptsMixin:
    """The tests, run by a subclass against the local database or the
    server: self.script(name, *args) → (exit code, stdout, stderr) and
    self.data(func, *args) runs func where the script works"""

    def setUp(self):
        super().setUp()
        self.folder = tempfile.mkdtemp(prefix='admin-scripts-')
        self.prefix = self.where + self._testMethodName[4:].replace('_', '')

    def csv(self, name, text):
        return write_csv(self.folder, name, text)

    def problems(self, stderr):
        "{row number: column} of the reported problems"
        return {int(r): c for r, c in PROBLEM.findall(stderr)}

    # ---- grant_coupon -----------------------------------------------------

    def test_grant_good_file(self):
        "A good CSV: each student (e-mail, web user's e-mail, code) granted"
        students = self.data(make_students, self.prefix)
        coupon = self.data(make_coupon, f'{self.prefix} coupon')
        path = self.csv('students.csv', 'Student\n'
            f'{students["ann"][2].title()}\n'  # the e-mail's case differs
            f'{students["bob"][2]}\n'
            f'\n'
            f'{students["cai"][1]}\n')
        code, out, err = self.script(
            'grant_coupon', '--coupon', str(coupon), path)
        self.assertEqual(code, 0, err)
        self.assertIn("to 3 student(s)", out)
        self.assertIn("Granting: 3/3", err)
        self.assertEqual(self.data(grants_of, coupon), {
                students[n][0]: 1 for n in ['ann', 'bob', 'cai']})

    def test_grant_bad_rows(self):
        "Every bad row reported with its column; nothing granted"
        students = self.data(make_students, self.prefix)
        coupon = self.data(make_coupon, f'{self.prefix} coupon', 1)
        path = self.csv('first.csv', f'student\n{students["bob"][1]}\n')
        self.assertEqual(self.script(
                'grant_coupon', '--coupon', str(coupon), path)[0], 0)
        before = self.data(grants_of, coupon)
        path = self.csv('bad.csv', 'student\n'
            f'{students["ann"][1]}\n'           # 2 good
            f'nobody-{self.prefix}@example.com\n'  # 3 unknown e-mail
            f'NO-SUCH-CODE-{self.prefix}\n'     # 4 unknown code
            f'{students["twin1"][2]}\n'         # 5 two students
            f'{students["ann"][2]}\n'           # 6 ann again
            f'{students["bob"][2]}\n'           # 7 at the limit
            f'{students["cai"][1]},extra\n')    # 8 too many fields
        code, out, err = self.script(
            'grant_coupon', '--coupon', str(coupon), path)
        self.assertEqual(code, 1, out + err)
        self.assertEqual(self.problems(err), {
                3: 'student', 4: 'student', 5: 'student', 6: 'student',
                7: 'student'}, err)
        self.assertIn("row 8: more fields", err)
        self.assertIn("already on row 2", err)
        self.assertIn("nothing was changed", err)
        self.assertEqual(self.data(grants_of, coupon), before)
        # --skip-limited leaves bob out instead
        path = self.csv('limited.csv', 'student\n'
            f'{students["ann"][1]}\n{students["bob"][2]}\n')
        code, out, err = self.script('grant_coupon', '--coupon',
            f'{self.prefix} coupon', '--skip-limited', path)
        self.assertEqual(code, 0, err)
        self.assertIn("row 3: left out", out)
        self.assertEqual(self.data(grants_of, coupon), {
                students['bob'][0]: 1, students['ann'][0]: 1})

    def test_grant_unknown_coupon(self):
        "An unknown coupon: exit 2, nothing read further"
        path = self.csv('students.csv', 'student\nx@example.com\n')
        code, _, err = self.script(
            'grant_coupon', '--coupon', 'No such coupon', path)
        self.assertEqual(code, 2)
        self.assertIn("no such coupon", err)

    # ---- adjust_credit ----------------------------------------------------

    def test_adjust_good_file(self):
        "Points and wallet adjusted with the reasons; again: nothing"
        students = self.data(make_students, self.prefix)
        ids = [students[n][0] for n in ['ann', 'bob', 'cai']]
        path = self.csv('bonus.csv', 'student,ledger,kind,value,reason\n'
            f'{students["ann"][2]},credit,grant,100,Welcome\n'
            f'{students["bob"][2]},wallet,topup,50.5,Prize\n'
            f'{students["ann"][1]},credit,,-30,\n'
            f'{students["cai"][1]},wallet,adjust,12.34,Refund by hand\n'
            f'{students["ann"][1]},credit,expire,20,Old points\n')
        _, count = self.data(ledger_state, ids)
        code, out, err = self.script(
            'adjust_credit', '--reason', "Correction", path)
        self.assertEqual(code, 0, err)
        self.assertIn("Recorded 5 adjustment(s)", out)
        self.assertIn("Adjusting: 5/5", err)
        balances, after = self.data(ledger_state, ids)
        self.assertEqual(after, count + 5)
        self.assertEqual(balances, {
                ids[0]: (50, D('0')), ids[1]: (0, D('50.50')),
                ids[2]: (0, D('12.34'))})
        code, out, err = self.script(
            'adjust_credit', '--reason', "Correction", path)
        self.assertEqual(code, 0, err)
        self.assertEqual(out.count("already recorded"), 5, out)
        self.assertEqual(self.data(ledger_state, ids), (balances, after))

    def test_adjust_bad_rows(self):
        "Every bad row reported with its column; nothing recorded"
        students = self.data(make_students, self.prefix)
        ann, bob = students['ann'][1], students['bob'][1]
        ids = [students['ann'][0], students['bob'][0]]
        path = self.csv('bad.csv', 'student,ledger,value,reason,kind\n'
            f'{ann},credit,10,Good,grant\n'       # 2 good
            f'{ann},points,10,Bad ledger,\n'      # 3
            f'{ann},credit,1.5,Half,\n'           # 4
            f'{bob},wallet,0.001,Too fine,\n'     # 5
            f'{bob},wallet,0,Zero,\n'             # 6
            f'{bob},wallet,10,,\n'                # 7 no reason
            f'{bob},wallet,-5,Negative,topup\n'   # 8
            f'{bob},wallet,5,Kind,grant\n'        # 9 not a wallet kind
            f'{ann},credit,11,Too many,expire\n'  # 10 below zero
            f'nobody-{self.prefix},credit,1,x,\n'  # 11 unknown student
            f'{bob},wallet,NaN,Not a number,\n'  # 12
            ',credit,1,No student,\n')            # 13
        before = self.data(ledger_state, ids)
        code, out, err = self.script('adjust_credit', path)
        self.assertEqual(code, 1, out + err)
        self.assertEqual(self.problems(err), {
                3: 'ledger', 4: 'value', 5: 'value', 6: 'value',
                7: 'reason', 8: 'value', 9: 'kind', 10: 'value',
                11: 'student', 12: 'value', 13: 'student'}, err)
        self.assertIn("more than the currency's 2 decimals", err)
        self.assertIn("to -1", err)
        self.assertEqual(self.data(ledger_state, ids), before)

    # ---- export_orders ----------------------------------------------------

    def test_export_period(self):
        "The orders of the days asked (company time zone), oldest first"
        students = self.data(make_students, self.prefix)
        year = 2021 if self.where == 'local' else 2022
        dates = [
            dt.datetime(year, 5, 9, 16, 30),   # 10 May 00:30 in Shanghai
            dt.datetime(year, 5, 10, 12, 0),
            dt.datetime(year, 5, 11, 15, 59),  # 11 May 23:59
            dt.datetime(year, 5, 11, 16, 0),   # 12 May 00:00: out
            dt.datetime(year, 5, 9, 15, 59),   # 9 May 23:59: out
            ]
        parties = [students[n][0] for n in
            ['ann', 'bob', 'cai', 'twin1', 'twin2']]
        numbers = self.data(make_orders, [self.catalog['a'],
                self.catalog['b'], self.catalog['c'], self.catalog['a'],
                self.catalog['b']], parties, dates)
        output = os.path.join(self.folder, 'orders.csv')
        code, out, err = self.script('export_orders', '--from',
            f'{year}-05-10', '--to', f'{year}-05-11', '-o', output)
        self.assertEqual(code, 0, err)
        self.assertIn("3 order(s)", err)
        with open(output, encoding='utf-8') as fp:
            text = fp.read()
        header, *lines = text.splitlines()
        self.assertEqual(header.split(','), export_orders.COLUMNS)
        expected = self.data(orders_by_number, numbers[:3])
        self.assertEqual(
            [line.split(',')[0] for line in lines], numbers[:3])
        for line, number, party, date in zip(
                lines, numbers, parties, dates):
            order = expected[number]
            row = dict(zip(export_orders.COLUMNS, line.split(',')))
            self.assertEqual(row, {
                    'number': number,
                    'date': (date + dt.timedelta(hours=8)).isoformat()
                    + '+08:00',
                    'student_code': order['code'],
                    'student': order['student'],
                    'state': 'unpaid', 'pay_method': 'manual',
                    'currency': order['currency'],
                    'total': order['total'],
                    'discount': order['discount'],
                    'payable': order['payable'], 'paid_at': '',
                    'title': order['title'],
                    })
        # --state and standard output: only the cancelled one
        code, out, err = self.script('export_orders', '--from',
            f'{year}-05-09', '--to', f'{year}-05-12', '--state', 'cancelled')
        self.assertEqual(code, 0, err)
        rows = out.splitlines()[1:]
        self.assertEqual([r.split(',')[0] for r in rows], [numbers[4]])

    # ---- audit_credit -----------------------------------------------------

    def test_audit(self):
        "Exit 0 on a clean ledger, 1 with each disagreement on a corrupt one"
        code, out, err = self.script('audit_credit')
        self.assertEqual(code, 0, out + err)
        self.assertIn("Credit and wallet ledgers agree.", out)
        self.assertIn("Auditing the credit and wallet ledgers", err)
        students = self.data(make_students, self.prefix)
        movement = self.data(corrupt_ledger, students['ann'][0])
        self.addCleanup(self.data, delete_movement, movement)
        code, out, err = self.script('audit_credit')
        self.assertEqual(code, 1, out + err)
        self.assertIn("disagreement(s) in the credit and wallet ledgers",
            out)


def setup_admin_data(cls):
    "The users of create_users; the company in Shanghai's time zone"
    create_users(cls.company_id)
    Company = Pool().get('company.company')
    company = Company(cls.company_id)
    company.timezone = 'Asia/Shanghai'
    company.save()


class AdminScriptsTestCase(AdminScriptsMixin, StorefrontTestMixin,
        unittest.TestCase):
    """The scripts on the committed test database (-d, in this process)
    and on a trytond serving it (--url, command lines); --help"""
    where = 'local'

    @classmethod
    def setup_data(cls):
        super().setup_data()
        setup_admin_data(cls)

    def data(self, func, *args):
        return self.run_transaction(func, *args)

    def script(self, name, *args):
        "main() of the script with -d as manager: (code, stdout, stderr)"
        from trytond.tests.test_tryton import DB_NAME
        module = globals()[name]
        out, err = io.StringIO(), io.StringIO()
        with patch.dict(os.environ), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            code = module.main(['-d', DB_NAME, '-u', 'manager', *args])
        return code, out.getvalue(), err.getvalue()

    def test_help(self):
        "--help of each script: its usage, the two ways to connect"
        for name in ['grant_coupon', 'adjust_credit', 'export_orders',
                'audit_credit']:
            with self.subTest(script=name):
                result = subprocess.run(
                    [sys.executable, os.path.join(SCRIPTS, f'{name}.py'),
                        '--help'], capture_output=True, text=True,
                    timeout=SCRIPT_TIMEOUT)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertIn('usage:', result.stdout)
                self.assertIn('--database', result.stdout)
                self.assertIn('--url', result.stdout)
                self.assertIn('/<db>/rpc/', result.stdout)

    def test_grant_one_transaction(self):
        "On a local database a refused batch undoes the batches before it"
        from trytond.tests.test_tryton import DB_NAME
        students = self.data(make_students, self.prefix)
        coupon_id = self.data(make_coupon, f'{self.prefix} coupon', 1)
        args = admin_common.parser("Test").parse_args(
            ['-d', DB_NAME, '-u', 'manager'])
        ann, bob = students['ann'][0], students['bob'][0]
        with patch.dict(os.environ), \
                patch.object(grant_coupon, 'GRANT_BATCH', 1):
            target = admin_common.connect(args)
            coupon = grant_coupon.find_coupon(target, str(coupon_id))
            with self.assertRaises(Exception) as cm, \
                    contextlib.redirect_stderr(io.StringIO()):
                grant_coupon.grant(
                    target, coupon, [(2, ann), (3, bob), (4, bob)], False)
        self.assertIn("already holds", admin_common.error_text(cm.exception))
        self.assertEqual(self.data(grants_of, coupon_id), {})

    def test_adjust_one_transaction(self):
        "On a local database a failing row undoes the rows before it"
        students = self.data(make_students, self.prefix)
        ann = students['ann'][0]
        from trytond.tests.test_tryton import DB_NAME
        args = admin_common.parser("Test").parse_args(
            ['-d', DB_NAME, '-u', 'manager'])
        before = self.data(ledger_state, [ann])
        with patch.dict(os.environ):
            target = admin_common.connect(args)
            company = target.company()
            entries = [
                {'number': 2, 'party': ann, 'ledger': 'credit',
                    'kind': 'grant', 'value': 10, 'reason': "Given"},
                {'number': 3, 'party': ann, 'ledger': 'credit',
                    'kind': 'expire', 'value': 50, 'reason': "Too many"},
                ]
            with self.assertRaises(Exception) as cm, \
                    contextlib.redirect_stderr(io.StringIO()):
                adjust_credit.apply(target, company, entries)
        self.assertIn(
            "cannot be taken", admin_common.error_text(cm.exception))
        self.assertEqual(self.data(ledger_state, [ann]), before)


class AdminScriptsServerTestCase(AdminScriptsMixin, ServerTestMixin,
        unittest.TestCase):
    "The same over XML-RPC: the command lines with --url"
    where = 'server'

    @classmethod
    def setup_data(cls):
        super().setup_data()
        setup_admin_data(cls)

    def data(self, func, *args):
        return self.on_server(func, *args)

    def url(self, login='manager'):
        return (f'http://{login}:{PASSWORD.format(login)}@127.0.0.1:'
            f'{self.server.port}/{self.server_database}/rpc/')

    def script(self, name, *args, login='manager'):
        "The script's command line with --url as login"
        result = subprocess.run(
            [sys.executable, os.path.join(SCRIPTS, f'{name}.py'),
                '--url', self.url(login), *args],
            capture_output=True, text=True, timeout=SCRIPT_TIMEOUT,
            env=self.server.environ())
        return result.returncode, result.stdout, result.stderr

    def test_refused(self):
        """The server's doors refuse a user without the right: the audit
        and a grant by Course Sales, a wrong password (not shown)"""
        students = self.data(make_students, self.prefix)
        coupon = self.data(make_coupon, f'{self.prefix} coupon')
        code, out, err = self.script('audit_credit', login='sales')
        self.assertEqual(code, 2, out + err)
        self.assertIn('Refused: Only the group "Course Administration"', err)
        path = self.csv('students.csv', f'student\n{students["ann"][1]}\n')
        code, out, err = self.script(
            'grant_coupon', '--coupon', str(coupon), path, login='sales')
        self.assertEqual(code, 1, out + err)
        self.assertIn('Refused: ', err)
        self.assertEqual(self.data(grants_of, coupon), {})
        url = self.url().replace(PASSWORD.format('manager'), 'wrong-pw')
        result = subprocess.run(
            [sys.executable, os.path.join(SCRIPTS, 'audit_credit.py'),
                '--url', url], capture_output=True, text=True,
            timeout=SCRIPT_TIMEOUT, env=self.server.environ())
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("Cannot connect:", result.stderr)
        self.assertIn(":***@", result.stderr)
        self.assertNotIn('wrong-pw', result.stderr)

    def test_grant_batches(self):
        """Over a server each call of grants is a transaction: a refused
        batch grants none of its students, the batches before it stay and
        the script says which rows"""
        students = self.data(make_students, self.prefix)
        coupon_id = self.data(make_coupon, f'{self.prefix} coupon', 1)
        args = grant_coupon.arguments().parse_args(
            ['--url', self.url(), '--coupon', str(coupon_id), 'x.csv'])
        target = admin_common.connect(args)
        coupon = grant_coupon.find_coupon(target, str(coupon_id))
        ann, bob, cai = (students[n][0] for n in ['ann', 'bob', 'cai'])
        # bob twice: the check would refuse it, the server does
        grants = [(2, ann), (3, bob), (4, cai), (5, bob)]
        err = io.StringIO()
        with patch.object(grant_coupon, 'GRANT_BATCH', 2), \
                self.assertRaises(Exception) as cm:
            grant_coupon.grant(target, coupon, grants, False, out=err)
        self.assertIn("already holds", admin_common.error_text(cm.exception))
        self.assertIn("Rows 2 to 3 were granted; the rows from 4 on were "
            "not.", err.getvalue())
        self.assertEqual(self.data(grants_of, coupon_id), {ann: 1, bob: 1})

    def test_adjust_resumed(self):
        """A row refused mid-way over a server: the rows before it stay,
        and the file run again applies only the others"""
        students = self.data(make_students, self.prefix)
        ann = students['ann'][0]
        path = self.csv('resume.csv', 'student,ledger,kind,value,reason\n'
            f'{students["ann"][1]},credit,grant,10,Given\n'
            f'{students["ann"][1]},credit,grant,5,More\n')
        args = adjust_credit.arguments().parse_args(
            ['--url', self.url(), path])
        target = admin_common.connect(args)
        company = target.company()
        problems = admin_common.Problems()
        rows = admin_common.read_csv(
            path, ['student', 'ledger', 'value'], ['reason', 'kind'])
        entries, _ = adjust_credit.validate(
            target, company, rows, args, problems)
        self.assertFalse(problems)
        # The second row meets a refusal the check could not foresee
        entries[1]['value'] = 10 ** 10
        err = io.StringIO()
        with self.assertRaises(Exception), contextlib.redirect_stderr(err):
            adjust_credit.apply(target, company, entries, out=err)
        self.assertIn("Rows 2 were recorded", err.getvalue())
        self.assertEqual(self.data(ledger_state, [ann])[0], {ann: (10, 0)})
        code, out, err = self.script('adjust_credit', path)
        self.assertEqual(code, 0, err)
        self.assertIn("row 2: already recorded", out)
        self.assertIn("Recorded 1 adjustment(s)", out)
        self.assertEqual(self.data(ledger_state, [ann])[0], {ann: (15, 0)})

