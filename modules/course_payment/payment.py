"""Payments with a provider: one record per attempt, the messages exchanged
with the provider, and the entry points a provider module calls.

A provider module (course_payment_alipay, later course_payment_wechat)
adds its method to `course.order`'s `pay_method` selection and implements,
on `course.payment`, the classmethods named after it (see doc/reference.rst):

    _provider_start_<m>(payment) -> dict (what the student is sent to)
    _provider_query_<m>(payment) -> dict {'state': 'paid'|'unpaid'|'unknown',
                                          'reference', 'buyer', 'amount',
                                          'paid_at'}
    _provider_close_<m>(payment)
    _provider_refund_<m>(refund) -> 'succeeded' | 'pending'
    _provider_refund_query_<m>(refund) -> 'succeeded'|'pending'|'failed'

A method is a provider method when `_provider_start_<m>` exists.
"""
import json
import logging
from decimal import Decimal

from trytond import backend
from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, Unique, fields
from trytond.modules.course.course import CompanyMixin
from trytond.modules.course.rpc import RPCInputMixin
from trytond.modules.course.tools import (
    check_caller, check_record, company_language, lock_all_rows, lock_rows,
    now, save_checked, states_said, write_checked)
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.rpc import RPC
from trytond.transaction import (
    Transaction, TransactionError, without_check_access)

from .exceptions import PaymentError, PaymentModificationError, ProviderError

logger = logging.getLogger(__name__)

STATES = [
    ('pending', "Pending"),
    ('succeeded', "Succeeded"),
    ('failed', "Failed"),
    ('cancelled', "Cancelled"),
    ('late', "Late"),
    ('refunded', "Refunded"),
    ('partially_refunded', "Partially Refunded"),
    ]
# States of a payment whose money the company holds (or held)
RECEIVED = {'succeeded', 'late', 'refunded', 'partially_refunded'}
# States a provider's "paid" can still move
OPEN = {'pending', 'failed', 'cancelled'}
QUERY_ANSWERS = {'paid', 'unpaid', 'unknown'}


