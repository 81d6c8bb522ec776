"Course orders: checkout pipeline, workflow, expiry"
import datetime as dt
import logging
from collections import defaultdict
from decimal import Decimal
from types import SimpleNamespace

from sql.conditionals import Coalesce

from trytond.i18n import gettext
from trytond.model import (
    Index, ModelSQL, ModelView, Unique, Workflow, fields)
from trytond.modules.course.tools import (
    allocate, clear_cache, guarded, in_max, in_new_transaction, lock_rows,
    log_transitions, move_state, now, round_amount, try_lock_rows)
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.rpc import RPC
from trytond.tools import grouped_slice, reduce_ids
from trytond.transaction import Transaction

from .exceptions import CheckoutError, OrderStateError

logger = logging.getLogger(__name__)


STATES = [
    ('unpaid', "Unpaid"),
    ('paid', "Paid"),
    ('cancelled', "Cancelled"),
    ('expired', "Expired"),
    ('refunding', "Refunding"),
    ('refunded', "Refunded"),
    ]


def order_guarded(*from_states):
    "Lock the orders, then refuse any whose state is not in from_states"
    return guarded(
        *from_states, error=OrderStateError,
        message='course_order.msg_order_wrong_state')


class Checkout:
    """What one checkout call is building, passed through the steps.

    Modules read the request (`party`, `items`, `options`) and fill in
    what they own: `order`, `lines`, `discounts`; `remaining` holds what
    each line still costs after the discounts applied so far.  What a
    module keeps between its steps goes in its own namespace,
    `checkout.namespace('<module>')`.
    """

    def __init__(self, party, items, pay_method, options):
        self.party = party
        self.items = items
        self.pay_method = pay_method
        self.options = dict(options)
        self.order = None
        self.lines = []
        self.prices = []
        self.discounts = []
        self.discount_lines = []
        self.families = set()
        self.remaining = {}
        self._namespaces = {}
        # Who asks: a user's call through RPC (access checked) or code
        transaction = Transaction()
        self.external = bool(transaction.check_access)
        self.user = transaction.user

    def namespace(self, module):
        "The attributes a module keeps on this checkout (created empty)"
        return self._namespaces.setdefault(module, SimpleNamespace())

    @property
    def currency(self):
        return self.order.currency

    @property
    def total(self):
        return sum((l.unit_price for l in self.lines), Decimal(0))

    @property
    def payable(self):
        return sum(self.remaining.values(), Decimal(0))

    def add_discount(self, kind, amount, lines, description, origin=None):
        """Apply amount off lines, shared in proportion to what they still
        cost, and return the discount record (saved with the order).

        The amount is capped at what the lines still cost: a discount never
        makes a line negative.
        """
        pool = Pool()
        Discount = pool.get('course.order.discount')
        available = sum(
            (self.remaining[l] for l in lines), Decimal(0))
        amount = min(round_amount(self.currency, amount), available)
        shares = allocate(
            [self.remaining[l] for l in lines], amount, self.currency)
        for line, share in zip(lines, shares):
            self.remaining[line] -= share
        discount = Discount(
            kind=kind, amount=amount, description=description,
            origin=origin, sequence=len(self.discounts) + 1)
        self.discounts.append(discount)
        self.discount_lines.append(list(lines))
        return discount


