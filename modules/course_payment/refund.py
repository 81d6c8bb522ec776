"""Refunds of paid orders (whole or some lines), late payments' refunds,
and the students' refund requests that staff approve or reject."""
import logging
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import (
    Index, ModelSQL, ModelView, Unique, Workflow, fields)
from trytond.modules.course.course import CompanyMixin
from trytond.modules.course.rpc import RPCInputMixin
from trytond.modules.course.tools import (
    check_caller, check_record, check_text, guarded, guarded_button,
    lock_all_rows, lock_rows, now, states_said)
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.rpc import RPC
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import (
    Button, StateTransition, StateView, Wizard)

from .exceptions import RefundError, RefundRequestError
from .payment import RECEIVED, WorkflowOnlyMixin

logger = logging.getLogger(__name__)

REFUND_STATES = [
    ('pending', "Pending"),
    ('succeeded', "Succeeded"),
    ('failed', "Failed"),
    ]
REASON_SIZE = 1000


def acting_user():
    return Transaction().user or None


class Refund(
        RPCInputMixin, WorkflowOnlyMixin, CompanyMixin, ModelSQL, ModelView):
    "Course Payment Refund"
    __name__ = 'course.payment.refund'
    _rec_name = 'number'

    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True,
        ondelete='RESTRICT')
    order = fields.Many2One(
        'course.order', "Order", required=True, readonly=True,
        ondelete='RESTRICT',
        context={'company': Eval('company', -1)}, depends={'company'})
    payment = fields.Many2One(
        'course.payment', "Payment", readonly=True, ondelete='RESTRICT',
        help="The provider payment refunded; empty for the orders paid "
        "manually, from the wallet or free.")
    number = fields.Char(
        "Request Number", required=True, readonly=True,
        help="Unique: the provider's refund request number (a retry with "
        "the same number refunds once).")
    amount = fields.Numeric(
        "Amount", digits='currency', required=True, readonly=True)
    reason = fields.Text("Reason", readonly=True)
    state = fields.Selection(
        REFUND_STATES, "State", required=True, readonly=True, sort=False)
    state_string = state.translated('state')
    full = fields.Boolean(
        "Whole Order", readonly=True,
        help="The refund covers every line not refunded before: the order "
        "becomes refunded.")
    lines = fields.Many2Many(
        'course.payment.refund-course.order.line', 'refund', 'line',
        "Lines", readonly=True)
    request = fields.Many2One(
        'course.payment.refund.request', "Request", readonly=True,
        ondelete='RESTRICT')
    refunded_at = fields.DateTime("Refunded at", readonly=True)
    failure = fields.Char("Failure", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('number_unique', Unique(t, t.number),
                'course_payment.msg_refund_number_unique'),
            ]
        cls._sql_indexes.add(Index(t, (t.order, Index.Equality())))
        cls._order = [('id', 'DESC')]
        cls._buttons.update({
                'check_status': {
                    'invisible': ((Eval('state') != 'pending')
                        | ~Eval('payment')),
                    'icon': 'tryton-refresh',
                    'depends': ['state', 'payment'],
                    },
                'retry': {
                    'invisible': Eval('state') != 'failed',
                    'icon': 'tryton-launch',
                    'depends': ['state'],
                    },
                })

    @classmethod
    def default_state(cls):
        return 'pending'

    @classmethod
    def default_full(cls):
        return False

    # ---- What an order can still refund ------------------------------------

    @classmethod
    def next_number(cls, order):
        """A request number for the next refund of order: derived from the
        order, so a call that is retried after a rollback asks the provider
        again with the same number"""
        count = cls.search([('order', '=', order.id)], count=True)
        return f'{order.number}R{count + 1:02d}'

    @classmethod
    def refunded_lines(cls, order):
        "The lines of order in a pending or succeeded refund"
        refunds = cls.search([
                ('order', '=', order.id),
                ('state', 'in', ['pending', 'succeeded']),
                ])
        return {l for r in refunds for l in r.lines}

    @classmethod
    def refundable_lines(cls, order):
        "The lines of order no refund took yet, in order"
        done = cls.refunded_lines(order)
        return [l for l in order.lines if l not in done]

    @classmethod
    def paid_payment(cls, order):
        "The provider payment that paid order, or None"
        Payment = Pool().get('course.payment')
        payments = Payment.search([
                ('order', '=', order.id),
                ('late', '=', False),
                ('state', 'in', list(RECEIVED)),
                ], limit=1)
        return payments[0] if payments else None

    # ---- Making refunds ------------------------------------------------------

    @classmethod
    def refund_order(cls, order, lines=None, reason=None, number=None,
            request=None, _button=False):
        """Refund lines of the paid order (all the lines not refunded yet
        when None) through its payment method; return the refund.

        With every remaining line the refund is the whole order's: the order
        goes refunding, then refunded once the money went back (its
        enrollments end, its points come back: course_order's revoke).  With
        some lines only, the order stays paid and, once the money went
        back, the enrollments of those lines end and their share of the
        points spent comes back.  Never more than was paid, also under
        concurrent refunds (the order is locked first).  A number already
        used for this order returns its refund (idempotent retry).

        _button: called by course_order's Refund button, which moved the
        order to refunding already (the whole order is refunded).
        """
        pool = Pool()
        Order = pool.get('course.order')
        Party = pool.get('party.party')
        Payment = pool.get('course.payment')
        order = Order(int(order))
        # Locks first: the call restarts here, before any change or call
        lock_all_rows([(Order, [order]), (Party, [order.party])])
        if number is not None:
            existing = cls.search([('number', '=', number)], limit=1)
            if existing:
                refund, = existing
                if refund.order != order:
                    raise RefundError(gettext(
                            'course_payment.msg_refund_number_used',
                            number=number, order=refund.order.rec_name))
                return refund
        if order.state != ('refunding' if _button else 'paid') or (
                _button and lines is not None):
            raise RefundError(gettext(
                    'course_payment.msg_refund_order_state',
                    order=order.rec_name, state=order.state_string))
        remaining = cls.refundable_lines(order)
        if lines is None:
            lines = remaining
        lines = list(dict.fromkeys(lines))
        for line in lines:
            if line.order != order:
                raise RefundError(gettext(
                        'course_payment.msg_refund_line_other_order',
                        line=line.rec_name, order=order.rec_name))
            if line not in remaining:
                raise RefundError(gettext(
                        'course_payment.msg_refund_line_refunded',
                        line=line.rec_name))
        if not lines:
            raise RefundError(gettext(
                    'course_payment.msg_refund_nothing',
                    order=order.rec_name))
        full = set(lines) == set(remaining)
        payment = None
        if Payment.is_provider(order.pay_method):
            payment = cls.paid_payment(order)
            if payment is None:
                raise RefundError(gettext(
                        'course_payment.msg_refund_no_payment',
                        order=order.rec_name))
            paid = payment.amount
        else:
            paid = order.payable_amount
            if not full and not hasattr(
                    cls, f'_refund_partial_{order.pay_method}'):
                raise RefundError(gettext(
                        'course_payment.msg_refund_partial_method',
                        order=order.rec_name,
                        method=order.pay_method_string))
        amount = sum((l.amount for l in lines), Decimal(0))
        already = sum((r.amount for r in cls.search([
                            ('order', '=', order.id),
                            ('payment', '=', payment.id if payment else None),
                            ('state', 'in', ['pending', 'succeeded']),
                            ])), Decimal(0))
        if already + amount > paid:
            raise RefundError(gettext(
                    'course_payment.msg_refund_too_much',
                    order=order.rec_name, amount=amount,
                    refunded=already, paid=paid))
        refund, = cls.create([{
                    'order': order.id, 'company': order.company.id,
                    'payment': payment.id if payment else None,
                    'number': number or cls.next_number(order),
                    'amount': amount, 'reason': reason, 'full': full,
                    'lines': [('add', [l.id for l in lines])],
                    'request': int(request) if request else None,
                    }])
        if full and not _button:
            Order.write([order], {'refunded_by': acting_user()})
            Order._refunding([order])
        cls.execute([refund])
        return refund

    @classmethod
    def execute(cls, refunds):
        """Send the pending refunds: the provider for a provider payment, the
        method's own hooks otherwise; those done at once succeed"""
        pool = Pool()
        Payment = pool.get('course.payment')
        Order = pool.get('course.order')
        done = []
        for refund in refunds:
            if refund.payment:
                answer = Payment.provider(
                    'refund', refund.payment.method, refund)
                Payment.record_message(refund.payment, 'out', 'refund', {
                        'number': refund.number, 'amount': refund.amount,
                        'answer': answer}, verified=True)
                if answer not in {'succeeded', 'pending'}:
                    from .exceptions import ProviderError
                    raise ProviderError(gettext(
                            'course_payment.msg_provider_error',
                            method=refund.payment.method, action='refund',
                            error=repr(answer)[:200]))
                if answer == 'succeeded':
                    done.append(refund)
            elif refund.full:
                # course_order's hook of the method (wallet: the net paid
                # goes back; manual and free: staff give it back)
                with Transaction().set_context(
                        _course_payment_method_refund=True):
                    refunded = Order._payment_hook('refund', [refund.order])
                if refund.order in refunded:
                    done.append(refund)
            else:
                getattr(cls, f'_refund_partial_{refund.order.pay_method}')(
                    refund)
                done.append(refund)
        cls.succeed(done)

    @classmethod
    def _refund_partial_manual(cls, refund):
        "Staff give the money back outside the system"

    @classmethod
    def _refund_partial_free(cls, refund):
        "Nothing was paid"

    @classmethod
    def succeed(cls, refunds):
        """The money went back: revoke what the refunded lines gave (or the
        whole order), then update the payments"""
        pool = Pool()
        Order = pool.get('course.order')
        Payment = pool.get('course.payment')
        refunds = [r for r in refunds if r.state == 'pending']
        if not refunds:
            return
        partial = [r for r in refunds if not r.full and r.lines]
        # Before the state is written: the lines' hooks still see them live
        cls.revoke_lines(partial)
        cls.write(refunds, {'state': 'succeeded', 'refunded_at': now()})
        full = [r.order for r in refunds if r.full]
        if full:
            Order.refunded(full)
        Payment.update_refunded([r.payment for r in refunds if r.payment])

    @classmethod
    def revoke_lines(cls, refunds):
        """End the enrollments the lines of partial refunds gave and give
        back the time they added; modules add their part (points) with
        super()"""
        Enrollment = Pool().get('course.enrollment')
        lines = [l for r in refunds for l in r.lines]
        Enrollment.end_now(
            [e for l in lines for e in l.get_revoked_enrollments()])
        Enrollment.save(
            [e for l in lines for e in l.get_shortened_enrollments()])

    @classmethod
    @states_said()
    @ModelView.button
    def retry(cls, refunds):
        """Send the failed refunds again, with their numbers (the provider
        refunds a number once): a whole-order refund that failed leaves the
        order refunding until one goes through, a late payment's keeps the
        money listed.  A refusal again leaves them failed."""
        pool = Pool()
        Order = pool.get('course.order')
        lock_rows(Order, [r.order for r in refunds])
        failed = [r for r in cls.browse(refunds) if r.state == 'failed']
        for refund in failed:
            paid = (refund.payment.amount if refund.payment
                else refund.order.payable_amount)
            already = sum((r.amount for r in cls.search([
                                ('order', '=', refund.order.id),
                                ('payment', '=', refund.payment),
                                ('state', 'in', ['pending', 'succeeded']),
                                ])), Decimal(0))
            if already + refund.amount > paid:
                raise RefundError(gettext(
                        'course_payment.msg_refund_too_much',
                        order=refund.order.rec_name, amount=refund.amount,
                        refunded=already, paid=paid))
        if failed:
            cls.write(failed, {'state': 'pending', 'failure': None})
            try:
                cls.execute(failed)
            except Exception:
                # Also for a caller that goes on (the RPC call rolls back)
                cls.write(failed, {'state': 'failed'})
                raise

    @classmethod
    @states_said()
    @ModelView.button
    def check_status(cls, refunds):
        "Ask the provider about the pending refunds"
        cls.query(refunds)

    @classmethod
    def query(cls, refunds):
        """Ask the providers about the pending refunds: succeeded ones
        succeed, failed ones are marked failed (listed for staff)"""
        pool = Pool()
        Order = pool.get('course.order')
        Payment = pool.get('course.payment')
        refunds = [r for r in refunds if r.state == 'pending' and r.payment]
        lock_rows(Order, [r.order for r in refunds])
        done, failed = [], []
        for refund in cls.browse(refunds):
            answer = Payment.provider(
                'refund_query', refund.payment.method, refund)
            Payment.record_message(refund.payment, 'in', 'refund_query', {
                    'number': refund.number, 'answer': answer},
                verified=True)
            if answer == 'succeeded':
                done.append(refund)
            elif answer == 'failed':
                failed.append(refund)
        cls.succeed(done)
        if failed:
            cls.write(failed, {'state': 'failed'})


