"Course orders: checkout pipeline, workflow, expiry"
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from types import SimpleNamespace

from sql import Literal, Null
from sql.conditionals import Coalesce
from sql.operators import Concat, Exists

from trytond.i18n import gettext
from trytond.model import (
    Index, ModelSQL, ModelView, Unique, Workflow, fields)
from trytond.modules.course.tools import (
    allocate, check_dict, check_id, check_list, check_record, check_text,
    checked_transition, clear_cache, company_currency, guarded, guarded_button, in_group,
    in_max, in_new_transaction, lock_rows, log_transitions, move_state, now,
    round_amount, save_checked, try_lock_rows, write_checked)
from trytond.modules.course.rpc import RPCInputMixin
from trytond.pool import Pool
from trytond.pyson import Eval, Id, If
from trytond.rpc import RPC
from trytond.tools import grouped_slice, reduce_ids
from trytond.transaction import Transaction, without_check_access

from .exceptions import (
    AuditError, CheckoutError, OrderModificationError, OrderStateError)

logger = logging.getLogger(__name__)


STATES = [
    ('unpaid', "Unpaid"),
    ('paid', "Paid"),
    ('cancelled', "Cancelled"),
    ('expired', "Expired"),
    ('refunding', "Refunding"),
    ('refunded', "Refunded"),
    ]
# How the lists show each state (the `visual` of the clients)
STATE_VISUALS = {
    'unpaid': 'warning',
    'paid': 'success',
    'cancelled': 'muted',
    'expired': 'muted',
    'refunding': 'danger',
    'refunded': 'danger',
    }
# Who may refund an order: the group of the Refund button (order.xml)
REFUND_GROUP = Id('course', 'group_course_admin')


def state_visual(visuals, field='state'):
    "The PYSON of the visual of a record from its state, by visuals"
    expression = ''
    for state, visual in visuals.items():
        expression = If(Eval(field) == state, visual, expression)
    return expression


def not_in_group(group):
    "PYSON: the user of the client (or of the button call) is not in group"
    return ~group.in_(Eval('context', {}).get('groups', []))


def acting_user():
    "The user a workflow step records: None for root (code, scheduler)"
    return Transaction().user or None


def field_strings(Model, values):
    "The labels of the fields of values in the user's language"
    names = [n for n in values if n in Model._fields]
    labels = Model.fields_get(names)
    return ', '.join(sorted(labels[n]['string'] for n in names))


def refuse_external(mode, records, values, external, message, order):
    """Refuse a user's call (RPC) creating, deleting or writing records
    that only checkout and the order's workflow write; order(record) is the
    order the message names"""
    if external and records and (mode != 'write' or values):
        raise OrderModificationError(gettext(
                message, order=order(records[0]).rec_name))


def model_selection(models):
    "The selection of a Reference field to models: [(None, ''), (model, name)]"
    IrModel = Pool().get('ir.model')
    return [(None, '')] + [(m, IrModel.get_name(m)) for m in models]


def order_guarded(*from_states):
    "Lock the orders, then refuse any whose state is not in from_states"
    return guarded(
        *from_states, error=OrderStateError,
        message='course_order.msg_order_wrong_state')