class Order(Workflow, ModelSQL, ModelView):
    "Course Order"
    __name__ = 'course.order'
    _rec_name = 'number'

    _readonly = {'readonly': True}

    number = fields.Char("Number", readonly=True)
    party = fields.Many2One(
        'party.party', "Student", required=True, readonly=True,
        context={'company': Eval('company', -1)}, depends={'company'})
    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    currency = fields.Many2One(
        'currency.currency', "Currency", required=True, readonly=True)
    state = fields.Selection(
        STATES, "State", readonly=True, required=True, sort=False)
    state_string = state.translated('state')
    lines = fields.One2Many(
        'course.order.line', 'order', "Lines", readonly=True)
    discounts = fields.One2Many(
        'course.order.discount', 'order', "Discounts", readonly=True)
    title = fields.Function(fields.Char("Title"), 'get_title')
    total_amount = fields.Numeric(
        "Total", digits='currency', readonly=True, required=True,
        help="The sum of the lines' unit prices.")
    discount_amount = fields.Numeric(
        "Discount", digits='currency', readonly=True, required=True)
    payable_amount = fields.Numeric(
        "Payable", digits='currency', readonly=True, required=True)
    pay_method = fields.Selection([
            ('free', "Free"),
            ('manual', "Manual"),
            ], "Payment Method", required=True, readonly=True)
    pay_method_string = pay_method.translated('pay_method')
    pay_deadline = fields.DateTime("Payment Deadline", readonly=True)
    paid_at = fields.DateTime("Paid at", readonly=True)
    cancelled_at = fields.DateTime(
        "Cancelled at", readonly=True,
        help="When the order was cancelled or expired.")
    refunded_at = fields.DateTime("Refunded at", readonly=True)
    enrollments = fields.One2Many(
        'course.enrollment', 'order', "Enrollments", readonly=True)
    order_date = fields.Function(
        fields.DateTime("Date"), 'get_order_date',
        searcher='search_order_date')
    payment_query_failures = fields.Integer(
        "Failed Payment Queries", readonly=True,
        help="How many runs of the expiry job could not learn from the "
        "payment method whether the order is paid.")
    payment_unknown = fields.Function(fields.Boolean(
            "Payment Unknown",
            help="The order is past its deadline but its payment method "
            "could not say whether it is paid, after the number of tries "
            "of the configuration: staff check it with the provider."),
        'get_payment_unknown', searcher='search_payment_unknown')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            # Each company numbers its orders with its own sequence
            ('company_number_unique', Unique(t, t.company, t.number),
                'course_order.msg_order_number_unique'),
            ]
        cls._sql_indexes.update({
                Index(
                    t, (t.state, Index.Equality(cardinality='low')),
                    (t.pay_deadline, Index.Range()),
                    where=t.state == 'unpaid'),
                Index(t, (t.party, Index.Equality())),
                })
        cls._order = [('id', 'DESC')]
        cls._transitions |= {
            ('unpaid', 'paid'),
            ('unpaid', 'cancelled'),
            ('unpaid', 'expired'),
            ('paid', 'refunding'),
            ('paid', 'refunded'),
            ('refunding', 'refunded'),
            }
        cls._buttons.update({
                'cancel': {
                    'invisible': Eval('state') != 'unpaid',
                    'depends': ['state'],
                    },
                'confirm_payment': {
                    'invisible': ((Eval('state') != 'unpaid')
                        | (Eval('pay_method') != 'manual')),
                    'icon': 'tryton-ok',
                    'depends': ['state', 'pay_method'],
                    },
                'refund': {
                    'invisible': Eval('state') != 'paid',
                    'icon': 'tryton-undo',
                    'depends': ['state'],
                    },
                })
        cls.__rpc__.update({
                'checkout': RPC(readonly=False, result=int),
                })

    @classmethod
    def default_state(cls):
        return 'unpaid'

    @classmethod
    def default_company(cls):
        return Transaction().context.get('company')

    @classmethod
    def default_payment_query_failures(cls):
        return 0

    def get_title(self, name):
        names = [l.course.rec_name for l in self.lines if l.course]
        if len(names) <= 1:
            return names[0] if names else ''
        return gettext(
            'course_order.msg_order_title', first=names[0],
            count=len(names))

    def get_order_date(self, name):
        return self.create_date.replace(microsecond=0)

    @classmethod
    def search_order_date(cls, name, clause):
        return [('create_date',) + tuple(clause[1:])]

    @classmethod
    def order_order_date(cls, tables):
        table, _ = tables[None]
        return [table.create_date]

    @classmethod
    def get_payment_unknown(cls, orders, name):
        attempts = cls._expiry_query_attempts()
        return {
            o.id: o.state == 'unpaid'
            and (o.payment_query_failures or 0) >= attempts
            for o in orders}

    @classmethod
    def search_payment_unknown(cls, name, clause):
        _, operator, value = clause[:3]
        attempts = cls._expiry_query_attempts()
        if (operator == '=') == bool(value):
            return [
                ('state', '=', 'unpaid'),
                ('payment_query_failures', '>=', attempts),
                ]
        return ['OR',
            ('state', '!=', 'unpaid'),
            ('payment_query_failures', '=', None),
            ('payment_query_failures', '<', attempts),
            ]

    @classmethod
    def _expiry_query_attempts(cls):
        "How many failed payment queries make an order's payment unknown"
        Configuration = Pool().get('course.configuration')
        return Configuration(1).get_expiry_query_attempts()

    @classmethod
    def check_modification(cls, mode, orders, values=None, external=False):
        super().check_modification(
            mode, orders, values=values, external=external)
        if mode == 'delete':
            for order in orders:
                if order.state not in {'cancelled', 'expired'}:
                    raise OrderStateError(gettext(
                            'course_order.msg_order_delete',
                            order=order.rec_name))

    # ---- Checkout -------------------------------------------------------

    @classmethod
    def checkout(cls, party, items, pay_method='manual', options=None):
        """Create an order for the party from items and return it.

        items: a list of {'course': id, 'option': id or None}.
        options: a dict of what the installed modules understand (e.g.
        grants, credit); an option no module understands is refused.
        Positional (Tryton RPC passes positional arguments only).

        Everything happens in the current transaction; a refusal raises a
        CheckoutError and the caller's rollback leaves nothing behind.
        """
        pool = Pool()
        Party = pool.get('party.party')
        party = Party(int(party))
        # Lock first: the steps before the lock would run twice otherwise,
        # and two checkouts of one student must not both pass the checks.
        lock_rows(Party, [party])
        checkout = Checkout(party, list(items), pay_method, options or {})
        cls.checkout_validate(checkout)
        cls.checkout_order(checkout)
        cls.checkout_lines(checkout)
        cls.checkout_discounts(checkout)
        cls.checkout_create(checkout)
        cls.checkout_reserve(checkout)
        cls.checkout_pay(checkout)
        return checkout.order

    @classmethod
    def checkout_validate(cls, checkout):
        """Check the request; modules extend it to take their options out of
        checkout.options before calling super()."""
        pool = Pool()
        Configuration = pool.get('course.configuration')
        if not checkout.items:
            raise CheckoutError(gettext('course_order.msg_checkout_empty'))
        if checkout.options:
            raise CheckoutError(gettext(
                    'course_order.msg_checkout_unknown_option',
                    options=', '.join(sorted(checkout.options))))
        if checkout.pay_method not in dict(cls.pay_method.selection):
            raise CheckoutError(gettext(
                    'course_order.msg_checkout_unknown_pay_method',
                    method=checkout.pay_method))
        config = Configuration(1)
        if len(checkout.families) > 1 and not config.discounts_combinable:
            raise CheckoutError(gettext(
                    'course_order.msg_checkout_discounts_not_combinable'))

    @classmethod
    def checkout_order(cls, checkout):
        pool = Pool()
        Company = pool.get('company.company')
        company_id = Transaction().context.get('company')
        if not company_id:
            raise CheckoutError(gettext('course_order.msg_checkout_company'))
        company = Company(company_id)
        checkout.order = cls(
            party=checkout.party, company=company, currency=company.currency,
            state='unpaid', pay_method=checkout.pay_method)

    @classmethod
    def checkout_lines(cls, checkout):
        "Price one line per item and refuse what cannot be bought"
        pool = Pool()
        Course = pool.get('course.course')
        Option = pool.get('course.course.option')
        Line = pool.get('course.order.line')
        try:
            wanted = [
                (int(i['course']), int(i['option']) if i.get('option')
                    else None) for i in checkout.items]
        except (KeyError, TypeError, ValueError):
            raise CheckoutError(gettext(
                    'course_order.msg_checkout_bad_items'))
        # Every course and option in one query each, inactive ones included
        with Transaction().set_context(active_test=False):
            courses = {c.id: c for c in Course.search(
                    [('id', 'in', [c for c, _ in wanted])])}
            options = {o.id: o for o in Option.search(
                    [('id', 'in', [o for _, o in wanted if o])])}
        pairs = []
        for course_id, option_id in wanted:
            if course_id not in courses:
                raise CheckoutError(gettext(
                        'course_order.msg_checkout_course_unknown',
                        id=course_id))
            if option_id and option_id not in options:
                raise CheckoutError(gettext(
                        'course_order.msg_checkout_option_unknown',
                        id=option_id))
            course = courses[course_id]
            option = options.get(option_id)
            if option and option.course != course:
                raise CheckoutError(gettext(
                        'course.msg_option_other_course',
                        option=option.rec_name, course=course.rec_name))
            pairs.append((course, option))
        seen = set()
        for course, _ in pairs:
            if (not course.active or not course.published
                    or course.company != checkout.order.company):
                raise CheckoutError(gettext(
                        'course_order.msg_checkout_course_unavailable',
                        course=course.rec_name))
            if course in seen:
                raise CheckoutError(gettext(
                        'course_order.msg_checkout_course_twice',
                        course=course.rec_name))
            seen.add(course)
        cls.check_not_owned(checkout.party, [c for c, _ in pairs])
        cls.check_not_pending(checkout.party, [c for c, _ in pairs])
        prices = Course.get_sale_prices(pairs)
        for (course, option), price in zip(pairs, prices):
            line = Line(
                course=course, option=option,
                list_price=price.list_price, unit_price=price.unit_price,
                discount_name=price.discount_name, activity=price.activity)
            checkout.lines.append(line)
            checkout.remaining[line] = price.unit_price
        checkout.prices = prices

    @classmethod
    def check_not_owned(cls, party, courses):
        Enrollment = Pool().get('course.enrollment')
        owned = Enrollment.search([
                ('party', '=', party.id),
                ('course', 'in', [c.id for c in courses]),
                ('state', '=', 'live'),
                ], limit=1)
        if owned:
            raise CheckoutError(gettext(
                    'course_order.msg_checkout_course_owned',
                    course=owned[0].course.rec_name))

    @classmethod
    def check_not_pending(cls, party, courses):
        Line = Pool().get('course.order.line')
        pending = Line.search([
                ('order.party', '=', party.id),
                ('order.state', '=', 'unpaid'),
                ('course', 'in', [c.id for c in courses]),
                ], limit=1)
        if pending:
            line, = pending
            raise CheckoutError(gettext(
                    'course_order.msg_checkout_course_pending',
                    course=line.course.rec_name,
                    order=line.order.rec_name))

    @classmethod
    def _get_discount_steps(cls):
        """Return the discount steps as [(sequence, name)], each run as
        `checkout_discount_<name>(checkout)` in sequence order; modules add
        theirs with super()"""
        return []

    @classmethod
    def checkout_discounts(cls, checkout):
        "Run the discount steps of the installed modules in their order"
        for _, name in sorted(cls._get_discount_steps()):
            getattr(cls, f'checkout_discount_{name}')(checkout)

    @classmethod
    def checkout_create(cls, checkout):
        "Save the order with its lines and discounts"
        pool = Pool()
        Configuration = pool.get('course.configuration')
        config = Configuration(1)
        order = checkout.order
        currency = order.currency
        order.total_amount = round_amount(currency, checkout.total)
        order.payable_amount = round_amount(currency, checkout.payable)
        order.discount_amount = order.total_amount - order.payable_amount
        if not order.payable_amount:
            # Nothing to pay: no provider is involved
            order.pay_method = 'free'
        elif order.pay_method == 'free':
            raise CheckoutError(gettext(
                    'course_order.msg_checkout_free_not_free',
                    amount=order.payable_amount))
        order.pay_deadline = now() + dt.timedelta(
            seconds=config.get_order_timeout())
        order.number = config.get_order_number(order.company)
        order.save()
        # One create per model, whatever the number of lines
        Line = pool.get('course.order.line')
        Discount = pool.get('course.order.discount')
        for line in checkout.lines:
            line.order = order
            line.amount = checkout.remaining[line]
            line.discount_amount = line.unit_price - line.amount
        Line.save(checkout.lines)
        for discount, lines in zip(
                checkout.discounts, checkout.discount_lines):
            discount.order = order
            discount.lines = lines
        Discount.save(checkout.discounts)

    @classmethod
    def checkout_reserve(cls, checkout):
        "Modules take what the order holds (grants, points) here"

    @classmethod
    def checkout_pay(cls, checkout):
        """Start the payment: `free` pays at once, the other methods are
        asked through `_payment_start_<method>`."""
        order = checkout.order
        if order.pay_method == 'free':
            cls.pay([order])
        else:
            start = getattr(cls, f'_payment_start_{order.pay_method}', None)
            if start:
                start([order])

    # ---- Payment method hooks --------------------------------------------
    # For a method m, a payment module may define the classmethods
    # _payment_start_m(orders), _payment_query_m(orders) -> {order: 'paid',
    # 'unpaid' or 'unknown'} (see _payment_query and doc/expiry.rst),
    # _payment_close_m(orders) and _payment_refund_m(orders) -> refunded
    # orders (those done at once; the others stay refunding).

    @classmethod
    def _payment_hook(cls, action, orders):
        "Call the hook of each order's method; return what the hooks return"
        by_method = defaultdict(list)
        for order in orders:
            by_method[order.pay_method].append(order)
        result = []
        for method, method_orders in by_method.items():
            hook = getattr(cls, f'_payment_{action}_{method}', None)
            if hook:
                result.extend(hook(method_orders) or [])
        return result

    @classmethod
    def _payment_refund_free(cls, orders):
        return orders

    @classmethod
    def _payment_refund_manual(cls, orders):
        # Staff give the money back outside the system
        return orders

    # ---- Workflow --------------------------------------------------------

    @classmethod
    @ModelView.button
    @order_guarded('unpaid')
    @Workflow.transition('cancelled')
    def cancel(cls, orders):
        cls.write(orders, {'cancelled_at': now()})
        cls._payment_hook('close', orders)
        cls.release(orders)

    @classmethod
    @ModelView.button
    @order_guarded('unpaid', 'paid')
    def confirm_payment(cls, orders):
        """Staff confirm that a manual payment was received; the orders of
        the other methods are paid by their provider, never by hand"""
        for order in orders:
            if order.pay_method != 'manual':
                raise OrderStateError(gettext(
                        'course_order.msg_order_confirm_not_manual',
                        order=order.rec_name,
                        method=order.pay_method_string))
        cls.pay(orders)

    @classmethod
    def pay(cls, orders):
        """Mark the orders paid and fulfil them, once.

        Idempotent: orders already paid are left as they are; a payment of
        an order that is no longer unpaid is refused (the caller records it
        and flags it to staff: money is never silently kept).
        """
        cls.lock(orders)
        to_pay = []
        for order in orders:
            if order.state == 'paid':
                continue
            if order.state != 'unpaid':
                raise OrderStateError(gettext(
                        'course_order.msg_order_pay_not_unpaid',
                        order=order.rec_name, state=order.state_string))
            to_pay.append(order)
        if to_pay:
            cls._pay(to_pay)
        return to_pay

    @classmethod
    @Workflow.transition('paid')
    def _pay(cls, orders):
        cls.write(orders, {'paid_at': now()})
        cls.fulfil(orders)

    @classmethod
    @ModelView.button
    @order_guarded('paid')
    def refund(cls, orders):
        "Staff refund paid orders: the payment method gives the money back"
        cls._refunding(orders)
        refunded = cls._payment_hook('refund', orders)
        if refunded:
            cls.refunded(refunded)

    @classmethod
    @Workflow.transition('refunding')
    def _refunding(cls, orders):
        pass

    @classmethod
    @order_guarded('refunding', 'refunded')
    def refunded(cls, orders):
        "The money went back (called by the payment method); idempotent"
        cls._refunded([o for o in orders if o.state == 'refunding'])

    @classmethod
    @Workflow.transition('refunded')
    def _refunded(cls, orders):
        cls.write(orders, {'refunded_at': now()})
        cls.revoke(orders)

    # ---- What the modules add to each end of an order ---------------------

    @classmethod
    def fulfil(cls, orders):
        "Paid: give what was bought; modules add their part with super()"
        cls.create_enrollments(orders)

    @classmethod
    def release(cls, orders):
        """Cancelled or expired: give back what the order held (grants,
        points); modules add their part with super()"""

    @classmethod
    def revoke(cls, orders):
        "Refunded: take back what was given; modules add with super()"
        Enrollment = Pool().get('course.enrollment')
        Enrollment.end_now([e for o in orders for e in o.enrollments])
        cls.shorten_extended(orders)

    @classmethod
    def shorten_extended(cls, orders):
        """Take back the time the lines added to enrollments the student
        already had: the days of the option, or the permanence"""
        Enrollment = Pool().get('course.enrollment')
        to_save = []
        for line in (l for o in orders for l in o.lines):
            enrollment = line.extended_enrollment
            if not enrollment:
                continue
            days = line.option.days if line.option else 0
            if days and enrollment.end:
                enrollment.end -= dt.timedelta(days=days)
            elif not days and enrollment.end is None:
                enrollment.end = line.extended_end
            else:
                continue  # changed since by staff: left as they set it
            to_save.append(enrollment)
        Enrollment.save(to_save)

    @classmethod
    def create_enrollments(cls, orders):
        """Create the enrollments of the paid lines at once; a course the
        student meanwhile owns is extended instead."""
        pool = Pool()
        Enrollment = pool.get('course.enrollment')
        # A line gives once: fulfil may run again on a paid order
        lines = [l for o in orders for l in o.lines
            if not l.enrollments and not l.extended_enrollment]
        if not lines:
            return
        start = now()
        live = {}
        for enrollment in Enrollment.search([
                    ('party', 'in', list({o.party.id for o in orders})),
                    ('course', 'in', list({l.course.id for l in lines})),
                    ('state', '=', 'live'),
                    ]):
            live[(enrollment.party, enrollment.course)] = enrollment
        to_create, to_save, extended = [], [], []
        for line in lines:
            days = line.option.days if line.option else 0
            key = (line.order.party, line.course)
            if key in live:
                enrollment = live[key]
                if enrollment.end is not None:
                    line.extended_enrollment = enrollment
                    line.extended_end = enrollment.end
                    extended.append(line)
                    enrollment.end = (
                        max(enrollment.end, start) + dt.timedelta(days=days)
                        if days else None)
                    to_save.append(enrollment)
                continue
            to_create.append(Enrollment(
                    party=line.order.party, course=line.course,
                    company=line.order.company, order_line=line,
                    order=line.order,
                    source='purchase' if line.amount else 'free',
                    start=start,
                    end=start + dt.timedelta(days=days) if days else None))
        Enrollment.save(to_save + to_create)
        OrderLine = pool.get('course.order.line')
        OrderLine.save(extended)

    # ---- Expiry ----------------------------------------------------------
    # The job works in transactions of its own, one committed batch at a
    # time, and yields to live checkouts: see doc/expiry.rst.

    @classmethod
    def expire_overdue(cls, batch_size=200):
        """Expire the unpaid orders past their deadline (the cron job);
        return the orders it expired.

        Each batch is committed in a transaction of its own: orders the
        caller's transaction created and did not commit are not seen, and
        what the job did is not undone by the caller's rollback.
        """
        run = cls._run_expiry(batch_size)
        return cls.browse(run.expired)

    @classmethod
    def _run_expiry(cls, batch_size=200):
        """Take the overdue unpaid orders a batch at a time (by id), ask
        their payment methods, then pay, count or expire each group in a
        transaction of its own; return the ExpiryRun"""
        run = ExpiryRun()
        deadline = now()
        last_id = 0
        while True:
            batch = run.attempt(
                cls._overdue_batch, deadline, last_id, batch_size,
                readonly=True)
            if not batch:
                break
            last_id = batch[-1][0]
            run.batches += 1
            parties = {order: party for order, party, _ in batch}
            answers = cls._payment_query(run, batch)
            run.record({o: a for o, a in answers.items() if a == 'busy'})
            for answer, func in [
                    ('paid', cls._expiry_pay),
                    ('unknown', cls._expiry_count_unknown),
                    ('unpaid', cls._expiry_expire),
                    ]:
                ids = [o for o, _, _ in batch if answers[o] == answer]
                run.record(run.each(func, ids, parties))
        logger.info("expiry of course orders: %s", run)
        return run

    @classmethod
    def _overdue_batch(cls, deadline, after, size):
        """The next size unpaid orders past deadline with an id above after
        (in the context's company, if any): [(id, party id, pay method)]"""
        transaction = Transaction()
        cursor = transaction.connection.cursor()
        table = cls.__table__()
        where = ((table.state == 'unpaid') & (table.pay_deadline < deadline)
            & (table.id > after))
        company = transaction.context.get('company')
        if company:
            where &= table.company == company
        cursor.execute(*table.select(
                table.id, table.party, table.pay_method, where=where,
                order_by=[table.id.asc], limit=size))
        return cursor.fetchall()

    @classmethod
    def _payment_query(cls, run, batch):
        """Ask the payment method of each order whether it is paid; return
        {order id: 'paid', 'unpaid', 'unknown' or 'busy'}.

        A method without a query hook has no provider to ask: its orders
        are unpaid.  Each method's hook is called in a transaction of its
        own; when it raises, each of its orders is asked alone and those
        whose question still raises are unknown (logged).
        """
        by_method = defaultdict(list)
        for order, _, method in batch:
            by_method[method].append(order)
        answers = {}
        for method, ids in by_method.items():
            if getattr(cls, f'_payment_query_{method}', None) is None:
                answers.update(dict.fromkeys(ids, 'unpaid'))
            else:
                answers.update(run.each(
                        cls._payment_ask, ids, method, failed='unknown'))
        return answers

    @classmethod
    def _payment_ask(cls, ids, method):
        """Call the query hook of method for the orders ids: {id: answer};
        an order the hook does not answer for is unknown"""
        hook = getattr(cls, f'_payment_query_{method}')
        result = hook(cls.browse(ids))
        if not isinstance(result, dict):
            raise TypeError(
                f"_payment_query_{method} returned {type(result).__name__}, "
                "not a dict {order: 'paid', 'unpaid' or 'unknown'}")
        answers = dict.fromkeys(ids, 'unknown')
        for order, answer in result.items():
            if int(order) in answers and answer in PAYMENT_ANSWERS:
                answers[int(order)] = answer
            else:
                logger.warning(
                    "_payment_query_%s answered %r for order %s: ignored",
                    method, answer, order)
        return answers

    @classmethod
    def _expiry_ready(cls, ids, parties):
        """Lock the students of the orders ids that no one else holds now
        (a live checkout has them): return the ids whose student is locked
        and {id: 'busy'} for the others, left for the next run"""
        Party = Pool().get('party.party')
        free = try_lock_rows(Party, {parties[i] for i in ids})
        ready = [i for i in ids if parties[i] in free]
        return ready, {i: 'busy' for i in ids if parties[i] not in free}

    @classmethod
    def _expiry_pay(cls, ids, parties):
        """The provider reports the orders ids paid: pay and fulfil them;
        return {id: outcome}"""
        ready, outcomes = cls._expiry_ready(ids, parties)
        outcomes.update(dict.fromkeys(ready, 'skipped'))
        outcomes.update(
            (o.id, 'paid') for o in cls.pay(cls.browse(ready)) or [])
        return outcomes

    @classmethod
    def _expiry_count_unknown(cls, ids, parties):
        """Nobody could say whether the orders ids are paid: count the
        failed query on the still unpaid ones (they are not expired);
        return {id: 'unknown'}"""
        transaction = Transaction()
        cursor = transaction.connection.cursor()
        table = cls.__table__()
        attempts = cls._expiry_query_attempts()
        failures = Coalesce(table.payment_query_failures, 0)
        counted = {}
        for sub_ids in grouped_slice(ids, in_max()):
            where = reduce_ids(table.id, sub_ids) & (table.state == 'unpaid')
            cursor.execute(*table.update(
                    [table.payment_query_failures, table.write_date,
                        table.write_uid],
                    [failures + 1, now(), transaction.user], where=where))
            cursor.execute(*table.select(
                    table.id, table.number, table.payment_query_failures,
                    where=where))
            for order, number, count in cursor:
                counted[order] = 'unknown'
                if count == attempts:
                    logger.warning(
                        "order %s: payment still unknown after %d queries, "
                        "shown to staff (Payment Unknown)", number, count)
        clear_cache(cls, list(counted))
        return counted

    @classmethod
    def _expiry_expire(cls, ids, parties):
        "Expire the orders ids whose student is free: {id: outcome}"
        ready, outcomes = cls._expiry_ready(ids, parties)
        outcomes.update(dict.fromkeys(ready, 'skipped'))
        outcomes.update(
            (o.id, 'expired') for o in cls._expire(cls.browse(ready)))
        return outcomes

    @classmethod
    def _expire(cls, orders):
        """Move the still unpaid orders to expired and release them, in the
        current transaction; return the expired orders"""
        if not orders:
            return []
        at = now()
        moved = move_state(
            cls, [o.id for o in orders], lambda t: t.state == 'unpaid',
            {'state': 'expired', 'cancelled_at': at})
        expired = cls.browse(sorted(moved))
        if expired:
            log_transitions(cls, moved, 'expired')
            cls._payment_hook('close', expired)
            cls.release(expired)
        return expired