class RefundLine(RPCInputMixin, ModelSQL):
    "Course Payment Refund - Order Line"
    __name__ = 'course.payment.refund-course.order.line'
    refund = fields.Many2One(
        'course.payment.refund', "Refund", required=True, ondelete='CASCADE')
    line = fields.Many2One(
        'course.order.line', "Line", required=True, ondelete='RESTRICT')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('refund')


class RefundRequest(
        RPCInputMixin, WorkflowOnlyMixin, Workflow, CompanyMixin, ModelSQL,
        ModelView):
    "Course Refund Request"
    __name__ = 'course.payment.refund.request'

    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True,
        ondelete='RESTRICT')
    order = fields.Many2One(
        'course.order', "Order", required=True, readonly=True,
        ondelete='RESTRICT',
        context={'company': Eval('company', -1)}, depends={'company'})
    party = fields.Many2One(
        'party.party', "Student", required=True, readonly=True,
        ondelete='RESTRICT',
        context={'company': Eval('company', -1)}, depends={'company'})
    reason = fields.Text("Reason", required=True, readonly=True)
    state = fields.Selection([
            ('open', "Open"),
            ('approved', "Approved"),
            ('rejected', "Rejected"),
            ], "State", required=True, readonly=True, sort=False)
    state_string = state.translated('state')
    requested_by = fields.Many2One(
        'res.user', "Requested by", readonly=True, ondelete='RESTRICT',
        help="The user who entered the request (empty: the storefront).")
    requested_at = fields.DateTime("Requested at", readonly=True)
    decided_by = fields.Many2One(
        'res.user', "Decided by", readonly=True, ondelete='RESTRICT')
    decided_at = fields.DateTime("Decided at", readonly=True)
    rejection_reason = fields.Text("Rejection Reason", readonly=True)
    refund = fields.Many2One(
        'course.payment.refund', "Refund", readonly=True,
        ondelete='RESTRICT')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(
                t, (t.order, Index.Equality()), where=t.state == 'open'))
        cls._order = [('id', 'DESC')]
        cls._transitions |= {
            ('open', 'approved'),
            ('open', 'rejected'),
            }
        cls._buttons.update({
                'approve': {
                    'invisible': Eval('state') != 'open',
                    'icon': 'tryton-ok',
                    'depends': ['state'],
                    },
                'reject': {
                    'invisible': Eval('state') != 'open',
                    'icon': 'tryton-cancel',
                    'depends': ['state'],
                    },
                })
        cls.__rpc__.update({
                'request_refund': RPC(readonly=False, result=int),
                })

    @classmethod
    def default_state(cls):
        return 'open'

    @classmethod
    def _modification_error(cls, mode):
        if mode == 'create':
            from .exceptions import PaymentModificationError
            return PaymentModificationError(gettext(
                    'course_payment.msg_request_create_external'))
        return super()._modification_error(mode)

    @classmethod
    def request_refund(cls, order, reason):
        """A student asks for the refund of their paid order with a reason;
        return the id of the open request.

        Over RPC: the groups Course Sales or Course Administration (staff
        entering it for the student; the storefront calls it for the
        student later), on an order of the user's companies.  One open
        request per order (the order is locked while it is checked).
        """
        pool = Pool()
        Order = pool.get('course.order')
        check_caller(f'{cls.__name__}.request_refund', [
                'course.group_course_sales', 'course.group_course_admin'])
        order = check_record(Order, order, 'order')
        reason = check_text(reason, 'reason', max_length=REASON_SIZE)
        if not reason.strip():
            raise RefundRequestError(gettext(
                    'course_payment.msg_request_reason'))
        user = acting_user()
        with without_check_access():
            company = order.company
        if Transaction().check_access and user:
            User = pool.get('res.user')
            if company.id not in User.get_companies():
                raise RefundRequestError(gettext(
                        'course_payment.msg_request_company',
                        order=order.id))
        with without_check_access():
            lock_rows(Order, [order])
            if order.state != 'paid':
                raise RefundRequestError(gettext(
                        'course_payment.msg_request_order_state',
                        order=order.rec_name, state=order.state_string))
            if cls.search([
                        ('order', '=', order.id), ('state', '=', 'open'),
                        ], count=True):
                raise RefundRequestError(gettext(
                        'course_payment.msg_request_open',
                        order=order.rec_name))
            request, = cls.create([{
                        'order': order.id, 'company': company.id,
                        'party': order.party.id, 'reason': reason.strip(),
                        'requested_by': user, 'requested_at': now(),
                        }])
        return request.id

    @classmethod
    @guarded_button('open', error=RefundRequestError,
        message='course_payment.msg_request_state')
    @Workflow.transition('approved')
    def approve(cls, requests):
        "Staff approve: the whole order is refunded through its method"
        Refund = Pool().get('course.payment.refund')
        for request in requests:
            refund = Refund.refund_order(
                request.order, reason=request.reason, request=request)
            request.refund = refund
            request.decided_by = acting_user()
            request.decided_at = now()
        cls.save(requests)

    @classmethod
    @states_said(error=RefundRequestError,
        message='course_payment.msg_request_state')
    @ModelView.button_action(
        'course_payment.wizard_refund_request_reject')
    def reject(cls, requests):
        "Staff reject with a reason (the wizard asks for it)"

    @classmethod
    @guarded('open', error=RefundRequestError,
        message='course_payment.msg_request_state')
    @Workflow.transition('rejected')
    def do_reject(cls, requests, reason):
        reason = (reason or '').strip()
        if not reason:
            raise RefundRequestError(gettext(
                    'course_payment.msg_request_rejection_reason'))
        cls.write(requests, {
                'rejection_reason': reason,
                'decided_by': acting_user(),
                'decided_at': now(),
                })


