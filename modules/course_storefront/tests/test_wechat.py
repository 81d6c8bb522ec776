"""End to end over real HTTP (tests/server.py): a storefront order paid by
WeChat Pay (the fake gateway of course_payment_wechat) ends paid and
enrolled exactly as one paid by Alipay."""
import json
import urllib.error
import urllib.request
import unittest
import uuid
from decimal import Decimal

from trytond.pool import Pool

from .server import ServerTestMixin
from .tools import StorefrontError

# What differs between two orders of the same course by nature
VARYING = {'number', 'pay_method', 'created_at', 'pay_deadline',
    'timeout_seconds', 'paid_at'}


class StorefrontWechatTestCase(ServerTestMixin, unittest.TestCase):
    "cart → order → order.pay (code_url) → notification → paid, enrolled"
    module = [
        'course_storefront', 'course_payment_alipay', 'course_payment_wechat']

    @classmethod
    def setUpClass(cls):
        from trytond.modules.course_payment_alipay.tests.tools import (
            FakeAlipay)
        from trytond.modules.course_payment_wechat.tests.tools import (
            FakeWechat)
        cls.alipay = FakeAlipay().start()
        cls.addClassCleanup(cls.alipay.stop)
        cls.wechat = FakeWechat().start()
        cls.addClassCleanup(cls.wechat.stop)
        super().setUpClass()

    @classmethod
    def setup_data(cls):
        super().setup_data()
        pool = Pool()
        pool.get('course.payment.alipay.account').create([
                cls.alipay.account_values(cls.company_id)])
        pool.get('course.payment.wechat.account').create([
                cls.wechat.account_values(cls.company_id)])

    # ---- helpers ------------------------------------------------------------

    def student(self):
        client = self.client()
        client.register(
            f'{uuid.uuid4().hex[:12]}@example.com', name="WeChat Student")
        return client

    def order(self, client, pay_method, course='b'):
        client.call('cart.add', {'course': self.catalog[course]})
        return client.call('order.create', {'pay_method': pay_method})

    def post_raw(self, path, headers, body):
        "(status, JSON answer) of a raw POST to the server"
        request = urllib.request.Request(
            self.server.base_url + path, data=body, method='POST',
            headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def pay_by_wechat(self, client, number, fen):
        """order.pay gives the code to scan; the student pays; WeChat Pay's
        notification is posted to the server"""
        answer = client.call('order.pay', {'number': number})
        trade = self.wechat.trades[number]
        self.assertEqual(set(answer), {'code_url', 'time_expire'})
        self.assertEqual(answer['code_url'], trade['code_url'])
        self.assertTrue(answer['code_url'].startswith('weixin://'))
        self.assertTrue(answer['time_expire'].endswith('+08:00'))
        self.assertEqual(trade['amount']['total'], fen)
        # Paying again: a valid code of the same transaction
        self.assertEqual(
            client.call('order.pay', {'number': number})['code_url'],
            answer['code_url'])
        self.wechat.pay(number)
        headers, body = self.wechat.payment_notification(number)
        self.assertEqual(self.post_raw(
                f'/{self.server_database}/wechat/notify', headers, body),
            (200, {'code': 'SUCCESS'}))

    def pay_by_alipay(self, client, number):
        url = client.call('order.pay', {'number': number})['url']
        self.assertTrue(url.startswith(self.alipay.url))
        self.alipay.pay(number, '500.00')
        self.assertEqual(self.server.post_form(
                f'/{self.server_database}/alipay/notify',
                self.alipay.notify(number)), (200, 'success'))

    def enrollments(self, client):
        return [{k: v for k, v in e.items() if k not in {
                    'id', 'start', 'end', 'order', 'created_at',
                    'enrolled_at'}}
            for e in client.call('enrollment.list')]

    # ---- flows --------------------------------------------------------------

    def test_wechat_like_alipay(self):
        "Paid by WeChat Pay: paid and enrolled exactly as by Alipay"
        results = {}
        for method, pay in [
                ('alipay', lambda c, n: self.pay_by_alipay(c, n)),
                ('wechat', lambda c, n: self.pay_by_wechat(c, n, 50000))]:
            client = self.student()
            order = self.order(client, method)
            self.assertEqual((order['state'], order['payable']),
                ('unpaid', '500.00'))
            pay(client, order['number'])
            paid = client.call('order.get', {'number': order['number']})
            self.assertEqual(paid['pay_method'], method)
            self.assertTrue(paid['paid_at'])
            self.assertIn(self.catalog['b'],
                {e['course'] for e in client.call('enrollment.list')})
            # The lines are named after the order's number
            text = json.dumps(
                [{k: v for k, v in paid.items() if k not in VARYING},
                    self.enrollments(client)], sort_keys=True)
            results[method] = json.loads(
                text.replace(order['number'], '<number>'))
        self.assertEqual(results['wechat'], results['alipay'])
        self.assertEqual(results['wechat'][0]['state'], 'paid')
        self.assertEqual(len(results['wechat'][1]), 1)

        def payments():
            Payment = Pool().get('course.payment')
            return sorted((p.method, p.state, p.amount, bool(p.reference))
                for p in Payment.search([]))
        self.assertEqual(self.on_server(payments), [
                ('alipay', 'succeeded', Decimal('500'), True),
                ('wechat', 'succeeded', Decimal('500'), True)])

    def test_wechat_pay_refused_when_not_unpaid(self):
        "A paid order asks for no code; a notification replayed: still one"
        client = self.student()
        order = self.order(client, 'wechat', 'c')
        self.pay_by_wechat(client, order['number'], 30000)
        with self.assertRaises(StorefrontError) as cm:
            client.call('order.pay', {'number': order['number']})
        self.assertEqual(cm.exception.type, 'order.not_unpaid')
        headers, body = self.wechat.payment_notification(order['number'])
        self.assertEqual(self.post_raw(
                f'/{self.server_database}/wechat/notify', headers, body),
            (200, {'code': 'SUCCESS'}))
        self.assertEqual(
            client.call('order.get', {'number': order['number']})['state'],
            'paid')
        self.assertEqual(
            [e['course'] for e in client.call('enrollment.list')],
            [self.catalog['c']])
