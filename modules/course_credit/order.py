"""Orders with credit points (a discount step) and wallet payments.

The credit discount goes to the lines whose course has a credit cap, in
proportion to what they still cost after the coupons; the points are spent
(a ledger movement) in the checkout transaction and given back when the
order is cancelled, expires or is refunded.
"""
from decimal import ROUND_DOWN, Decimal

from trytond.i18n import gettext
from trytond.model import fields
from trytond.modules.course.tools import (
    check_int, company_language, in_group, move_where)
from trytond.modules.course_order.exceptions import CheckoutError
from trytond.pool import Pool, PoolMeta

from .exceptions import LedgerError
from .tools import MAX_POINTS, points_step, points_value


class Order(metaclass=PoolMeta):
    __name__ = 'course.order'
    credit_points = fields.Function(fields.Integer(
            "Credit Points",
            help="The credit points spent on the order."),
        'get_credit_points')
    credit_ratio = fields.Integer(
        "Credit Ratio", required=True, readonly=True,
        help="The credit points worth one unit of the currency when the "
        "order was placed.")
    credit_earn_rate = fields.Numeric(
        "Credit Earn Rate", digits=(16, 4), required=True, readonly=True,
        help="The share of the paid amount the order earns as points, as "
        "configured when it was placed.")
    credit_movements = fields.One2Many(
        'course.credit.movement', 'order', "Credit Movements", readonly=True)
    wallet_movements = fields.One2Many(
        'course.wallet.movement', 'order', "Wallet Movements", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        if 'wallet' not in dict(cls.pay_method.selection):
            cls.pay_method.selection.append(('wallet', "Wallet"))

    @classmethod
    def default_credit_ratio(cls):
        Configuration = Pool().get('course.configuration')
        return Configuration(1).get_credit_ratio()

    @classmethod
    def default_credit_earn_rate(cls):
        Configuration = Pool().get('course.configuration')
        return Configuration(1).get_credit_earn_rate()

    @classmethod
    def check_modification(cls, mode, orders, values=None, external=False):
        super().check_modification(
            mode, orders, values=values, external=external)
        if (mode == 'write' and external
                and values.keys() & {'credit_ratio', 'credit_earn_rate'}):
            raise LedgerError(gettext(
                    'course_credit.msg_order_credit_terms',
                    order=orders[0].rec_name if orders else ''))

    @classmethod
    def copy(cls, orders, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('credit_movements', None)
        default.setdefault('wallet_movements', None)
        return super().copy(orders, default=default)

    @classmethod
    def get_credit_points(cls, orders, name):
        Credit = Pool().get('course.credit.movement')
        totals = Credit.totals_by_order(orders)
        return {o.id: -totals[o.id].get('spend', 0) for o in orders}

    # ---- Checkout ---------------------------------------------------------

    @classmethod
    def _get_discount_steps(cls):
        return super()._get_discount_steps() + [(30, 'credit')]

    @classmethod
    def checkout_validate(cls, checkout):
        """Take the credit option: a whole number of points, 0 by default.

        Spending a student's points or paying from their wallet is money of
        the student: a user's call (checkout.external) needs the group
        Course Administration."""
        points = check_int(
            checkout.options.pop('credit', 0), 'credit', 0, MAX_POINTS)
        if (checkout.external and (points or checkout.pay_method == 'wallet')
                and not in_group('course.group_course_admin')):
            raise CheckoutError(gettext(
                    'course_credit.msg_checkout_credit_rights'))
        state = checkout.namespace('course_credit')
        state.points = points
        state.discount = None
        if points:
            checkout.families.add('credit')
        super().checkout_validate(checkout)

    @classmethod
    def checkout_order(cls, checkout):
        "Record the credit terms of the order as configured now"
        super().checkout_order(checkout)
        checkout.order.credit_ratio = cls.default_credit_ratio()
        checkout.order.credit_earn_rate = cls.default_credit_earn_rate()

    @classmethod
    def checkout_discount_credit(cls, checkout):
        """Take the points off the lines of the courses with a credit cap.

        The points must be worth a whole amount of the currency (refused
        otherwise, naming the nearest numbers that are).  The most usable is
        min(balance, Σ caps of the selected courses, what those lines still
        cost × ratio), down to such a number; more is refused, not cut.
        A preview records the most usable even without points.
        """
        state = checkout.namespace('course_credit')
        points = state.points
        if not points and not checkout.preview:
            return
        order = checkout.order
        ratio = order.credit_ratio
        step = points_step(order.currency, ratio)
        if points % step:
            below = points - points % step
            raise CheckoutError(gettext(
                    'course_credit.msg_checkout_credit_inexact',
                    points=points, value=points_value(points, ratio),
                    ratio=ratio, below=below, above=below + step))
        # Only the lines of a product with a credit cap
        lines = [l for l in checkout.lines if cls._credit_cap(l) > 0]
        limits = cls._credit_limits(checkout, lines)
        maximum = max(min(limits.values()), 0)
        maximum -= maximum % step
        state.balance, state.maximum = limits['balance'], maximum
        if not points:
            return
        if points > maximum:
            raise CheckoutError(gettext(
                    'course_credit.msg_checkout_credit_too_many',
                    points=points, maximum=maximum, **limits))
        state.discount = checkout.add_discount(
            'credit', points_value(points, ratio), lines,
            gettext('course_credit.msg_credit_discount',
                company_language(checkout.order.company), points=points))

    @classmethod
    def _credit_cap(cls, line):
        """The most points a student may spend on a checkout line: its
        course's cap (0: none); a module selling something else extends it
        with super()"""
        return line.course.credit if line.course else 0

    @classmethod
    def _credit_limits(cls, checkout, lines):
        """The limits of the points usable on lines: {'balance', 'cap' (Σ
        the courses' caps), 'payable' (what the lines still cost in
        points)}"""
        Credit = Pool().get('course.credit.movement')
        order = checkout.order
        # The checkout locks the party: the balance cannot move (a preview
        # reads it as it is now)
        balance = Credit.get_balances(
            [checkout.party], order.company.id)[checkout.party.id]
        remaining = sum((checkout.remaining[l] for l in lines), Decimal(0))
        return {
            'balance': balance,
            'cap': sum(cls._credit_cap(l) for l in lines),
            'payable': int((remaining * order.credit_ratio).to_integral_value(
                    ROUND_DOWN)),
            }

    @classmethod
    def checkout_preview_info(cls, checkout):
        "Add `credit`: the student's balance, the ratio and the most usable"
        info = super().checkout_preview_info(checkout)
        state = checkout.namespace('course_credit')
        info['credit'] = {
            'balance': state.balance,
            'ratio': checkout.order.credit_ratio,
            'max_usable': state.maximum,
            }
        return info

    @classmethod
    def checkout_reserve(cls, checkout):
        "Spend the points, linked to the order, in the checkout transaction"
        pool = Pool()
        Credit = pool.get('course.credit.movement')
        Discount = pool.get('course.order.discount')
        super().checkout_reserve(checkout)
        state = checkout.namespace('course_credit')
        points = state.points
        if not points:
            return
        movement, = Credit.record_for_orders(
            [(checkout.order, 'spend', -points)])
        # One UPDATE: the ORM's write would validate and read the discount
        # again, saved a moment ago by the checkout
        move_where(Discount, lambda t: t.id == state.discount.id,
            {'origin': str(movement)})

    # ---- Wallet payment ---------------------------------------------------

    @classmethod
    def _payment_start_wallet(cls, orders):
        """Pay the unpaid orders from the wallet at once; refused when the
        balance is short (the ledger checks it under the party lock)"""
        pool = Pool()
        Wallet = pool.get('course.wallet.movement')
        orders = [o for o in orders if o.state == 'unpaid']
        totals = Wallet.totals_by_order(orders)
        entries = []
        for order in orders:
            owed = order.payable_amount + sum(
                totals[order.id].values(), Decimal(0))
            if owed > 0:
                entries.append((order, 'pay', -owed))
        Wallet.record_for_orders(entries)
        if orders:
            cls.pay(orders)

    @classmethod
    def _payment_refund_wallet(cls, orders):
        "Credit the wallet back with what the orders took; all done at once"
        pool = Pool()
        Wallet = pool.get('course.wallet.movement')
        totals = Wallet.totals_by_order(orders)
        Wallet.record_for_orders([
                (o, 'refund', -net) for o in orders
                if (net := sum(totals[o.id].values(), Decimal(0))) < 0])
        return orders

    # ---- Ends of an order -------------------------------------------------

    @classmethod
    def fulfil(cls, orders):
        super().fulfil(orders)
        cls.credit_earn(orders)

    @classmethod
    def release(cls, orders):
        super().release(orders)
        cls.credit_give_back(orders)

    @classmethod
    def revoke(cls, orders):
        super().revoke(orders)
        cls.credit_give_back(orders)
        cls.credit_take_back_earned(orders)

    @classmethod
    def credit_give_back(cls, orders):
        """Refund the points the orders spent and still hold; idempotent
        (compares with the order's spend and refund movements)"""
        pool = Pool()
        Credit = pool.get('course.credit.movement')
        totals = Credit.totals_by_order(orders)
        entries = []
        for order in orders:
            held = -(totals[order.id].get('spend', 0)
                + totals[order.id].get('refund', 0))
            if held > 0:
                entries.append((order, 'refund', held))
        Credit.record_for_orders(entries)

    @classmethod
    def credit_to_earn(cls, order):
        """The points a paid order earns: its earn rate of the paid amount,
        at its credit ratio, rounded down"""
        return int((order.payable_amount * order.credit_earn_rate
                * order.credit_ratio).to_integral_value(ROUND_DOWN))

    @classmethod
    def credit_earn(cls, orders):
        "Give the points earned by paid orders; once per order"
        pool = Pool()
        Credit = pool.get('course.credit.movement')
        totals = Credit.totals_by_order(orders)
        entries = []
        for order in orders:
            if 'earn' in totals[order.id]:
                continue
            points = cls.credit_to_earn(order)
            if points > 0:
                entries.append((order, 'earn', points))
        Credit.record_for_orders(entries)

    @classmethod
    def credit_take_back_earned(cls, orders):
        """Take back the points the refunded orders earned, as far as the
        balance allows (it never goes below zero; the note says what could
        not be taken back)"""
        pool = Pool()
        Credit = pool.get('course.credit.movement')
        totals = Credit.totals_by_order(orders)
        earned = {o: totals[o.id].get('earn', 0) for o in orders}
        earned = {o: p for o, p in earned.items() if p > 0}
        if not earned:
            return
        balances = Credit._ledger_balances(
            {(o.party.id, o.company.id) for o in earned})
        entries = []
        for order, points in earned.items():
            key = (order.party.id, order.company.id)
            taken = min(points, balances[key])
            if taken <= 0:
                continue
            balances[key] -= taken
            note = None
            if taken < points:
                language = company_language(order.company)
                note = gettext(
                    'course_credit.msg_note_earn_short', language,
                    note=gettext(
                        'course_credit.msg_note_order', language,
                        order=order.number),
                    points=points - taken)
            entries.append((order, 'earn', -taken, note))
        Credit.record_for_orders(entries)


class OrderDiscount(metaclass=PoolMeta):
    __name__ = 'course.order.discount'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        if 'credit' not in dict(cls.kind.selection):
            cls.kind.selection.append(('credit', "Credit Points"))

    @classmethod
    def _get_origin(cls):
        return super()._get_origin() + ['course.credit.movement']