def order_button(*from_states):
    """A button of the order's workflow: order_guarded, and a user clicking
    on an order another user has just moved on is told its state"""
    return guarded_button(
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
        # As received; checkout_input checks and normalizes them
        self.items = items
        self.pay_method = pay_method
        self.options = dict(options)
        self.order = None
        self.lines = []
        self.discounts = []
        self.discount_lines = []
        # {kind: amount} of the discounts, as add_discount applied them
        self.discount_totals = {}
        self.families = set()
        self.remaining = {}
        self._namespaces = {}
        # A preview (checkout_preview) stops before anything is saved
        self.preview = False
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
        self.discount_totals[kind] = (
            self.discount_totals.get(kind, Decimal(0)) + amount)
        return discount


class LiveEnrollments(Mapping):
    """The live enrollments of students by (party, course), as the paid
    lines ask for them (OrderLine.get_enrollments): the pairs given first
    are read in one query; a pair not among them (a module's line giving
    other courses) is read when asked.  Iterating reads all the students'
    live enrollments."""

    def __init__(self, pairs):
        self._found = {}
        self._read = set()
        self._parties = set()
        self._read_pairs(set(pairs))

    @staticmethod
    def _key(key):
        party, course = key
        return int(party), int(course)

    def _search(self, parties, courses=None):
        """Add the live enrollments of parties (in courses) to those found:
        their ids, students and courses in one query per slice, the records
        read when used (a paid order's lines rarely extend one)"""
        Enrollment = Pool().get('course.enrollment')
        table = Enrollment.__table__()
        cursor = Transaction().connection.cursor()
        at = now()
        where = (table.end == Null) | (table.end > at)
        if courses is not None:
            where &= reduce_ids(table.course, sorted(courses))
        rows = []
        for sub_parties in grouped_slice(sorted(parties)):
            cursor.execute(*table.select(
                    table.id, table.party, table.course,
                    where=where & reduce_ids(table.party, list(sub_parties))))
            rows.extend(cursor)
        # Browsed together: the first one used reads them all
        for enrollment, (_, party, course) in zip(
                Enrollment.browse([r[0] for r in rows]), rows):
            self._found[(party, course)] = enrollment

    def _read_pairs(self, pairs):
        pairs = {self._key(p) for p in pairs} - self._read
        if not pairs:
            return
        parties = {p for p, _ in pairs}
        courses = {c for _, c in pairs}
        self._search(parties, courses)
        self._read.update((p, c) for p in parties for c in courses)
        self._parties.update(parties)

    def __getitem__(self, key):
        key = self._key(key)
        self._read_pairs({key})
        return self._found[key]

    def __iter__(self):
        if self._parties:
            self._search(self._parties)
        return iter(list(self._found))

    def __len__(self):
        return len(list(iter(self)))


class Order(RPCInputMixin, Workflow, ModelSQL, ModelView):
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
    paid_by = fields.Many2One(
        'res.user', "Paid by", readonly=True, ondelete='RESTRICT',
        help="The user who confirmed the payment (empty when the payment "
        "provider or the scheduler did).")
    cancelled_at = fields.DateTime(
        "Cancelled at", readonly=True,
        help="When the order was cancelled or expired.")
    cancelled_by = fields.Many2One(
        'res.user', "Cancelled by", readonly=True, ondelete='RESTRICT',
        help="The user who cancelled the order (empty when it expired).")
    refunded_at = fields.DateTime("Refunded at", readonly=True)
    refunded_by = fields.Many2One(
        'res.user', "Refunded by", readonly=True, ondelete='RESTRICT',
        help="The user who asked for the refund.")
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
                    # Hidden, not only greyed, for the users who may not
                    'invisible': ((Eval('state') != 'paid')
                        | not_in_group(REFUND_GROUP)),
                    'icon': 'tryton-undo',
                    'depends': ['state'],
                    },
                })
        cls.__rpc__.update({
                'checkout': RPC(readonly=False, result=int),
                'audit': RPC(readonly=True),
                'audit_gifts': RPC(readonly=True),
                })

    @classmethod
    def default_state(cls):
        return 'unpaid'

    @classmethod
    def view_attributes(cls):
        # The state column coloured, and rows that need nothing more muted
        visual = state_visual(STATE_VISUALS)
        return super().view_attributes() + [
            ('/tree', 'visual', If(
                    Eval('state').in_(['cancelled', 'expired']), 'muted', '')),
            ('/tree/field[@name="state"]', 'visual', visual),
            ]

    @classmethod
    def default_company(cls):
        return Transaction().context.get('company')

    @classmethod
    def default_payment_query_failures(cls):
        return 0

    def get_title(self, name):
        return self.title_of(self.lines)

    @staticmethod
    def title_of(lines):
        """The title of an order of these lines: what the first sells,
        with the number of the others (for a caller that has read the lines
        already: the title field reads them again)"""
        names = [l.sold.rec_name for l in lines if l.sold]
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
    def create(cls, vlist):
        # A user's create is refused here, before the values are validated:
        # check_modification would come after the validation, which tells
        # the clients (they send no read-only field) to fill in the student
        if Transaction().check_access:
            raise OrderModificationError(gettext(
                    'course_order.msg_order_create_external'))
        return super().create(vlist)

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
        """Refuse every change from a user's call (RPC), whatever the group:
        checkout creates orders (see create) and only the workflow changes
        them"""
        super().check_modification(
            mode, orders, values=values, external=external)
        if external and orders:
            if mode == 'delete':
                raise OrderModificationError(gettext(
                        'course_order.msg_order_delete_external',
                        order=orders[0].rec_name))
            elif values:
                raise OrderModificationError(gettext(
                        'course_order.msg_order_write_external',
                        order=orders[0].rec_name,
                        fields=field_strings(cls, values)))
        if mode == 'delete':
            for order in orders:
                if order.state not in {'cancelled', 'expired'}:
                    raise OrderStateError(gettext(
                            'course_order.msg_order_delete',
                            order=order.rec_name))

    # ---- Audit -----------------------------------------------------------
    # Set-based: one query per check whatever the number of orders; the
    # records are read only for the texts of what is found.

    @classmethod
    def audit(cls):
        """Return, as texts, what the orders and enrollments of the user's
        companies do not explain: nothing when all agrees.

        Over RPC only the group Course Administration may run it, on the
        user's companies; code (root) audits every company.
        """
        companies = cls._audit_companies()
        if companies == []:
            return []
        with without_check_access():
            return cls._audit(companies)

    @classmethod
    def audit_gifts(cls):
        """Return one text per gift of the user's companies, oldest first,
        for staff to review: a gift is no disagreement (the Give Course
        wizard is a legitimate source), but nothing else explains it.

        The same rights as audit.
        """
        companies = cls._audit_companies()
        if companies == []:
            return []
        with without_check_access():
            return cls._audit_gifts(companies)

    @classmethod
    def _audit_companies(cls):
        """The company ids the caller may audit, None for all (code);
        refuse a user outside Course Administration"""
        User = Pool().get('res.user')
        if not Transaction().check_access:
            return None
        if not in_group('course.group_course_admin'):
            raise AuditError(gettext('course_order.msg_audit_access'))
        return list(User.get_companies())

    @classmethod
    def _audit(cls, companies):
        """Return the problems found in companies (ids, None for all) as
        texts; modules add their checks with super()"""
        return cls._audit_enrollments(companies) + cls._audit_lines(companies)

    @staticmethod
    def _audit_company(table, companies):
        "The SQL condition keeping the rows of table in companies"
        if companies is None:
            return Literal(True)
        return table.company.in_(companies)

    @classmethod
    def _audit_enrollments(cls, companies):
        """Enrollments that neither a paid order line nor a gift explains,
        live enrollments of refunded orders, gifts without reason or
        giver"""
        pool = Pool()
        Enrollment = pool.get('course.enrollment')
        Line = pool.get('course.order.line')
        enrollment = Enrollment.__table__()
        line = Line.__table__()
        order = cls.__table__()
        cursor = Transaction().connection.cursor()
        gift = enrollment.source == 'gift'
        checks = [
            ('course_order.msg_audit_enrollment_unexplained',
                ~gift & ((enrollment.order_line == Null)
                    | ~order.state.in_(['paid', 'refunding', 'refunded']))),
            ('course_order.msg_audit_enrollment_refunded_live',
                (order.state == 'refunded')
                & ((enrollment.end == Null) | (enrollment.end > now()))),
            ('course_order.msg_audit_gift_incomplete',
                gift & ((enrollment.given_by == Null)
                    | (Coalesce(enrollment.gift_reason, '') == ''))),
            ]
        found = []
        for message, condition in checks:
            cursor.execute(*enrollment.join(line, 'LEFT',
                    condition=enrollment.order_line == line.id
                    ).join(order, 'LEFT', condition=line.order == order.id
                    ).select(enrollment.id,
                    where=condition
                    & cls._audit_company(enrollment, companies),
                    order_by=[enrollment.id.asc]))
            found.extend((message, i) for i, in cursor)
        enrollments = Enrollment.browse([i for _, i in found])
        lang = pool.get('ir.lang').get()
        return [gettext(message,
                student=e.party.rec_name, course=e.course.rec_name,
                source=e.source_string, start=lang.strftime(e.start.date()),
                order=e.order_line.order.rec_name if e.order_line else '')
            for (message, _), e in zip(found, enrollments)]

    @classmethod
    def _audit_lines(cls, companies):
        "Course lines of paid (or refunded) orders that gave nothing"
        pool = Pool()
        Enrollment = pool.get('course.enrollment')
        Line = pool.get('course.order.line')
        enrollment = Enrollment.__table__()
        line = Line.__table__()
        order = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*line.join(order, condition=line.order == order.id
                ).select(line.id,
                where=order.state.in_(['paid', 'refunding', 'refunded'])
                & (line.course != Null)
                & (line.extended_enrollment == Null)
                & ~Exists(enrollment.select(enrollment.id,
                        where=enrollment.order_line == line.id))
                & cls._audit_company(order, companies),
                order_by=[line.id.asc]))
        return [gettext('course_order.msg_audit_line_gave_nothing',
                order=l.order.rec_name, state=l.order.state_string,
                course=l.course.rec_name)
            for l in Line.browse([i for i, in cursor])]

    @classmethod
    def _audit_gifts(cls, companies):
        "One text per gift, oldest first: who gave what to whom, and why"
        pool = Pool()
        Enrollment = pool.get('course.enrollment')
        lang = pool.get('ir.lang').get()
        domain = [('source', '=', 'gift')]
        if companies is not None:
            domain.append(('company', 'in', companies))
        texts = []
        for gift in Enrollment.search(
                domain, order=[('start', 'ASC'), ('id', 'ASC')]):
            if gift.end:
                validity = gettext('course_order.msg_audit_gift_until',
                    end=lang.strftime(gift.end.date()))
            else:
                validity = gettext('course_order.msg_audit_gift_permanent')
            texts.append(gettext('course_order.msg_audit_gift',
                    giver=(gift.given_by.rec_name if gift.given_by
                        else gettext('course_order.msg_audit_unknown')),
                    course=gift.course.rec_name,
                    student=gift.party.rec_name,
                    start=lang.strftime(gift.start.date()),
                    validity=validity,
                    reason=gift.gift_reason or ''))
        return texts

    # ---- Checkout -------------------------------------------------------

    @classmethod
    def checkout(cls, party, items, pay_method='manual', options=None):
        """Create an order for the party from items and return it.

        items: a list of {'course': id, 'option': id or None}.
        options: a dict of what the installed modules understand (e.g.
        grants, credit); an option no module understands is refused.
        Positional (Tryton RPC passes positional arguments only).

        Everything happens in the current transaction; a refusal raises a
        CheckoutError (an InputError for a parameter of the wrong type) and
        the caller's rollback leaves nothing behind.

        Called over RPC it needs create access on orders; the steps then run
        without access checks (they write what no user may write).  The
        contract is in doc/reference.rst.
        """
        return cls.checkout_run(party, items, pay_method, options).order

    @classmethod
    def checkout_run(cls, party, items, pay_method='manual', options=None):
        """Do what checkout() does and return its Checkout: the saved
        order, with the lines, discounts and discount_totals it was saved
        with, for a caller that answers from them instead of reading them
        back (the storefront's order.create).  Not in __rpc__."""
        pool = Pool()
        Party = pool.get('party.party')
        ModelAccess = pool.get('ir.model.access')
        if Transaction().check_access:
            ModelAccess.check(cls.__name__, 'create')
        party = check_record(Party, party, 'party')
        options = check_dict(options, 'options')
        # Made before the access checks are dropped: it records who calls
        checkout = Checkout(party, items, pay_method, options)
        with without_check_access():
            cls.checkout_input(checkout)
            # Lock before the checks of the order: two checkouts of one
            # student must not both pass them.  The lock restarts the call,
            # so nothing before it may have a side effect.
            lock_rows(Party, [party])
            cls.checkout_validate(checkout)
            cls.checkout_order(checkout)
            cls.checkout_lines(checkout)
            cls.checkout_discounts(checkout)
            cls.checkout_create(checkout)
            cls.checkout_reserve(checkout)
            cls.checkout_pay(checkout)
        return checkout

    @classmethod
    def checkout_preview(cls, party, items, options=None):
        """Return the Checkout that checkout() would save, without saving,
        locking or reserving anything: the same checks, lines and discount
        steps, so the amounts are those an order would have now.

        Not in __rpc__: it reads a student's coupons and balances, so its
        caller (the storefront, as its student) decides who may ask.  A
        refusal raises the CheckoutError the checkout would raise.
        """
        Party = Pool().get('party.party')
        party = check_record(Party, party, 'party')
        options = check_dict(options, 'options')
        checkout = Checkout(party, items, None, options)
        checkout.preview = True
        with without_check_access():
            cls.checkout_input(checkout)
            cls.checkout_validate(checkout)
            cls.checkout_order(checkout)
            cls.checkout_lines(checkout)
            cls.checkout_discounts(checkout)
        return checkout

    @classmethod
    def checkout_preview_info(cls, checkout):
        """Return what a student choosing among the options of a previewed
        checkout needs to know, as a dict; modules add their keys with
        super() (course_coupon: usable coupons, course_credit: points)"""
        return {}

    @classmethod
    def checkout_input(cls, checkout):
        """Check the types of the request and normalize checkout.items (each
        item by _checkout_item)"""
        items = check_list(checkout.items, 'items')
        if not items:
            raise CheckoutError(gettext('course_order.msg_checkout_empty'))
        checkout.items = [cls._checkout_item(item) for item in items]
        if checkout.preview and checkout.pay_method is None:
            # A preview may not know yet how the student will pay
            return
        method = check_text(checkout.pay_method, 'pay_method', max_length=50)
        if method not in dict(cls.pay_method.selection):
            raise CheckoutError(gettext(
                    'course_order.msg_checkout_unknown_pay_method',
                    method=method))

    @classmethod
    def _checkout_item(cls, item):
        """Return the item checked and normalized by the method of its kind,
        `_checkout_item_<kind>(item)` (see _get_checkout_item_kinds)"""
        item = check_dict(item, 'items')
        kind = cls.checkout_item_kind(item)
        if kind is None:
            raise CheckoutError(gettext(
                    'course_order.msg_checkout_bad_items'))
        return getattr(cls, f'_checkout_item_{kind}')(item)

    @classmethod
    def _checkout_item_course(cls, item):
        "Return a course item as {'course': id, 'option': id or None}"
        unknown = item.keys() - {'course', 'option'}
        if unknown:
            raise CheckoutError(gettext(
                    'course_order.msg_checkout_item_unknown_keys',
                    keys=', '.join(sorted(map(str, unknown)))))
        option = item.get('option')
        return {
            'course': check_id(item['course'], 'course'),
            'option': check_id(option, 'option') if option is not None
            else None,
            }

    @classmethod
    def checkout_validate(cls, checkout):
        """Check the request; modules extend it to take their options out of
        checkout.options before calling super()."""
        pool = Pool()
        Configuration = pool.get('course.configuration')
        if checkout.options:
            raise CheckoutError(gettext(
                    'course_order.msg_checkout_unknown_option',
                    options=', '.join(sorted(map(str, checkout.options)))))
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
        # The company's currency with its digits known: no query for either
        checkout.order = cls(
            party=checkout.party, company=company,
            currency=company_currency(company), state='unpaid',
            pay_method=checkout.pay_method)

    @classmethod
    def _get_checkout_item_kinds(cls):
        """Return the kinds of item a checkout sells, as [kind]; modules
        add theirs with super().

        An item holds exactly one kind as a key (``{'course': id, ...}``,
        ``{'program': id}``); the items of a kind are checked and priced
        together by ``checkout_items_<kind>(checkout, items)``, and each
        becomes a line through ``_get_checkout_line``.
        """
        return ['course']

    @classmethod
    def checkout_item_kind(cls, item):
        "Return the kind of a checkout item (the one kind it holds) or None"
        if not isinstance(item, dict):
            return None
        kinds = [k for k in cls._get_checkout_item_kinds() if k in item]
        return kinds[0] if len(kinds) == 1 else None

    @classmethod
    def checkout_lines(cls, checkout):
        """Build one line per item in the order of the items, the items of
        each kind checked and priced at once"""
        by_kind = defaultdict(list)
        for index, item in enumerate(checkout.items):
            kind = cls.checkout_item_kind(item)
            if kind is None:
                raise CheckoutError(gettext(
                        'course_order.msg_checkout_bad_items'))
            by_kind[kind].append(index)
        priced = [None] * len(checkout.items)
        for kind, indexes in by_kind.items():
            check = getattr(cls, f'checkout_items_{kind}')
            items = check(checkout, [checkout.items[i] for i in indexes])
            for index, item_price in zip(indexes, items):
                priced[index] = item_price
        for item, price in priced:
            line = cls._get_checkout_line(checkout, item, price)
            checkout.lines.append(line)
            checkout.remaining[line] = line.unit_price

    @classmethod
    def checkout_items_course(cls, checkout, items):
        """Check the course items and return each with its records and its
        sale price: [({'course': course, 'option': option or None, …},
        SalePrice)]

        Refused: an unknown, unpublished, archived or other company's
        course, an option of another course, a course twice, a course the
        student owns or has in an unpaid order.
        """
        pool = Pool()
        Course = pool.get('course.course')
        Option = pool.get('course.course.option')
        # Every course and option in one query each, inactive ones included
        with Transaction().set_context(active_test=False):
            courses = {c.id: c for c in Course.search(
                    [('id', 'in', [i['course'] for i in items])])}
            options = {o.id: o for o in Option.search(
                    [('id', 'in', [i['option'] for i in items
                                if i.get('option')])])}
        pairs = []
        for item in items:
            course_id, option_id = item['course'], item.get('option')
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
        return [
            (dict(item, course=course, option=option), price)
            for item, (course, option), price in zip(items, pairs, prices)]

    @classmethod
    def _get_checkout_line(cls, checkout, item, price):
        """Return the unsaved line of a checked item at its price.

        item is what `checkout_items_<kind>` returned for it (its records
        instead of ids), price a course.course SalePrice.  Modules selling
        another kind of item extend it with super() and set the line's
        product for theirs.
        """
        Line = Pool().get('course.order.line')
        # A line selling something else has no course nor option: set, so
        # the discount steps can ask any line for its course
        line = Line(
            list_price=price.list_price, unit_price=price.unit_price,
            discount_name=price.discount_name, activity=price.activity,
            course=None, option=None)
        if 'course' in item:
            line.product = line.course = item['course']
            line.option = item.get('option')
        return line

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
        "No course of courses is in an unpaid order of party"
        Line = Pool().get('course.order.line')
        line_table, order_table = Line.__table__(), cls.__table__()
        cursor = Transaction().connection.cursor()
        # One joined SELECT: it runs in every checkout
        cursor.execute(*line_table.join(order_table,
                condition=line_table.order == order_table.id
                ).select(line_table.id,
                where=(order_table.party == party.id)
                & (order_table.state == 'unpaid')
                & reduce_ids(line_table.course, [c.id for c in courses]),
                limit=1))
        row = cursor.fetchone()
        if row:
            line = Line(row[0])
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
        # Built from the checked checkout: inserted without reading it back
        save_checked(cls, [order])
        # One INSERT per model, whatever the number of lines; the lines and
        # discounts come from the checks above, so they are not validated
        # and read back one by one as create() would (save_checked)
        Line = pool.get('course.order.line')
        Discount = pool.get('course.order.discount')
        for line in checkout.lines:
            line.order = order
            line.amount = checkout.remaining[line]
            line.discount_amount = line.unit_price - line.amount
        for discount, lines in zip(
                checkout.discounts, checkout.discount_lines):
            discount.order = order
            discount.lines = lines
        cls.check_checkout_amounts(checkout)
        save_checked(Line, checkout.lines)
        save_checked(Discount, checkout.discounts)

    @classmethod
    def check_checkout_amounts(cls, checkout):
        """The amounts of the lines and discounts to save are in the
        currency's precision (what create's validation would check)"""
        currency = checkout.order.currency
        amounts = [a for l in checkout.lines
            for a in (l.list_price, l.unit_price, l.amount,
                l.discount_amount)]
        amounts += [d.amount for d in checkout.discounts]
        for amount in amounts:
            if amount is None or round_amount(currency, amount) != amount:
                raise ValueError(
                    f"checkout amount {amount!r} not in {currency.code}")

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
            start = cls._get_payment_hook('start', order.pay_method)
            if start:
                start([order])

    # ---- Payment method hooks --------------------------------------------
    # For a method m, a payment module may define the classmethods
    # _payment_start_m(orders), _payment_query_m(orders) -> {order: 'paid',
    # 'unpaid' or 'unknown'} (see _payment_query and doc/expiry.rst),
    # _payment_close_m(orders) and _payment_refund_m(orders) -> refunded
    # orders (those done at once; the others stay refunding).

    @classmethod
    def _get_payment_hook(cls, action, method):
        """Return the hook of action for the payment method (a callable
        taking the orders) or None; by default the classmethod
        `_payment_<action>_<method>`.  A module serving several methods the
        same way (course_payment's providers) extends it with super()."""
        return getattr(cls, f'_payment_{action}_{method}', None)

    @classmethod
    def _payment_hook(cls, action, orders, methods=None):
        """Call the hook of each order's method; return what the hooks
        return.  methods: {order id: method} when the caller has them (the
        expiry job: reading the attribute would read every field of every
        order, and most methods have no hook)"""
        by_method = defaultdict(list)
        for order in orders:
            method = (methods[order.id] if methods is not None
                else order.pay_method)
            by_method[method].append(order)
        result = []
        for method, method_orders in by_method.items():
            hook = cls._get_payment_hook(action, method)
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
    @order_button('unpaid')
    @Workflow.transition('cancelled')
    def cancel(cls, orders):
        cls.write(orders, {
                'cancelled_at': now(),
                'cancelled_by': acting_user(),
                })
        cls._payment_hook('close', orders)
        cls.release(orders)

    @classmethod
    @order_button('unpaid', 'paid')
    def confirm_payment(cls, orders):
        """Staff confirm that a manual payment was received; the orders of
        the other methods are paid by their provider, never by hand"""
        for order in orders:
            if order.pay_method != 'manual':
                raise OrderStateError(gettext(
                        'course_order.msg_order_confirm_not_manual',
                        order=order.rec_name,
                        method=order.pay_method_string))
        paid = cls.pay(orders)
        if paid:
            cls.write(paid, {'paid_by': acting_user()})

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
    @checked_transition('paid')
    def _pay(cls, orders):
        # Every paid order goes through here: one UPDATE each for the date
        # and the state, not write()'s reads before and after
        write_checked(cls, orders, {'paid_at': now()})
        cls.fulfil(orders)

    @classmethod
    @order_button('paid')
    def refund(cls, orders):
        "Staff refund paid orders: the payment method gives the money back"
        cls.write(orders, {'refunded_by': acting_user()})
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
        cls.end_enrollments(orders)
        cls.shorten_extended(orders)

    @classmethod
    def create_enrollments(cls, orders):
        """Save what the paid lines give (OrderLine.get_enrollments): new
        enrollments, or the student's live ones extended"""
        pool = Pool()
        Enrollment = pool.get('course.enrollment')
        Line = pool.get('course.order.line')
        lines = [l for o in orders for l in o.lines]
        # What the students own of the lines' courses, in one query
        # whatever the lines: not all they own, which grows with each order
        live = LiveEnrollments(
            (l.order.party.id, l.course.id) for l in lines if l.course)
        start = now()
        enrollments = [
            e for l in lines for e in l.get_enrollments(live, start)]
        # The new ones built from the paid lines: inserted without the
        # checks of each field (their validate still runs)
        save_checked(Enrollment, [e for e in enrollments if e.id is None])
        Enrollment.save([e for e in enrollments if e.id is not None])
        Line.save(lines)  # the extensions they recorded

    @classmethod
    def end_enrollments(cls, orders):
        """End now what the lines gave (OrderLine.get_revoked_enrollments),
        in one write"""
        Enrollment = Pool().get('course.enrollment')
        Enrollment.end_now([
                e for o in orders for l in o.lines
                for e in l.get_revoked_enrollments()])

    @classmethod
    def shorten_extended(cls, orders):
        """Take back the time the lines added to enrollments the student
        already had (OrderLine.get_shortened_enrollments)"""
        Enrollment = Pool().get('course.enrollment')
        Enrollment.save([
                e for o in orders for l in o.lines
                for e in l.get_shortened_enrollments()])

    # ---- Expiry ----------------------------------------------------------
    # The job works in transactions of its own, one committed batch at a
    # time, and yields to live checkouts: see doc/expiry.rst.

    @classmethod
    def expire_overdue(cls, batch_size=500):
        """Expire the unpaid orders past their deadline (the cron job);
        return the orders it expired.

        Each batch is committed in a transaction of its own: orders the
        caller's transaction created and did not commit are not seen, and
        what the job did is not undone by the caller's rollback.
        """
        run = cls._run_expiry(batch_size)
        return cls.browse(run.expired)

    @classmethod
    def _run_expiry(cls, batch_size=500):
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
            if cls._get_payment_hook('query', method) is None:
                answers.update(dict.fromkeys(ids, 'unpaid'))
            else:
                answers.update(run.each(
                        cls._payment_ask, ids, method, failed='unknown'))
        return answers

    @classmethod
    def _payment_ask(cls, ids, method):
        """Call the query hook of method for the orders ids: {id: answer};
        an order the hook does not answer for is unknown"""
        hook = cls._get_payment_hook('query', method)
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
            (o.id, 'expired') for o in cls._expire(ready))
        return outcomes

    @classmethod
    def _expire(cls, orders):
        """Move the still unpaid orders (records or ids) to expired and
        release them, in the current transaction; return the expired
        orders"""
        if not orders:
            return []
        at = now()
        moved = move_state(
            cls, [int(o) for o in orders], lambda t: t.state == 'unpaid',
            {'state': 'expired', 'cancelled_at': at})
        expired = cls.browse(sorted(moved))
        if expired:
            log_transitions(cls, moved, 'expired')
            cls._payment_hook('close', expired, cls._pay_methods(moved))
            cls.release(expired)
        return expired


    @classmethod
    def _pay_methods(cls, ids):
        "Return {order id: pay method} of the orders ids by SQL"
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        methods = {}
        for sub_ids in grouped_slice(sorted(ids), in_max()):
            cursor.execute(*table.select(
                    table.id, table.pay_method,
                    where=reduce_ids(table.id, sub_ids)))
            methods.update(cursor)
        return methods


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