def dump(payload):
    "The payload as the text stored on a message"
    if isinstance(payload, str):
        return payload
    try:
        return json.dumps(
            payload, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(payload)


def modification_error(Model, mode):
    "The error refusing a user's mode (create, write, delete, copy)"
    return PaymentModificationError(gettext(
            f'course_payment.msg_modify_{mode}',
            model=Model.__names__()['model']))


class WorkflowOnlyMixin:
    """Records only the payment workflow writes: a user's create, write,
    delete or copy (over RPC, whatever the group) is refused"""
    __slots__ = ()

    @classmethod
    def _modification_error(cls, mode):
        return modification_error(cls, mode)

    @classmethod
    def create(cls, vlist):
        # Refused before validation (as course.order does): a user's call
        # would otherwise be told to fill in the read-only fields
        if Transaction().check_access:
            raise cls._modification_error('create')
        return super().create(vlist)

    @classmethod
    def check_modification(cls, mode, records, values=None, external=False):
        super().check_modification(
            mode, records, values=values, external=external)
        if external and (mode == 'create' or (records and (
                        mode != 'write' or values))):
            raise cls._modification_error(mode)

    @classmethod
    def copy(cls, records, default=None):
        if records and Transaction().check_access:
            raise cls._modification_error('copy')
        return super().copy(records, default=default)


class Payment(
        RPCInputMixin, WorkflowOnlyMixin, CompanyMixin, ModelSQL, ModelView):
    "Course Payment"
    __name__ = 'course.payment'
    _rec_name = 'reference'

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
    method = fields.Selection(
        'get_methods', "Method", required=True, readonly=True)
    method_string = method.translated('method')
    state = fields.Selection(
        STATES, "State", required=True, readonly=True, sort=False)
    state_string = state.translated('state')
    amount = fields.Numeric(
        "Amount", digits='currency', required=True, readonly=True,
        help="What the student pays (or paid) in this attempt.")
    reference = fields.Char(
        "Provider Trade ID", readonly=True,
        help="The provider's number of the trade.")
    buyer = fields.Char(
        "Buyer", readonly=True, help="The buyer's id at the provider.")
    paid_at = fields.DateTime("Paid at", readonly=True)
    late = fields.Boolean(
        "Late", readonly=True,
        help="The money arrived for an order that was no longer unpaid: it "
        "is refunded, never kept.")
    refunded_amount = fields.Function(fields.Numeric(
            "Refunded", digits='currency'), 'get_refunded_amount')
    messages = fields.One2Many(
        'course.payment.message', 'payment', "Messages", readonly=True)
    refunds = fields.One2Many(
        'course.payment.refund', 'payment', "Refunds", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('method_reference_unique', Unique(t, t.method, t.reference),
                'course_payment.msg_payment_reference_unique'),
            ]
        cls._sql_indexes.update({
                Index(t, (t.order, Index.Equality())),
                Index(
                    t, (t.state, Index.Equality(cardinality='low')),
                    where=t.state.in_(['pending', 'late'])),
                })
        cls._order = [('id', 'DESC')]
        cls.__rpc__.update({
                'pay': RPC(readonly=False),
                })
        cls._buttons.update({
                'check_status': {
                    'invisible': Eval('state') != 'pending',
                    'icon': 'tryton-refresh',
                    'depends': ['state'],
                    },
                })

    @classmethod
    def default_state(cls):
        return 'pending'

    @classmethod
    def default_late(cls):
        return False

    @fields.depends('company')
    def on_change_with_currency(self, name=None):
        return self.company.currency if self.company else None

    def get_rec_name(self, name):
        return f'{self.order.rec_name} / {self.reference or self.id}'

    @classmethod
    def get_methods(cls):
        "The provider methods among the orders' payment methods"
        Order = Pool().get('course.order')
        return [(None, '')] + [
            (m, s) for m, s in Order.pay_method.selection
            if cls.is_provider(m)]

    @classmethod
    def is_provider(cls, method):
        "Is method served by a provider module (through course.payment)?"
        return bool(method) and hasattr(cls, f'_provider_start_{method}')

    @classmethod
    def get_refunded_amount(cls, payments, name):
        Refund = Pool().get('course.payment.refund')
        result = {p.id: Decimal(0) for p in payments}
        for refund in Refund.search([
                    ('payment', 'in', [p.id for p in payments]),
                    ('state', '=', 'succeeded'),
                    ]):
            result[refund.payment.id] += refund.amount
        return result

    # ---- Calling the provider ---------------------------------------------

    @classmethod
    def provider(cls, action, method, *args):
        """Call the provider hook `_provider_<action>_<method>(*args)`.

        Any failure of the provider (network, timeout, garbage, a bug)
        becomes a ProviderError with a clear message, so the caller's
        transaction is rolled back: nothing is marked paid, closed or
        refunded.  Lock errors and restarts go through untouched.
        """
        hook = getattr(cls, f'_provider_{action}_{method}', None)
        if hook is None:
            raise ProviderError(gettext(
                    'course_payment.msg_provider_missing',
                    method=method, action=action))
        try:
            return hook(*args)
        except (TransactionError, backend.DatabaseOperationalError):
            raise
        except UserError:
            raise
        except Exception as error:
            logger.exception("payment provider %s failed to %s", method,
                action)
            text = str(error) or type(error).__name__
            raise ProviderError(gettext(
                    'course_payment.msg_provider_error',
                    method=method, action=action, error=text[:200]))

    @classmethod
    def record_message(cls, payment, direction, api, payload,
            verified=False):
        """Record a message exchanged with the provider on payment
        (direction 'in' or 'out'); return it.  Provider modules call it
        for every message in and out."""
        Message = Pool().get('course.payment.message')
        message = Message(
            payment=int(payment), direction=direction, api=api,
            payload=dump(payload), verified=bool(verified), date=now())
        # A record of what was exchanged, made here from checked values:
        # not validated and read back field by field
        save_checked(Message, [message])
        return message

    # ---- Entry points ------------------------------------------------------

    @classmethod
    def start(cls, order):
        """Start (or start again) paying the unpaid order with its provider
        method; return what the provider answers (e.g. {'url': …}).

        Paying again reuses the pending payment of the order, so the
        provider sees the same trade."""
        pool = Pool()
        Order = pool.get('course.order')
        order = Order(int(order))
        lock_rows(Order, [order])
        if not cls.is_provider(order.pay_method):
            raise PaymentError(gettext(
                    'course_payment.msg_start_not_provider',
                    order=order.rec_name, method=order.pay_method_string))
        if order.state != 'unpaid' or (
                order.pay_deadline and order.pay_deadline <= now()):
            raise PaymentError(gettext(
                    'course_payment.msg_start_not_unpaid',
                    order=order.rec_name, state=order.state_string))
        payment = cls.get_pending(order)
        if payment is None:
            payment = cls.create_pending(order)
        answer = cls.provider('start', payment.method, payment)
        cls.record_message(payment, 'out', 'start', answer, verified=True)
        return answer

    @classmethod
    def pay(cls, order):
        """Start (or start again) paying the unpaid order with its provider
        method: return what the student is sent to (e.g. {'url': …}).

        The door over RPC: the groups Course Sales or Course Administration
        (staff paying for a student; the storefront calls start for its
        student), on an order of the user's companies."""
        pool = Pool()
        Order = pool.get('course.order')
        User = pool.get('res.user')
        check_caller(f'{cls.__name__}.pay', [
                'course.group_course_sales', 'course.group_course_admin'])
        order = check_record(Order, order, 'order')
        external = Transaction().check_access and Transaction().user
        with without_check_access():
            if external and order.company.id not in User.get_companies():
                raise PaymentError(gettext(
                        'course_payment.msg_pay_company', order=order.id))
            return cls.start(order)

    @classmethod
    def _payment_values(cls, order, method=None):
        return {
            'order': order.id, 'party': order.party.id,
            'company': order.company.id,
            'method': method or order.pay_method,
            'amount': order.payable_amount, 'state': 'pending',
            }

    @classmethod
    def create_pending(cls, order, method=None):
        """Create the pending payment of the order with its method (default
        the order's); values of the locked order, saved without reading
        them back (save_checked)"""
        payment = cls(**cls._payment_values(order, method))
        save_checked(cls, [payment])
        return payment

    @classmethod
    def get_pending(cls, order, method=None):
        "The pending payment of the order with its method, or None"
        payments = cls.search([
                ('order', '=', order.id),
                ('method', '=', method or order.pay_method),
                ('state', '=', 'pending'),
                ], order=[('id', 'DESC')], limit=1)
        return payments[0] if payments else None

    @classmethod
    def succeed(cls, order, method, amount, reference, buyer=None,
            paid_at=None):
        """The provider confirmed (verified message or query) that amount
        was paid for order under reference; return the payment.

        Idempotent: a replayed confirmation of the same trade changes
        nothing.  An unpaid order is paid (course.order.pay, which fulfils
        it).  Money for an order that is no longer unpaid (cancelled,
        expired, already paid by another trade) or of another amount is
        recorded as a late payment and refunded in full through the
        provider at once; a refund the provider refuses stays failed and
        listed for staff.  The order is locked first, so a confirmation
        racing the expiry job or a cancellation gives one outcome.
        """
        pool = Pool()
        Order = pool.get('course.order')
        Party = pool.get('party.party')
        order = Order(int(order))
        # Lock first: the call restarts here, before anything is written
        lock_all_rows([(Order, [order]), (Party, [order.party])])
        if not cls.is_provider(method):
            raise PaymentError(gettext(
                    'course_payment.msg_start_not_provider',
                    order=order.rec_name, method=method))
        # In one query: the payment of this trade (a replay), and the
        # attempts of the order still open
        found = cls.search(['OR', [
                    ('method', '=', method), ('reference', '=', reference),
                    ], [
                    ('order', '=', order.id), ('method', '=', method),
                    ('state', 'in', list(OPEN)),
                    ]], order=[('id', 'DESC')])
        existing = [p for p in found
            if p.method == method and p.reference == reference]
        if existing:
            payment = existing[0]
            if payment.state not in OPEN:
                return payment  # replayed
        else:
            # The attempt the student started (the newest), even if
            # closed since
            payment = found[0] if found else None
            if payment is None:
                payment = cls.create_pending(order, method)
        currency = order.currency
        amount = currency.round(Decimal(amount))
        values = {
            'reference': reference, 'buyer': buyer,
            'paid_at': paid_at or now(), 'amount': amount,
            }
        # Values decided here: one UPDATE, not write()'s reads around it
        if order.state == 'unpaid' and amount == order.payable_amount:
            values['state'] = 'succeeded'
            write_checked(cls, [payment], values)
            Order.pay([order])
        else:
            values.update(state='late', late=True)
            write_checked(cls, [payment], values)
            logger.warning(
                "late payment %s of %s for order %s (%s): refunded",
                reference, amount, order.number, order.state)
            cls.refund_late([payment])
        return payment

    @classmethod
    def refund_late(cls, payments):
        """Refund late payments in full through their provider; a refusal of
        the provider leaves the refund failed (listed for staff)"""
        Refund = Pool().get('course.payment.refund')
        for payment in payments:
            if payment.state != 'late':
                continue
            if Refund.search([
                        ('payment', '=', payment.id),
                        ('state', 'in', ['pending', 'succeeded']),
                        ], count=True):
                continue
            refund, = Refund.create([{
                        'order': payment.order.id,
                        'company': payment.company.id,
                        'payment': payment.id,
                        'amount': payment.amount - payment.refunded_amount,
                        'number': Refund.next_number(payment.order),
                        'reason': gettext('course_payment.msg_late_reason',
                            company_language(payment.company)),
                        'full': False,
                        }])
            try:
                Refund.execute([refund])
            except ProviderError as error:
                Refund.write([refund], {
                        'state': 'failed', 'failure': error.message})

    @classmethod
    def fail(cls, payments):
        "The provider says the pending payments will not be paid (closed)"
        cls.write([p for p in payments if p.state == 'pending'],
            {'state': 'failed'})

    @classmethod
    def query(cls, payments):
        """Ask the provider about the pending payments; a paid one goes
        through succeed.  Return {payment: 'paid', 'unpaid' or 'unknown'}."""
        answers = {}
        for payment in payments:
            if payment.state != 'pending':
                answers[payment] = (
                    'paid' if payment.state in RECEIVED else 'unpaid')
                continue
            result = cls.provider('query', payment.method, payment)
            state = result.get('state') if isinstance(result, dict) else None
            if state not in QUERY_ANSWERS:
                raise ProviderError(gettext(
                        'course_payment.msg_provider_error',
                        method=payment.method, action='query',
                        error=repr(result)[:200]))
            cls.record_message(payment, 'in', 'query', result, verified=True)
            if state == 'paid':
                cls.succeed(
                    payment.order, payment.method,
                    result.get('amount', payment.amount),
                    result.get('reference') or payment.reference,
                    buyer=result.get('buyer'), paid_at=result.get('paid_at'))
            answers[payment] = state
        return answers

    @classmethod
    @states_said()
    @ModelView.button
    def check_status(cls, payments):
        "Staff ask the provider whether the pending payments are paid"
        Order = Pool().get('course.order')
        lock_rows(Order, [p.order for p in payments])
        cls.query([p for p in payments if p.state == 'pending'])

    @classmethod
    def close(cls, payments):
        "Close the pending payments at the provider (cancel, expiry)"
        for payment in payments:
            if payment.state != 'pending':
                continue
            answer = cls.provider('close', payment.method, payment)
            cls.record_message(payment, 'out', 'close', answer or {},
                verified=True)
        cls.write([p for p in payments if p.state == 'pending'],
            {'state': 'cancelled'})

    @classmethod
    def update_refunded(cls, payments):
        """Set the state of payments from their succeeded refunds"""
        for payment in cls.browse([p.id for p in payments]):
            refunded = payment.refunded_amount
            if refunded <= 0:
                continue
            if refunded >= payment.amount:
                state = 'refunded'
            elif payment.state == 'late':
                continue
            else:
                state = 'partially_refunded'
            if payment.state != state:
                cls.write([payment], {'state': state})


class PaymentMessage(RPCInputMixin, WorkflowOnlyMixin, ModelSQL, ModelView):
    "Course Payment Message"
    __name__ = 'course.payment.message'
    payment = fields.Many2One(
        'course.payment', "Payment", required=True, readonly=True,
        ondelete='RESTRICT')
    direction = fields.Selection([
            ('in', "In"),
            ('out', "Out"),
            ], "Direction", required=True, readonly=True)
    api = fields.Char("API", required=True, readonly=True,
        help="The provider's API or the kind of message (notify, return, "
        "query, close, refund, …).")
    payload = fields.Text("Payload", readonly=True,
        help="The message as sent or received.")
    verified = fields.Boolean("Verified", readonly=True,
        help="The signature of the message was verified (messages in).")
    date = fields.DateTime("Date", required=True, readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('payment')
        cls._order = [('date', 'ASC'), ('id', 'ASC')]

    @classmethod
    def default_verified(cls):
        return False

    @classmethod
    def check_modification(cls, mode, messages, values=None, external=False):
        super().check_modification(
            mode, messages, values=values, external=external)
        if mode in {'write', 'delete'} and messages:
            # Never changed, even by code: they are the evidence
            raise PaymentModificationError(gettext(
                    'course_payment.msg_message_immutable'))

    @classmethod
    def copy(cls, messages, default=None):
        if messages:
            raise modification_error(cls, 'copy')
        return super().copy(messages, default=default)
