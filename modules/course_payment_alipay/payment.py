"""The payment method `alipay`: course_payment's provider hooks served by
the company's Alipay account (see course_payment's doc/reference.rst).

The Alipay trade of an order is identified by `out_trade_no` = the order
number: one order, one trade, so paying again opens the same trade and a
query, close or refund needs nothing but the order.  Alipay's own number of
the trade (`trade_no`) is the payment's reference once paid.
"""
import logging

from trytond.pool import Pool, PoolMeta

from .alipay import SUCCESS_CODE, format_amount, from_beijing, parse_amount

logger = logging.getLogger(__name__)

PAID_STATUSES = {'TRADE_SUCCESS', 'TRADE_FINISHED'}
UNPAID_STATUSES = {'WAIT_BUYER_PAY', 'TRADE_CLOSED'}
TRADE_NOT_EXIST = 'ACQ.TRADE_NOT_EXIST'


def account_of(payment):
    Account = Pool().get('course.payment.alipay.account')
    return Account.get_account(payment.company)


def buyer_of(values):
    "The buyer's id at Alipay in a notify or query answer"
    for name in ['buyer_id', 'buyer_user_id', 'buyer_open_id',
            'buyer_logon_id']:
        if values.get(name):
            return str(values[name])[:64]
    return None


class Order(metaclass=PoolMeta):
    __name__ = 'course.order'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        if 'alipay' not in dict(cls.pay_method.selection):
            cls.pay_method.selection.append(('alipay', "Alipay"))