class OrderLine(RPCInputMixin, ModelSQL, ModelView):
    "Course Order Line"
    __name__ = 'course.order.line'
    order = fields.Many2One(
        'course.order', "Order", required=True, ondelete='CASCADE',
        readonly=True)
    product = fields.Reference(
        "Product", selection='get_product', required=True, readonly=True,
        help="What the line sells: a course, or what a module sells.")
    course = fields.Many2One(
        'course.course', "Course", ondelete='RESTRICT', readonly=True,
        help="The course the line sells (its product), empty when it sells "
        "something else.")
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

    @classmethod
    def check_modification(cls, mode, lines, values=None, external=False):
        super().check_modification(
            mode, lines, values=values, external=external)
        refuse_external(mode, lines, values, external,
            'course_order.msg_order_line_external', lambda l: l.order)

    @classmethod
    def __register__(cls, module):
        cursor = Transaction().connection.cursor()
        table = cls.__table__()

        super().__register__(module)

        # Migration from 8.0.0: a line sells a product, a course until then
        cursor.execute(*table.update(
                [table.product],
                [Concat('course.course,', table.course)],
                where=(table.product == Null) & (table.course != Null)))

    @classmethod
    def _get_product(cls):
        "Return the models a line may sell; modules add theirs with super()"
        return ['course.course']

    @classmethod
    def get_product(cls):
        return model_selection(cls._get_product())

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        # The course of a course line is its product
        if values.get('product'):
            product = values['product']
            if not isinstance(product, str):
                product = '%s,%s' % tuple(product)
            model, id_ = product.split(',')
            values['course'] = int(id_) if model == 'course.course' else None
        elif mode == 'create' and values.get('course'):
            values['product'] = f"course.course,{values['course']}"
        return values

    @fields.depends('order', '_parent_order.currency')
    def on_change_with_currency(self, name=None):
        return self.order.currency if self.order else None

    def get_rec_name(self, name):
        return f'{self.order.rec_name} - {self.sold.rec_name}'

    @property
    def sold(self):
        """What the line sells: its course (a Many2One, kept in the record
        cache) for a course line, else its product (a Reference, read
        again at each access in a read-write transaction)"""
        return self.course or self.product

    # ---- What a paid line gives, what a refund takes back -----------------

    def get_enrollments(self, live, start):
        """Return the enrollments the paid line gives, unsaved: new ones, or
        the student's live ones extended (the line records what a refund
        must take back; save the line too).

        live: the live enrollments of the order's student by (party,
        course), a read-only mapping (LiveEnrollments: the pairs of the
        lines' courses are read at once, any other when asked); start: when
        the new enrollments start.  A line gives once: nothing when it
        already gave.  Modules selling something else
        extend it with super().
        """
        enrollment = self._get_enrollment(live, start)
        return [enrollment] if enrollment else []

    def _get_enrollment(self, live, start):
        """The enrollment in the line's course: new, or the live one
        extended by the option's days (made permanent without days); None
        for a line without course, already given, or a course the student
        owns for ever"""
        Enrollment = Pool().get('course.enrollment')
        if not self.course or self.enrollments or self.extended_enrollment:
            return None
        party, company = self.order.party, self.order.company
        days = self.option.days if self.option else 0
        enrollment = live.get((party, self.course))
        if enrollment:
            if enrollment.end is None:
                return None
            self.extended_enrollment = enrollment
            self.extended_end = enrollment.end
            enrollment.end = (
                max(enrollment.end, start) + dt.timedelta(days=days)
                if days else None)
            return enrollment
        return Enrollment(
            party=party, course=self.course, company=company,
            order_line=self, order=self.order,
            source='purchase' if self.amount else 'free',
            start=start,
            end=start + dt.timedelta(days=days) if days else None)

    def get_revoked_enrollments(self):
        """Return the enrollments a refund of the line ends now (those
        still live): the ones it gave; modules extend it with super()"""
        return list(self.enrollments)

    def get_shortened_enrollments(self):
        """Return the enrollments a refund of the line gives their former
        end back, unsaved: the one it extended, by the option's days (or
        the end it had before the line made it permanent), never before its
        start.  Left alone once it is over (staff's End Access, or its
        end passed) or when staff changed it in a way that no longer
        matches."""
        enrollment = self.extended_enrollment
        if not enrollment or enrollment.state != 'live':
            return []
        days = self.option.days if self.option else 0
        if days and enrollment.end:
            enrollment.end = max(
                enrollment.end - dt.timedelta(days=days), enrollment.start)
        elif not days and enrollment.end is None:
            enrollment.end = self.extended_end
        else:
            return []
        return [enrollment]


