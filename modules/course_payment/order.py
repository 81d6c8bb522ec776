"""Orders paid through a provider: course_order's payment hooks served for
every provider method, and refunds through course.payment.refund."""
from trytond.i18n import gettext
from trytond.model import fields
from trytond.modules.course.tools import company_language
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction

from .payment import RECEIVED


class Order(metaclass=PoolMeta):
    __name__ = 'course.order'
    payments = fields.One2Many(
        'course.payment', 'order', "Payments", readonly=True)
    refunds = fields.One2Many(
        'course.payment.refund', 'order', "Refunds", readonly=True)
    refund_requests = fields.One2Many(
        'course.payment.refund.request', 'order', "Refund Requests",
        readonly=True)

    @classmethod
    def copy(cls, orders, default=None):
        default = default.copy() if default is not None else {}
        for name in ['payments', 'refunds', 'refund_requests']:
            default.setdefault(name, None)
        return super().copy(orders, default=default)

    @classmethod
    def _get_payment_hook(cls, action, method):
        """Serve the hooks of the provider methods (those with
        course.payment's `_provider_start_<method>`) by the generic
        `_payment_<action>_provider`"""
        Payment = Pool().get('course.payment')
        hook = super()._get_payment_hook(action, method)
        if hook is None and Payment.is_provider(method):
            hook = getattr(cls, f'_payment_{action}_provider', None)
        return hook

    @classmethod
    def _payment_hook(cls, action, orders, methods=None):
        """A refund of whole orders (course_order's Refund button) is made
        as a course.payment.refund of the lines not refunded yet, for every
        method; it calls back the method's own hook (context flag)"""
        if (action == 'refund'
                and not Transaction().context.get(
                    '_course_payment_method_refund')):
            Refund = Pool().get('course.payment.refund')
            done = []
            for order in orders:
                refund = Refund.refund_order(
                    order, reason=gettext(
                        'course_payment.msg_refund_button_reason',
                        company_language(order.company)),
                    _button=True)
                if refund.state == 'succeeded':
                    done.append(order)
            # Refund.succeed moved them to refunded already (idempotent)
            return done
        return super()._payment_hook(action, orders, methods)

    @classmethod
    def _payment_query_provider(cls, orders):
        """Ask the provider about the pending payments of the orders (the
        expiry job, before it expires them): paid (the payment succeeded
        and paid the order), unknown (no answer) or unpaid (no payment
        started, or the provider says not paid)"""
        Payment = Pool().get('course.payment')
        answers = {}
        for order in orders:
            payments = Payment.search([('order', '=', order.id)])
            if any(p.state in RECEIVED and not p.late for p in payments):
                answers[order] = 'paid'
                continue
            pending = [p for p in payments if p.state == 'pending']
            states = set(Payment.query(pending).values())
            if 'paid' in states:
                answers[order] = 'paid'
            elif 'unknown' in states:
                answers[order] = 'unknown'
            else:
                answers[order] = 'unpaid'
        return answers

    @classmethod
    def _payment_close_provider(cls, orders):
        "Close the pending payments of the cancelled or expired orders"
        Payment = Pool().get('course.payment')
        Payment.close(Payment.search([
                    ('order', 'in', [o.id for o in orders]),
                    ('state', '=', 'pending'),
                    ]))


class OrderLine(metaclass=PoolMeta):
    __name__ = 'course.order.line'
    refunded = fields.Function(fields.Boolean(
            "Refunded",
            help="A refund of some lines of the order took this one back."),
        'get_refunded')

    @classmethod
    def get_refunded(cls, lines, name):
        "Lines taken back by a succeeded partial refund"
        pool = Pool()
        Refund = pool.get('course.payment.refund')
        RefundLine = pool.get('course.payment.refund-course.order.line')
        refund = Refund.__table__()
        relation = RefundLine.__table__()
        cursor = Transaction().connection.cursor()
        ids = [l.id for l in lines]
        result = dict.fromkeys(ids, False)
        cursor.execute(*relation.join(
                refund, condition=relation.refund == refund.id).select(
                relation.line,
                where=relation.line.in_(ids or [-1])
                & (refund.state == 'succeeded') & (refund.full == False)))
        for line, in cursor:
            result[line] = True
        return result

    def get_revoked_enrollments(self):
        # A partial refund ended them already
        if self.refunded:
            return []
        return super().get_revoked_enrollments()

    def get_shortened_enrollments(self):
        # A partial refund gave the extended enrollment its end back already
        if self.refunded:
            return []
        return super().get_shortened_enrollments()