class RejectStart(RPCInputMixin, ModelView):
    "Reject Refund Request"
    __name__ = 'course.payment.refund.request.reject.start'
    reason = fields.Text("Reason", required=True)


class RejectWizard(RPCInputMixin, Wizard):
    "Reject Refund Request"
    __name__ = 'course.payment.refund.request.reject'
    start = StateView(
        'course.payment.refund.request.reject.start',
        'course_payment.refund_request_reject_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Reject", 'reject', 'tryton-ok', default=True),
            ])
    reject = StateTransition()

    def transition_reject(self):
        Request = Pool().get('course.payment.refund.request')
        if getattr(self.model, '__name__', None) != Request.__name__:
            raise RefundRequestError(gettext(
                    'course_payment.msg_request_reject_wizard'))
        reason = check_text(self.start.reason, 'reason',
            max_length=REASON_SIZE)
        Request.do_reject(list(self.records), reason)
        return 'end'


class RefundStart(RPCInputMixin, ModelView):
    "Refund Order"
    __name__ = 'course.payment.refund.start'
    order = fields.Many2One('course.order', "Order", readonly=True)
    whole = fields.Boolean(
        "Whole Order",
        help="Refund every line not refunded yet; the order becomes "
        "refunded.")
    lines = fields.Many2Many(
        'course.order.line', None, None, "Lines",
        domain=[
            ('order', '=', Eval('order', -1)),
            ('id', 'in', Eval('refundable', [])),
            ],
        states={
            'invisible': Eval('whole', True),
            'required': ~Eval('whole', True),
            })
    refundable = fields.Many2Many(
        'course.order.line', None, None, "Refundable Lines", readonly=True)
    reason = fields.Text("Reason", required=True)