PAYMENT_ANSWERS = {'paid', 'unpaid', 'unknown'}


class ExpiryRun:
    """One run of the expiry job: the orders by outcome, the batches and
    the transactions it took (for the log and the benchmark).

    Outcomes: expired; paid (reported paid by the provider); unknown (not
    expired, counted); busy (the student was held by a live checkout, or
    the rows were locked: left for the next run); skipped (no longer
    unpaid); failed (raised on its own: logged, left for the next run).
    """
    OUTCOMES = ['expired', 'paid', 'unknown', 'busy', 'skipped', 'failed']

    def __init__(self):
        self.outcomes = {o: [] for o in self.OUTCOMES}
        self.batches = 0
        self.transactions = 0

    @property
    def expired(self):
        return self.outcomes['expired']

    def __str__(self):
        counts = ', '.join(
            f'{len(ids)} {o}' for o, ids in self.outcomes.items())
        return (f"{counts} in {self.batches} batches, "
            f"{self.transactions} transactions")

    def record(self, outcomes):
        for order, outcome in outcomes.items():
            self.outcomes[outcome].append(order)

    def attempt(self, func, *args, readonly=False, retries=0):
        "Run func(*args) in a committed transaction of its own"
        def counted(*args):
            self.transactions += 1
            return func(*args)
        return in_new_transaction(
            counted, *args, readonly=readonly, retries=retries)

    def each(self, func, ids, *args, failed='failed'):
        """Return func(ids, *args) ({id: outcome}) run in a transaction of
        its own; when it raises, run it again for each order alone: an
        order that still raises gets the outcome failed, or busy for a
        lock or serialization error (logged, never stopping the others)"""
        from trytond import backend
        if not ids:
            return {}
        try:
            return self.attempt(func, ids, *args, retries=2)
        except Exception:
            logger.warning(
                "%s failed for %d orders: retried one by one",
                func.__name__, len(ids), exc_info=True)
        outcomes = {}
        for order in ids:
            try:
                outcomes.update(self.attempt(func, [order], *args))
            except backend.DatabaseOperationalError:
                logger.info(
                    "%s: order id %d is busy, left for the next run",
                    func.__name__, order)
                outcomes[order] = 'busy'
            except Exception:
                logger.exception(
                    "%s failed for order id %d", func.__name__, order)
                outcomes[order] = failed
        return outcomes


