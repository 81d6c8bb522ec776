"""The order receipt of course_order with the payments recorded here (the
provider's trade number) and the refunds of course.payment.refund."""
from trytond.pool import Pool, PoolMeta
from trytond.transaction import without_check_access

from .payment import RECEIVED


class OrderReceipt(metaclass=PoolMeta):
    __name__ = 'course.order.receipt'

    @classmethod
    def get_receipt_payments(cls, order):
        """The provider payments that paid the order (late payments are
        money for another state of the order, refunded: not this order's
        payment); the order's own method when there are none"""
        pool = Pool()
        Order = pool.get('course.order')
        Payment = pool.get('course.payment')
        # Printing needs only the order's read access
        with without_check_access():
            # The orders' methods in the receipt's language (a payment's
            # selection of methods is computed, so not translated)
            methods = dict(
                Order.fields_get(['pay_method'])['pay_method']['selection'])
            payments = Payment.search([
                    ('order', '=', order.id),
                    ('late', '=', False),
                    ('state', 'in', list(RECEIVED)),
                    ], order=[('paid_at', 'ASC'), ('id', 'ASC')])
            result = [cls.receipt_payment(
                    methods.get(p.method, p.method), p.reference, p.paid_at,
                    p.amount)
                for p in payments]
        return result or super().get_receipt_payments(order)

    @classmethod
    def get_receipt_refunds(cls, order):
        """Every refund of the order's money (whole order or some lines, in
        any state), oldest first; the refunds of late payments are not"""
        Refund = Pool().get('course.payment.refund')
        with without_check_access():
            refunds = Refund.search([
                    ('order', '=', order.id),
                    ['OR',
                        ('payment', '=', None),
                        ('payment.late', '=', False),
                        ],
                    ], order=[('id', 'ASC')])
            result = [cls.receipt_refund(
                    r.number, r.amount, r.state_string, r.refunded_at,
                    r.reason)
                for r in refunds]
        return result or super().get_receipt_refunds(order)