class OrderDiscount(RPCInputMixin, ModelSQL, ModelView):
    "Course Order Discount"
    __name__ = 'course.order.discount'
    order = fields.Many2One(
        'course.order', "Order", required=True, ondelete='CASCADE',
        readonly=True)
    sequence = fields.Integer("Sequence", readonly=True)
    kind = fields.Selection([], "Kind", readonly=True)
    kind_string = kind.translated('kind')
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
    def check_modification(
            cls, mode, discounts, values=None, external=False):
        super().check_modification(
            mode, discounts, values=values, external=external)
        refuse_external(mode, discounts, values, external,
            'course_order.msg_order_discount_external', lambda d: d.order)

    @classmethod
    def _get_origin(cls):
        "Return the models a discount may come from"
        return []

    @classmethod
    def get_origin(cls):
        return model_selection(cls._get_origin())

    @fields.depends('order', '_parent_order.currency')
    def on_change_with_currency(self, name=None):
        return self.order.currency if self.order else None


class OrderDiscountLine(RPCInputMixin, ModelSQL):
    "Course Order Discount - Line"
    __name__ = 'course.order.discount-course.order.line'
    discount = fields.Many2One(
        'course.order.discount', "Discount", required=True,
        ondelete='CASCADE')
    line = fields.Many2One(
        'course.order.line', "Line", required=True, ondelete='CASCADE')

