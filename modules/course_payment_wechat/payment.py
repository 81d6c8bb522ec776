"""The payment method `wechat` (WeChat Pay Native): course_payment's
provider hooks served by the company's WeChat Pay account (see
course_payment's doc/reference.rst), and the notifications of the notify
route.

The WeChat Pay transaction of an order is identified by `out_trade_no` =
the order number: one order, one transaction, so paying again asks for the
code of the same transaction and a query, close or refund needs nothing but
the order.  WeChat Pay's own number (`transaction_id`) is the payment's
reference once paid; refunds are identified by `out_refund_no` = the
refund's number.
"""
import logging
from decimal import Decimal

from trytond.modules.course.tools import lock_rows
from trytond.pool import Pool, PoolMeta

from .exceptions import WechatError
from .wechat import NotifyRefused, from_fen, from_rfc3339, to_fen, to_rfc3339

logger = logging.getLogger(__name__)

METHOD = 'wechat'
PAID_STATES = {'SUCCESS', 'REFUND'}
UNPAID_STATES = {'NOTPAY', 'CLOSED', 'REVOKED', 'PAYERROR'}
ORDER_NOT_EXIST = 'ORDER_NOT_EXIST'
ORDER_PAID = 'ORDERPAID'
REFUND_NOT_EXIST = 'RESOURCE_NOT_EXISTS'
PAYMENT_EVENTS = {'TRANSACTION.SUCCESS'}
REFUND_EVENTS = {'REFUND.SUCCESS', 'REFUND.ABNORMAL', 'REFUND.CLOSED'}
DESCRIPTION_SIZE = 127


def account_of(payment):
    Account = Pool().get('course.payment.wechat.account')
    return Account.get_account(payment.company)


def payer_of(values):
    "The payer's openid at WeChat in a notification or query answer"
    payer = values.get('payer')
    if isinstance(payer, dict) and payer.get('openid'):
        return str(payer['openid'])[:64]
    return None


def total_of(values):
    "The amount.total (fen) of an answer as a Decimal, or None"
    amount = values.get('amount')
    return from_fen(amount.get('total')) if isinstance(amount, dict) else None


class Order(metaclass=PoolMeta):
    __name__ = 'course.order'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        if METHOD not in dict(cls.pay_method.selection):
            cls.pay_method.selection.append((METHOD, "WeChat Pay"))