class OrderLine(ModelSQL, ModelView):
    "Course Order Line"
    __name__ = 'course.order.line'
    order = fields.Many2One(
        'course.order', "Order", required=True, ondelete='CASCADE',
        readonly=True)
    course = fields.Many2One(
        'course.course', "Course", required=True, ondelete='RESTRICT',
        readonly=True)
    option = fields.Many2One(
        'course.course.option', "Option", ondelete='RESTRICT', readonly=True)
    activity = fields.Many2One(
        'course.activity', "Activity", ondelete='SET NULL', readonly=True)
    currency = fields.Function(
        fields.Many2One('currency.currency', "Currency"),
        'on_change_with_currency')
    list_price = fields.Numeric(
        "List Price", digits='currency', required=True, readonly=True)
    unit_price = fields.Numeric(
        "Unit Price", digits='currency', required=True, readonly=True)
    discount_name = fields.Char("Price Name", readonly=True)
    discount_amount = fields.Numeric(
        "Discount", digits='currency', required=True, readonly=True,
        help="The line's share of the order's discounts.")
    amount = fields.Numeric(
        "Amount", digits='currency', required=True, readonly=True,
        help="What the line costs after discounts; the lines' amounts add "
        "up to the order's payable amount.")
    enrollments = fields.One2Many(
        'course.enrollment', 'order_line', "Enrollments", readonly=True)
    # When the student meanwhile owned the course, the line extended that
    # enrollment instead: what a refund must take back
    extended_enrollment = fields.Many2One(
        'course.enrollment', "Extended Enrollment", readonly=True,
        ondelete='SET NULL',
        help="The enrollment the line extended (the student already had "
        "the course when the order was paid).")
    extended_end = fields.DateTime(
        "End before Extension", readonly=True,
        help="The end of the extended enrollment before the line extended "
        "it.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('order')

    @fields.depends('order', '_parent_order.currency')
    def on_change_with_currency(self, name=None):
        return self.order.currency if self.order else None

    def get_rec_name(self, name):
        return f'{self.order.rec_name} - {self.course.rec_name}'


class OrderDiscount(ModelSQL, ModelView):
    "Course Order Discount"
    __name__ = 'course.order.discount'
    order = fields.Many2One(
        'course.order', "Order", required=True, ondelete='CASCADE',
        readonly=True)
    sequence = fields.Integer("Sequence", readonly=True)
    kind = fields.Selection([], "Kind", readonly=True)
    description = fields.Char("Description", readonly=True)
    currency = fields.Function(
        fields.Many2One('currency.currency', "Currency"),
        'on_change_with_currency')
    amount = fields.Numeric(
        "Amount", digits='currency', required=True, readonly=True)
    origin = fields.Reference(
        "Origin", selection='get_origin', readonly=True)
    lines = fields.Many2Many(
        'course.order.discount-course.order.line', 'discount', 'line',
        "Lines", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('order')
        cls._order = [('sequence', 'ASC'), ('id', 'ASC')]

    @classmethod
    def _get_origin(cls):
        "Return the models a discount may come from"
        return []

    @classmethod
    def get_origin(cls):
        IrModel = Pool().get('ir.model')
        models = cls._get_origin()
        return [(None, '')] + [
            (m, IrModel.get_name(m)) for m in models]

    @fields.depends('order', '_parent_order.currency')
    def on_change_with_currency(self, name=None):
        return self.order.currency if self.order else None


class OrderDiscountLine(ModelSQL):
    "Course Order Discount - Line"
    __name__ = 'course.order.discount-course.order.line'
    discount = fields.Many2One(
        'course.order.discount', "Discount", required=True,
        ondelete='CASCADE')
    line = fields.Many2One(
        'course.order.line', "Line", required=True, ondelete='CASCADE')


class Enrollment(metaclass=PoolMeta):
    __name__ = 'course.enrollment'
    order_line = fields.Many2One(
        'course.order.line', "Order Line", readonly=True,
        ondelete='RESTRICT')
    order = fields.Many2One(
        'course.order', "Order", readonly=True, ondelete='RESTRICT')
