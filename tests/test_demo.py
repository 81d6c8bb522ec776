"""The README's command 1, `python3 scripts/demo.py`, really runs.

Builds the SQLite demo in a temporary state folder (`--var`), serves it on a
free port, reads the web client page and the courses over XML-RPC with a
login the demo prints, stops it with SIGINT, then updates it again with
`--no-server`.  The web client is reused from the project's var/sao (or
installed there once).  SQLite pass only: the demo is SQLite.
"""
import html
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from tests.demo_server import (
    DATABASE, READY_TIMEOUT, ROOT, STOP_TIMEOUT, DemoServer, alive,
    demo_env, free_port, group_alive, sqlite_only)


@sqlite_only
class DemoTestCase(unittest.TestCase):
    "The demo builds, serves sao and RPC, stops cleanly and updates"

    def setUp(self):
        self.var = tempfile.mkdtemp(prefix='course-demo-')
        self.addCleanup(shutil.rmtree, self.var, ignore_errors=True)
        self.demo = DemoServer(self.var)

    def count(self, table):
        path = os.path.join(self.var, 'demo', f'{DATABASE}.sqlite')
        conn = sqlite3.connect(f'file:{path}?mode=ro', uri=True)
        try:
            return conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
        finally:
            conn.close()

    def test_demo(self):
        "Build, serve, read over HTTP and XML-RPC, stop, update"
        from proteus import Model
        from proteus.config import XmlrpcConfig

        port = free_port()
        start = time.monotonic()
        self.addCleanup(self.demo.cleanup)
        proc = self.demo.start(port)
        lines, ready = self.demo.lines, self.demo.ready
        self.assertTrue(ready.wait(READY_TIMEOUT), "demo not ready in time")
        output = ''.join(lines)
        self.assertIsNone(proc.poll(), output)
        self.assertIn(f'http://localhost:{port}/', output)
        self.assertIn(DATABASE, output)
        built = time.monotonic() - start

        # The web client
        with urllib.request.urlopen(f'http://localhost:{port}/') as response:
            self.assertEqual(response.status, 200)
            page = response.read().decode()
        self.assertIn('<html', page.lower())
        self.assertIn('tryton', page.lower())

        # A printed staff login over XML-RPC (proteus); the config object is
        # used directly so the global proteus configuration of this process
        # is left alone
        logins = self.demo.logins
        self.assertIn('admin', logins)
        self.assertIn('manager', logins)
        self.assertIn('sales', logins)
        config = XmlrpcConfig(
            f'http://manager:{logins["manager"]}@localhost:{port}/'
            f'{DATABASE}/rpc/')
        Course = Model.get('course.course', config=config)
        courses = Course.find([])
        self.assertGreaterEqual(len(courses), 12)
        self.assertTrue(all(c.currency.code == 'CNY' for c in courses))
        Activity = Model.get('course.activity', config=config)
        self.assertIn('running', [a.state for a in Activity.find([])])
        self.assertEqual(config.context['language'], 'zh_CN')
        self.chinese()

        self.audit()
        self.storefront(port)
        self.degree(port)
        self.pay_with_alipay(port)
        self.pay_with_wechat()

        # SIGINT stops the demo, trytond, trytond-cron and its workers, and
        # the fake Alipay and WeChat Pay gateways
        pids = self.demo.pids
        self.assertEqual(set(pids), {
                'trytond', 'trytond-cron', 'fake-alipay', 'fake-wechat'},
            output)
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(STOP_TIMEOUT), 0, ''.join(lines))
        for name, pid in pids.items():
            self.assertFalse(alive(pid), f"{name} still runs")
            self.assertFalse(group_alive(pid), f"a child of {name} runs")

        # Second run: an update, without duplicating the demo data
        counts = {t: self.count(t) for t in [
                'course_course', 'course_course_option', 'course_enrollment',
                'course_activity', 'res_user', 'party_party', 'course_order',
                'course_coupon', 'course_coupon_grant',
                'course_credit_movement', 'course_wallet_movement',
                'course_payment', 'course_payment_refund',
                'course_payment_refund_request',
                'course_payment_alipay_account',
                'course_payment_wechat_account', 'web_user',
                'course_degree', 'course_degree_enrollment',
                'course_degree_submission', 'course_degree_form']}
        self.assertEqual(counts['course_coupon'], 5)  # seed 001's fixtures
        self.assertGreater(counts['course_coupon_grant'], 20)
        update = self.demo.run('--no-server', timeout=READY_TIMEOUT)
        self.assertEqual(update.returncode, 0, update.stdout)
        self.assertIn('Updating the database', update.stdout)
        self.assertIn('--all', update.stdout)
        self.assertEqual(
            {t: self.count(t) for t in counts}, counts, update.stdout)
        self.assertEqual(counts['course_payment_alipay_account'], 1)
        self.assertEqual(counts['course_payment_wechat_account'], 1)
        self.assertEqual(counts['course_payment_refund_request'], 1)
        self.assertEqual(counts['web_user'], 1)  # the storefront student
        self.assertEqual(counts['course_degree'], 1)
        self.assertEqual(counts['course_degree_enrollment'], 3)
        print(f"\ndemo built and served in {built:.0f}s, "
            f"whole test {time.monotonic() - start:.0f}s", file=sys.stderr)

    def audit(self):
        """The README's audit of the fresh demo, as manager over the
        server: every enrollment comes from its workflow, so all agrees
        (exit 0) and the demo's gift is listed for review"""
        audit = subprocess.run(
            [sys.executable, os.path.join(ROOT, 'scripts', 'audit_credit.py'),
                '--url', self.demo.rpc_url('manager')],
            env=demo_env(), capture_output=True, text=True, timeout=120)
        self.assertEqual(audit.returncode, 0, audit.stdout + audit.stderr)
        self.assertIn("Credit and wallet ledgers agree.", audit.stdout)
        self.assertIn("Orders and enrollments agree.", audit.stdout)
        self.assertIn("1 gift(s) to review", audit.stdout)

    def chinese(self):
        """zh_CN is loaded (the preferences offer it), the school and its
        staff speak it, and the texts the modules stored for the school's
        orders are Chinese"""
        from proteus import Model
        from proteus.config import XmlrpcConfig
        config = XmlrpcConfig(self.demo.rpc_url('admin'))
        Lang = Model.get('ir.lang', config=config)
        self.assertIn('zh_CN', [l.code for l in Lang.find([
                        ('translatable', '=', True)])])
        User = Model.get('res.user', config=config)
        self.assertEqual(
            {u.login: u.language.code for u in User.find([
                        ('login', 'in', ['admin', 'manager', 'sales'])])},
            dict.fromkeys(['admin', 'manager', 'sales'], 'zh_CN'))
        Line = Model.get('course.order.line', config=config)
        names = {l.discount_name for l in Line.find([])}
        self.assertIn("原价购买", names)
        self.assertNotIn("Regular price", names)
        Discount = Model.get('course.order.discount', config=config)
        self.assertIn("150 积分抵扣", [d.description for d in Discount.find([
                        ('kind', '=', 'credit')])])

    def storefront(self, port):
        """The demo student printed by the demo logs in to the Storefront
        API over HTTP and reads his account and the catalog"""
        from trytond.modules.course_storefront.tests.tools import (
            StorefrontClient)
        students = self.demo.students
        self.assertEqual(
            students, {'zhang.wei@example.com': 'student-demo'},
            self.demo.output)
        self.assertIn(
            f'POST http://localhost:{port}/{DATABASE}/storefront',
            self.demo.output)
        client = StorefrontClient(
            DATABASE, base_url=f'http://localhost:{port}')
        courses = client.call('catalog.courses', {'size': 50})
        self.assertGreaterEqual(courses['total'], 10)
        self.assertEqual(len(courses['items']), courses['total'])
        self.assertTrue(all(
                re.fullmatch(r'\d+\.\d\d', c['sale_price'])
                for c in courses['items']))
        email, password = next(iter(students.items()))
        login = client.call(
            'auth.login', {'email': email, 'password': password})
        self.assertEqual(login['user']['email'], email)
        client.token = login['token']
        me = client.call('account.me')
        self.assertEqual(me['name'], "张伟")
        # The welcome points, and those his degree program (9800.00, paid)
        # earned at the demo's earn rate of one half
        self.assertEqual(me['credit_balance'], 500 + 9800 // 2)
        self.assertEqual(me['wallet_balance'], '2000.00')
        self.assertTrue(client.call('coupon.mine', {'state': 'available'}))
        # The demo loads the Chinese translations: a refusal in zh_CN
        chinese = StorefrontClient(
            DATABASE, base_url=f'http://localhost:{port}', language='zh_CN')
        answer = chinese.raw('auth.login', {
                'email': email, 'password': 'not-the-password'})
        self.assertEqual(answer['error']['data']['type'], 'auth.invalid')
        self.assertRegex(answer['error']['message'], '[\u4e00-\u9fff]')

    def degree(self, port):
        """The degree program of the demo: 3 modules with homework, the
        mentor (who logs in), a student at each stage; the storefront
        student sees his paid program, its form still to submit"""
        from proteus import Model
        from proteus.config import XmlrpcConfig

        from trytond.modules.course_storefront.tests.tools import (
            StorefrontClient)
        logins = self.demo.logins
        self.assertEqual(logins.get('mentor'), 'mentor-demo')
        config = XmlrpcConfig(self.demo.rpc_url('admin'))
        Degree = Model.get('course.degree', config=config)
        degree, = Degree.find([('name', '=', "Python 全栈开发学位课")])
        self.assertTrue(degree.published)
        self.assertEqual(len(degree.modules), 3)
        self.assertTrue(all(m.homeworks for m in degree.modules))
        User = Model.get('res.user', config=config)
        mentor, = User.find([('login', '=', 'mentor')])
        ModelData = Model.get('ir.model.data', config=config)
        self.assertIn(
            ModelData.get_id('course_degree', 'group_mentor', config.context),
            [g.id for g in mentor.groups])
        Enrollment = Model.get('course.degree.enrollment', config=config)
        stages = {e.party.name: e for e in Enrollment.find([
                    ('degree', '=', degree.id)])}
        self.assertEqual(
            {n: (e.state, bool(e.form_submitted)) for n, e in stages.items()},
            {"张伟": ('not_started', False), "王芳": ('studying', True),
                "李娜": ('graduated', True)})
        self.assertEqual(stages["王芳"].mentor, mentor)
        self.assertEqual(stages["李娜"].mentor, mentor)
        Submission = Model.get('course.degree.submission', config=config)
        studying = Submission.find([('enrollment', '=', stages["王芳"].id)])
        self.assertEqual(
            sorted((s.state, s.score) for s in studying),
            [('passed', 'B+'), ('to_grade', None)])
        late, = [s for s in studying if s.state == 'to_grade']
        self.assertGreater(late.submitted.date(), late.due)
        self.assertEqual(
            {s.state for s in Submission.find([
                        ('enrollment', '=', stages["李娜"].id)])},
            {'passed'})
        # The mentor ledger: the fee of both students less the penalty of
        # the homework handed in late; the graduate's fee matured
        self.assertEqual(late.reward_state, 'late')
        Configuration = Model.get('course.degree.configuration', config=config)
        penalty = Configuration(1).late_submission_penalty
        Ledger = Model.get('course.mentor.ledger', config=config)
        ledger, = Ledger.find([('mentor', '=', mentor.id)])
        self.assertEqual(ledger.balance, 2 * degree.mentor_fee - penalty)
        self.assertEqual(ledger.matured, degree.mentor_fee)
        Followup = Model.get('course.degree.followup', config=config)
        followup, = Followup.find([('enrollment', '=', stages["王芳"].id)])
        self.assertEqual(followup.mentor, mentor)
        # The mentor logs in and reads the homework to grade
        mentor_config = XmlrpcConfig(self.demo.rpc_url('mentor'))
        ToGrade = Model.get('course.degree.submission', config=mentor_config)
        self.assertIn(late.id, [s.id for s in ToGrade.find([
                        ('state', '=', 'to_grade')])])

        client = StorefrontClient(
            DATABASE, base_url=f'http://localhost:{port}')
        programs = client.call('degree.programs')
        self.assertEqual([p['name'] for p in programs],
            ["Python 全栈开发学位课"])
        email, password = next(iter(self.demo.students.items()))
        client.token = client.call('auth.login', {
                'email': email, 'password': password})['token']
        mine, = client.call('degree.mine')
        self.assertEqual((mine['state'], mine['form_submitted']),
            ('not_started', False))
        self.assertEqual(
            {r['state'] for r in mine['records']}, {'locked'})

    def pay_with_alipay(self, port):
        """The demo's unpaid Alipay order, paid on the fake gateway's
        cashier page as a newcomer would: the order is paid and enrolled,
        the browser lands on the storefront page"""
        from proteus import Model
        from proteus.config import XmlrpcConfig

        config = XmlrpcConfig(self.demo.rpc_url('admin'))
        Order = Model.get('course.order', config=config)
        Refund = Model.get('course.payment.refund', config=config)
        fake = f'http://127.0.0.1:{self.demo.alipay_port}'

        # The paid order, partly refunded through the fake
        refund, = Refund.find([('order.pay_method', '=', 'alipay')])
        self.assertEqual(refund.state, 'succeeded')
        self.assertFalse(refund.full)
        self.assertEqual(refund.order.state, 'paid')

        links = self.demo.alipay_links
        self.assertEqual(len(links), 1, self.demo.output)
        (number, link), = links.items()
        order, = Order.find([('number', '=', number)])
        self.assertEqual(
            (order.state, order.pay_method), ('unpaid', 'alipay'))
        self.assertTrue(link.startswith(fake + '/pay/'), link)

        # The page-pay URL (course.payment.start) shows the cashier page
        with urllib.request.urlopen(link, timeout=30) as response:
            self.assertTrue(
                response.url.startswith(fake + '/gateway.do?'), response.url)
            self.assertIn('method=alipay.trade.page.pay', response.url)
            page = response.read().decode()
        self.assertIn(number, page)
        self.assertIn(f'{order.payable_amount:.2f}', page)
        self.assertIn('value="pay"', page)
        self.assertIn('value="cancel"', page)
        request = html.unescape(
            re.search(r'name="request" value="([^"]*)"', page).group(1))

        # "Pay": notify to trytond, then the browser back through the
        # return route to the storefront page (the fake's /thanks)
        data = urllib.parse.urlencode(
            {'request': request, 'action': 'pay'}).encode()
        with urllib.request.urlopen(
                f'{fake}/cashier', data, timeout=60) as response:
            landed = urllib.parse.urlsplit(response.url)
            page = response.read().decode()
        self.assertEqual(
            f'{landed.scheme}://{landed.netloc}{landed.path}',
            f'{fake}/thanks')
        self.assertEqual(dict(urllib.parse.parse_qsl(landed.query)),
            {'order': number, 'state': 'paid'})
        self.assertIn('paid', page)

        order.reload()
        self.assertEqual(order.state, 'paid')
        payment, = order.payments
        self.assertEqual(payment.state, 'succeeded')
        self.assertEqual(payment.amount, order.payable_amount)
        self.assertTrue(payment.reference)
        self.assertIn('notify', [m.api for m in payment.messages])
        Enrollment = Model.get('course.enrollment', config=config)
        enrollments = Enrollment.find([
                ('party', '=', order.party.id),
                ('course', '=', order.lines[0].course.id)])
        self.assertEqual([e.state for e in enrollments], ['live'])

    def pay_with_wechat(self):
        """The demo's unpaid WeChat Pay order, paid on the fake gateway's
        page standing for the student's phone: the signed, encrypted
        notification reaches trytond, the order is paid and enrolled"""
        from proteus import Model
        from proteus.config import XmlrpcConfig

        config = XmlrpcConfig(self.demo.rpc_url('admin'))
        Order = Model.get('course.order', config=config)
        fake = f'http://127.0.0.1:{self.demo.wechat_port}'
        links = self.demo.wechat_links
        self.assertEqual(len(links), 1, self.demo.output)
        (number, link), = links.items()
        self.assertEqual(link, f'{fake}/pay/{number}')
        order, = Order.find([('number', '=', number)])
        self.assertEqual(
            (order.state, order.pay_method), ('unpaid', 'wechat'))

        # The code asked by course.payment.start at the demo's load
        with urllib.request.urlopen(link, timeout=30) as response:
            page = response.read().decode()
        self.assertIn(number, page)
        self.assertIn(f'{order.payable_amount:.2f}', page)
        self.assertIn('weixin://wxpay/bizpayurl', page)
        self.assertIn('value="pay"', page)

        # "Pay": the notification to trytond's notify route
        data = urllib.parse.urlencode({'action': 'pay'}).encode()
        with urllib.request.urlopen(link, data, timeout=60) as response:
            page = response.read().decode()
        self.assertIn('200 {"code": "SUCCESS"}', html.unescape(page))

        order.reload()
        self.assertEqual(order.state, 'paid')
        payment, = order.payments
        self.assertEqual(
            (payment.method, payment.state), ('wechat', 'succeeded'))
        self.assertEqual(payment.amount, order.payable_amount)
        self.assertTrue(payment.reference)
        self.assertIn('notify', [m.api for m in payment.messages])
        Enrollment = Model.get('course.enrollment', config=config)
        enrollments = Enrollment.find([
                ('party', '=', order.party.id),
                ('course', '=', order.lines[0].course.id)])
        self.assertEqual([e.state for e in enrollments], ['live'])


if __name__ == '__main__':
    unittest.main()