class Payment(metaclass=PoolMeta):
    __name__ = 'course.payment'

    @classmethod
    def _alipay_call(cls, payment, method, biz):
        """Call the gateway for payment: the request and the verified
        answer are recorded on it (a failure raises and is logged; the
        caller's transaction is rolled back)"""
        account = account_of(payment)
        result = account.call(method, biz)
        cls.record_message(payment, 'out', method, biz, verified=True)
        cls.record_message(payment, 'in', method, result, verified=True)
        return result

    @classmethod
    def _provider_start_alipay(cls, payment):
        "The page-pay URL of the order's trade (out_trade_no: its number)"
        order = payment.order
        account = account_of(payment)
        url = account.page_pay_url(
            order.title or order.number, order.number, payment.amount,
            time_expire=order.pay_deadline)
        return {'url': url, 'out_trade_no': order.number}

    @classmethod
    def _provider_query_alipay(cls, payment):
        """alipay.trade.query of the order's trade: paid, unpaid, or
        unknown when the gateway could not be asked or trusted"""
        from .exceptions import AlipayError
        order = payment.order
        try:
            result = cls._alipay_call(payment, 'alipay.trade.query', {
                    'out_trade_no': order.number})
        except AlipayError as error:
            return {'state': 'unknown', 'error': error.message}
        if result.get('code') != SUCCESS_CODE:
            if result.get('sub_code') == TRADE_NOT_EXIST:
                # The student never opened the page: no trade at Alipay
                return {'state': 'unpaid'}
            return {'state': 'unknown', 'error': '%s %s' % (
                    result.get('sub_code'), result.get('sub_msg'))}
        if result.get('out_trade_no') != order.number:
            return {'state': 'unknown', 'error': 'other out_trade_no'}
        status = result.get('trade_status')
        if status in PAID_STATUSES:
            amount = parse_amount(result.get('total_amount'))
            if amount is None or not result.get('trade_no'):
                return {'state': 'unknown', 'error': 'no amount or trade_no'}
            return {
                'state': 'paid',
                'reference': str(result['trade_no'])[:64],
                'buyer': buyer_of(result),
                'amount': amount,
                'paid_at': from_beijing(result.get('send_pay_date')),
                }
        if status in UNPAID_STATUSES:
            return {'state': 'unpaid'}
        return {'state': 'unknown', 'error': f'trade_status {status!r}'}

    @classmethod
    def _provider_close_alipay(cls, payment):
        """alipay.trade.close of the order's trade; a trade Alipay does not
        know (never opened) is closed already; a trade paid meanwhile
        cannot be closed: its notify makes the payment late (refunded)"""
        from .exceptions import AlipayError
        result = cls._alipay_call(payment, 'alipay.trade.close', {
                'out_trade_no': payment.order.number})
        if result.get('code') == SUCCESS_CODE:
            return {'closed': True}
        if result.get('sub_code') == TRADE_NOT_EXIST:
            return {'closed': True, 'note': TRADE_NOT_EXIST}
        if result.get('sub_code') == 'ACQ.TRADE_STATUS_ERROR':
            logger.warning(
                "alipay trade %s not closed: %s", payment.order.number,
                result.get('sub_msg'))
            return {'closed': False, 'note': 'ACQ.TRADE_STATUS_ERROR'}
        raise AlipayError(
            cls._alipay_account_model().business_error(
                'alipay.trade.close', result).message)

    @classmethod
    def _alipay_account_model(cls):
        return Pool().get('course.payment.alipay.account')

    @classmethod
    def _provider_refund_alipay(cls, refund):
        """alipay.trade.refund of refund.amount with out_request_no = the
        refund's number (a retry with it refunds once); Alipay answers at
        once: succeeded when money moved, pending when it says it did not
        move now (a retry of a refund done before: the refund query
        tells)"""
        payment = refund.payment
        biz = {
            'out_trade_no': payment.order.number,
            'refund_amount': format_amount(refund.amount),
            'out_request_no': refund.number,
            }
        if refund.reason:
            biz['refund_reason'] = refund.reason[:256]
        result = cls._alipay_call(payment, 'alipay.trade.refund', biz)
        if result.get('code') != SUCCESS_CODE:
            from .exceptions import AlipayError
            raise AlipayError(cls._alipay_account_model().business_error(
                    'alipay.trade.refund', result).message)
        return 'succeeded' if result.get('fund_change') == 'Y' else 'pending'

    @classmethod
    def _provider_refund_query_alipay(cls, refund):
        """alipay.trade.fastpay.refund.query of the refund's number:
        succeeded when Alipay returns it refunded, failed when Alipay has
        no such refund (it was never made), pending otherwise"""
        payment = refund.payment
        result = cls._alipay_call(
            payment, 'alipay.trade.fastpay.refund.query', {
                'out_trade_no': payment.order.number,
                'out_request_no': refund.number,
                })
        if result.get('code') != SUCCESS_CODE:
            from .exceptions import AlipayError
            raise AlipayError(cls._alipay_account_model().business_error(
                    'alipay.trade.fastpay.refund.query', result).message)
        if not result.get('refund_amount'):
            return 'failed'
        if result.get('refund_status') in {None, '', 'REFUND_SUCCESS'}:
            amount = parse_amount(result.get('refund_amount'))
            if amount is not None and amount == refund.amount:
                return 'succeeded'
            logger.warning("alipay refund %s: amount %s instead of %s",
                refund.number, result.get('refund_amount'), refund.amount)
        return 'pending'

    @classmethod
    def alipay_payment(cls, order):
        "The last payment of order with Alipay (messages go there), or None"
        payments = cls.search([
                ('order', '=', order.id), ('method', '=', 'alipay'),
                ], order=[('id', 'DESC')], limit=1)
        return payments[0] if payments else None

    # ---- Messages from Alipay (the routes) ----------------------------------

    @classmethod
    def _alipay_verified_order(cls, params, kind, log=True):
        """The (account, order) of a notify or return whose signature and
        app_id verify, or None (logged: nothing is stored for a message
        nobody can trust)"""
        warn = logger.warning if log else (lambda *args: None)
        pool = Pool()
        Account = pool.get('course.payment.alipay.account')
        Order = pool.get('course.order')
        account = Account.find(params.get('app_id'))
        if account is None:
            warn("alipay %s of unknown app_id %r refused", kind,
                params.get('app_id'))
            return None
        if not account.verify(params):
            warn("alipay %s with a bad signature refused: %s",
                kind, params)
            return None
        number = params.get('out_trade_no')
        orders = Order.search([
                ('number', '=', number),
                ('company', '=', account.company.id),
                ], limit=1) if number else []
        if not orders:
            warn("alipay %s of unknown order %r refused", kind,
                number)
            return None
        return account, orders[0]

    @classmethod
    def alipay_notify_order(cls, params):
        """The order of a notify that verifies, or None: the lookup of the
        notify route (course_payment/notify.py), which logs nothing (the
        notify's handler does)"""
        found = cls._alipay_verified_order(params, 'notify', log=False)
        return found[1] if found else None

    @classmethod
    def alipay_notify(cls, params):
        """Handle Alipay's asynchronous notify (the form posted to the
        notify route); return True to answer `success`, False for
        `failure` (Alipay sends it again later).

        Verified: the RSA2 signature, the app_id (an active account), the
        seller_id (the account's), the order (its number is the
        out_trade_no, in the account's company), the amount (the payment's)
        and the trade status.  The message is recorded (verified) on the
        order's Alipay payment once the signature verified; the paid
        statuses go through course_payment's succeed (idempotent; a late
        payment is refunded)."""
        found = cls._alipay_verified_order(params, 'notify')
        if found is None:
            return False
        account, order = found
        payment = cls.alipay_payment(order)
        if payment:
            cls.record_message(payment, 'in', 'notify', params, verified=True)
        else:
            logger.warning("alipay notify of order %s without a payment",
                order.number)
        if params.get('seller_id') != account.seller_id:
            logger.warning("alipay notify of order %s for seller %r refused",
                order.number, params.get('seller_id'))
            return False
        status = params.get('trade_status')
        if status in UNPAID_STATUSES:
            return True
        if status not in PAID_STATUSES:
            logger.warning("alipay notify of order %s with status %r refused",
                order.number, status)
            return False
        amount = parse_amount(params.get('total_amount'))
        expected = payment.amount if payment else order.payable_amount
        trade_no = params.get('trade_no')
        if amount is None or amount != expected or not trade_no:
            logger.error(
                "alipay notify of order %s: amount %r (expected %s) or "
                "trade_no %r refused", order.number,
                params.get('total_amount'), expected, trade_no)
            return False
        cls.succeed(
            order, 'alipay', amount, trade_no[:64],
            buyer=buyer_of(params),
            paid_at=from_beijing(params.get('gmt_payment')))
        return True

    @classmethod
    def alipay_return(cls, params):
        """Handle the student's browser coming back from Alipay (the query
        of the return route); return the storefront URL to redirect to, or
        None when the return does not verify.

        The return carries no trade status: the trade is asked with
        alipay.trade.query (a paid answer goes through succeed)."""
        found = cls._alipay_verified_order(params, 'return')
        if found is None:
            return None
        account, order = found
        payment = cls.get_pending(order, 'alipay')
        if payment:
            cls.record_message(payment, 'in', 'return', params, verified=True)
            cls.query([payment])
        order = order.__class__(order.id)
        return account.storefront_redirect(order)