class Payment(metaclass=PoolMeta):
    __name__ = 'course.payment'

    @classmethod
    def _wechat_call(cls, payment, api, **kwargs):
        """Call the gateway for payment: the request and the answer are
        recorded on it (a failure raises and is logged; the caller's
        transaction is rolled back); return (status, answer)"""
        account = account_of(payment)
        status, document = account.call(api, **kwargs)
        cls.record_message(payment, 'out', api, kwargs, verified=True)
        cls.record_message(payment, 'in', api, dict(document,
                _status=status), verified=200 <= status < 300)
        return status, document

    @classmethod
    def _provider_start_wechat(cls, payment):
        """The code_url of the Native transaction of the order (its number),
        expiring at the order's deadline; asked again on each start, so
        paying again gives a valid code of the same transaction"""
        from wechatpayv3 import WeChatPayType
        order = payment.order
        account = account_of(payment)
        kwargs = {
            'description': (order.title or order.number)[:DESCRIPTION_SIZE],
            'out_trade_no': order.number,
            'amount': {'total': to_fen(payment.amount), 'currency': 'CNY'},
            'pay_type': WeChatPayType.NATIVE,
            }
        if order.pay_deadline:
            kwargs['time_expire'] = to_rfc3339(order.pay_deadline)
        status, document = cls._wechat_call(payment, 'pay', **kwargs)
        code_url = document.get('code_url')
        if status != 200 or not isinstance(code_url, str) or not code_url:
            raise account.business_error('pay', status, document)
        return {
            'code_url': code_url,
            'out_trade_no': order.number,
            'time_expire': kwargs.get('time_expire'),
            }

    @classmethod
    def _provider_query_wechat(cls, payment):
        """The query of the order's transaction: paid, unpaid, or unknown
        when the gateway could not be asked or trusted"""
        order = payment.order
        account = account_of(payment)
        try:
            status, result = cls._wechat_call(
                payment, 'query', out_trade_no=order.number)
        except WechatError as error:
            return {'state': 'unknown', 'error': error.message}
        if status == 404 and result.get('code') == ORDER_NOT_EXIST:
            # The student never scanned the code: no transaction
            return {'state': 'unpaid'}
        if status != 200:
            return {'state': 'unknown', 'error': '%s %s' % (
                    result.get('code'), result.get('message'))}
        if (result.get('out_trade_no') != order.number
                or result.get('mchid') != account.mchid):
            return {'state': 'unknown', 'error': 'other transaction'}
        trade_state = result.get('trade_state')
        if trade_state in PAID_STATES:
            amount = total_of(result)
            transaction_id = result.get('transaction_id')
            if amount is None or not isinstance(transaction_id, str) or (
                    not transaction_id):
                return {'state': 'unknown',
                    'error': 'no amount or transaction_id'}
            return {
                'state': 'paid',
                'reference': transaction_id[:64],
                'buyer': payer_of(result),
                'amount': amount,
                'paid_at': from_rfc3339(result.get('success_time')),
                }
        if trade_state in UNPAID_STATES:
            return {'state': 'unpaid'}
        # USERPAYING and what comes: not known yet
        return {'state': 'unknown', 'error': f'trade_state {trade_state!r}'}

    @classmethod
    def _provider_close_wechat(cls, payment):
        """Close the order's transaction; one WeChat Pay does not know
        (never scanned) is closed already; one paid meanwhile cannot be
        closed: its notification makes the payment late (refunded)"""
        account = account_of(payment)
        status, result = cls._wechat_call(
            payment, 'close', out_trade_no=payment.order.number)
        if status in {200, 204}:
            return {'closed': True}
        code = result.get('code')
        if code == ORDER_NOT_EXIST:
            return {'closed': True, 'note': code}
        if code == ORDER_PAID:
            logger.warning("wechat transaction %s not closed: paid",
                payment.order.number)
            return {'closed': False, 'note': code}
        raise account.business_error('close', status, result)

    @classmethod
    def _provider_refund_wechat(cls, refund):
        """Refund refund.amount with out_refund_no = the refund's number (a
        retry with it refunds once): succeeded when WeChat Pay answers
        SUCCESS, pending while it processes (a REFUND.SUCCESS notification
        or the refund query completes it)"""
        payment = refund.payment
        account = account_of(payment)
        kwargs = {
            'out_refund_no': refund.number,
            'out_trade_no': payment.order.number,
            'amount': {
                'refund': to_fen(refund.amount),
                'total': to_fen(payment.amount),
                'currency': 'CNY',
                },
            }
        if refund.reason:
            kwargs['reason'] = refund.reason[:80]
        status, result = cls._wechat_call(payment, 'refund', **kwargs)
        if status != 200 or result.get('out_refund_no') != refund.number:
            raise account.business_error('refund', status, result)
        if result.get('status') == 'SUCCESS':
            return 'succeeded'
        return 'pending'

    @classmethod
    def _provider_refund_query_wechat(cls, refund):
        """Query the refund's number: succeeded when WeChat Pay says SUCCESS
        with the refund's amount, failed when it has no such refund or
        closed it (ABNORMAL, CLOSED), pending otherwise"""
        payment = refund.payment
        account = account_of(payment)
        status, result = cls._wechat_call(
            payment, 'query_refund', out_refund_no=refund.number)
        if status == 404 and result.get('code') == REFUND_NOT_EXIST:
            return 'failed'
        if status != 200:
            raise account.business_error('query_refund', status, result)
        return cls._wechat_refund_answer(refund, result)

    @classmethod
    def _wechat_refund_answer(cls, refund, result):
        "succeeded, failed or pending of a refund's query answer or event"
        refund_status = result.get('status') or result.get('refund_status')
        if refund_status == 'SUCCESS':
            amount = result.get('amount')
            refunded = (from_fen(amount.get('refund'))
                if isinstance(amount, dict) else None)
            if refunded == refund.amount:
                return 'succeeded'
            logger.error("wechat refund %s: amount %s instead of %s",
                refund.number, amount, refund.amount)
            return 'pending'
        if refund_status in {'ABNORMAL', 'CLOSED'}:
            return 'failed'
        return 'pending'

    @classmethod
    def wechat_payment(cls, order):
        "The last payment of order with WeChat Pay, or None"
        payments = cls.search([
                ('order', '=', order.id), ('method', '=', METHOD),
                ], order=[('id', 'DESC')], limit=1)
        return payments[0] if payments else None

    # ---- Notifications (the notify route) -----------------------------------

    @classmethod
    def wechat_notify(cls, headers, body):
        """Handle a notification WeChat Pay posted to the notify route:
        headers (a mapping), body (the raw bytes).  Return None when it is
        handled (answered 200 SUCCESS); raise NotifyRefused when it does
        not verify (nothing is stored), return it when it is refused once
        recorded (both answered 4xx FAIL: WeChat Pay sends it again).

        Verified: the headers, the timestamp (5 minutes), the signature with
        the account's WeChat Pay public key (its id is the serial), the
        decryption with the APIv3 key, then the merchant id, the order or
        refund, and the amount.  Once decrypted the message is recorded
        (verified) on the payment; payments go through course_payment's
        succeed (idempotent per transaction_id; a late payment is
        refunded), refunds through course.payment.refund."""
        Account = Pool().get('course.payment.wechat.account')
        account, notification = Account.verify_notification(headers, body)
        event = notification.get('event_type')
        resource = notification['resource']
        if event in PAYMENT_EVENTS:
            handle = cls._wechat_payment_event
        elif event in REFUND_EVENTS:
            handle = cls._wechat_refund_event
        else:
            logger.warning("wechat notification of event %r refused", event)
            raise NotifyRefused(400, 'event_type')
        try:
            handle(account, notification, resource)
        except NotifyRefused as refused:
            # Answered FAIL, and the message recorded is kept (committed)
            return refused
        return None

    @classmethod
    def wechat_notify_order(cls, headers, body):
        """The order of a payment notification that verifies, or None: the
        lookup of the notify route (course_payment/notify.py), which logs
        nothing (the notification's handler does)"""
        Order = Pool().get('course.order')
        Account = Pool().get('course.payment.wechat.account')
        try:
            account, notification = Account.verify_notification(
                headers, body)
        except NotifyRefused:
            return None
        number = notification['resource'].get('out_trade_no')
        if (notification.get('event_type') not in PAYMENT_EVENTS
                or not isinstance(number, str) or not number):
            return None
        orders = Order.search([
                ('number', '=', number),
                ('company', '=', account.company.id),
                ], limit=1)
        return orders[0] if orders else None

    @classmethod
    def _wechat_order(cls, account, number):
        "The order of number in the account's company, or NotifyRefused"
        Order = Pool().get('course.order')
        orders = Order.search([
                ('number', '=', number),
                ('company', '=', account.company.id),
                ], limit=1) if isinstance(number, str) and number else []
        if not orders:
            logger.warning("wechat notification of unknown order %r refused",
                number)
            raise NotifyRefused(404, 'unknown order')
        return orders[0]

    @classmethod
    def _wechat_payment_event(cls, account, notification, resource):
        Order = Pool().get('course.order')
        order = cls._wechat_order(account, resource.get('out_trade_no'))
        # Lock first: the call restarts here, before anything is written
        lock_rows(Order, [order])
        payment = cls.wechat_payment(order)
        if payment:
            cls.record_message(payment, 'in', 'notify', notification,
                verified=True)
        else:
            logger.warning("wechat notification of order %s without a "
                "payment", order.number)
        if (resource.get('mchid') != account.mchid
                or resource.get('appid') != account.appid):
            logger.error("wechat notification of order %s for merchant %r "
                "refused", order.number, resource.get('mchid'))
            raise NotifyRefused(400, 'mchid')
        if resource.get('trade_state') not in PAID_STATES:
            logger.warning("wechat notification of order %s with state %r "
                "refused", order.number, resource.get('trade_state'))
            raise NotifyRefused(400, 'trade_state')
        amount = total_of(resource)
        expected = payment.amount if payment else order.payable_amount
        transaction_id = resource.get('transaction_id')
        if (amount is None or amount != expected
                or not isinstance(transaction_id, str)
                or not transaction_id):
            logger.error(
                "wechat notification of order %s: amount %r (expected %s) "
                "or transaction_id %r refused", order.number,
                resource.get('amount'), expected, transaction_id)
            raise NotifyRefused(400, 'amount')
        cls.succeed(
            order, METHOD, amount, transaction_id[:64],
            buyer=payer_of(resource),
            paid_at=from_rfc3339(resource.get('success_time')))

    @classmethod
    def _wechat_refund_fits(cls, refund):
        """Whether the failed refund, succeeding after all, stays within
        what was paid beside the other refunds pending or succeeded"""
        Refund = Pool().get('course.payment.refund')
        others = Refund.search([
                ('payment', '=', refund.payment.id),
                ('id', '!=', refund.id),
                ('state', 'in', ['pending', 'succeeded']),
                ])
        already = sum((r.amount for r in others), Decimal(0))
        return already + refund.amount <= refund.payment.amount

    @classmethod
    def _wechat_refund_event(cls, account, notification, resource):
        pool = Pool()
        Order = pool.get('course.order')
        Refund = pool.get('course.payment.refund')
        order = cls._wechat_order(account, resource.get('out_trade_no'))
        lock_rows(Order, [order])
        number = resource.get('out_refund_no')
        refunds = Refund.search([
                ('order', '=', order.id),
                ('number', '=', number),
                ('payment.method', '=', METHOD),
                ], limit=1) if isinstance(number, str) and number else []
        if not refunds:
            logger.warning("wechat refund notification of unknown refund %r "
                "refused", number)
            raise NotifyRefused(404, 'unknown refund')
        refund, = refunds
        cls.record_message(refund.payment, 'in', 'notify', notification,
            verified=True)
        if resource.get('mchid') != account.mchid:
            logger.error("wechat refund notification %s for merchant %r "
                "refused", number, resource.get('mchid'))
            raise NotifyRefused(400, 'mchid')
        answer = cls._wechat_refund_answer(refund, resource)
        if answer == 'succeeded':
            if refund.state == 'failed':
                if not cls._wechat_refund_fits(refund):
                    # Staff refunded otherwise meanwhile: never count the
                    # money back twice; the message recorded tells them
                    logger.error("wechat refund %s succeeded after it "
                        "failed, beyond what is left to refund: left "
                        "failed for staff", number)
                    return
                # The money went back after all
                Refund.write([refund], {'state': 'pending', 'failure': None})
            Refund.succeed([Refund(refund.id)])
        elif answer == 'failed':
            if refund.state == 'pending':
                Refund.write([refund], {'state': 'failed',
                        'failure': str(resource.get('refund_status'))})
        elif resource.get('refund_status') == 'SUCCESS':
            # SUCCESS of another amount: not this refund's
            raise NotifyRefused(400, 'amount')