class RefundWizard(RPCInputMixin, Wizard):
    """Refund Order

    Course Administration only (the action's group): the whole order or
    chosen lines, through the order's payment method."""
    __name__ = 'course.payment.refund.wizard'
    start = StateView(
        'course.payment.refund.start',
        'course_payment.refund_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Refund", 'refund', 'tryton-ok', default=True),
            ])
    refund = StateTransition()

    def default_start(self, fields):
        Refund = Pool().get('course.payment.refund')
        order = self.order()
        return {
            'order': order.id,
            'whole': True,
            'lines': [],
            'refundable': [l.id for l in Refund.refundable_lines(order)],
            }

    def order(self):
        "The order the wizard runs on (launched from an order only)"
        if (getattr(self.model, '__name__', None) != 'course.order'
                or not self.record):
            raise RefundError(gettext('course_payment.msg_refund_wizard'))
        return self.record

    def transition_refund(self):
        Refund = Pool().get('course.payment.refund')
        self.order()
        reason = check_text(self.start.reason, 'reason',
            max_length=REASON_SIZE)
        lines = None if self.start.whole else list(self.start.lines)
        if lines is not None and not lines:
            raise RefundError(gettext(
                    'course_payment.msg_refund_nothing',
                    order=self.record.rec_name))
        Refund.refund_order(self.record, lines, reason=reason)
        return 'end'
