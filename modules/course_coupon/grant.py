"""Grants: a coupon held by a student (or a code waiting for one), how they
are issued (staff grants, claims, codes), redeemed and move with orders"""
import datetime as dt
import re
import secrets
from collections import defaultdict

from sql import Null
from sql.aggregate import Count

from trytond import backend
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, Unique, Workflow, fields
from trytond.modules.course.course import CompanyMixin
from trytond.modules.course.rpc import RPCInputMixin
from trytond.modules.course.tools import (
    guarded_button, lock_rows, log_transitions, move_state, move_where, now)
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from .exceptions import (
    CouponError, CouponModificationError, CouponValidationError,
    RedeemRateLimitError)

# Codes: 16 characters of an alphabet without 0/O, 1/I/L (79 bits)
CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789'
CODE_LENGTH = 16
REDEEM_WINDOW = dt.timedelta(hours=1)
# The most grants or codes one call may issue: checked before any is built
MAX_ISSUE = 10000

GRANT_STATES = [
    ('available', "Available"),
    ('reserved', "Reserved"),
    ('used', "Used"),
    ('expired', "Expired"),
    ('revoked', "Revoked"),
    ]
# Why a grant that is not available cannot be used, by state
UNAVAILABLE = {
    'reserved': 'course_coupon.msg_grant_reserved',
    'used': 'course_coupon.msg_grant_used',
    'expired': 'course_coupon.msg_grant_expired',
    'revoked': 'course_coupon.msg_grant_revoked',
    }


def new_code():
    "Return a new random code, hard to guess"
    return ''.join(
        secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(code):
    "The code as stored: no blanks or dashes, upper case"
    return re.sub(r'[\s\-]', '', str(code or '')).upper()


class Grant(
        RPCInputMixin, CompanyMixin, Workflow, ModelSQL, ModelView):
    "Coupon Grant"
    __name__ = 'course.coupon.grant'
    _rec_name = 'code'
    coupon = fields.Many2One(
        'course.coupon', "Coupon", required=True, ondelete='RESTRICT',
        readonly=True, domain=[('company', '=', Eval('company', -1))])
    party = fields.Many2One(
        'party.party', "Student", ondelete='RESTRICT', readonly=True,
        context={'company': Eval('company', -1)}, depends={'company'},
        help="Empty for a code not redeemed yet.")
    code = fields.Char("Code", readonly=True, strip=False)
    state = fields.Selection(
        GRANT_STATES, "State", readonly=True, required=True, sort=False)
    state_string = state.translated('state')
    origin = fields.Selection([
            ('staff', "Staff"),
            ('claim', "Claim"),
            ('script', "Script"),
            ('code', "Code"),
            ], "Origin", required=True, readonly=True)
    granted_at = fields.DateTime("Granted at", readonly=True)
    valid_from = fields.DateTime("Valid From", readonly=True)
    valid_to = fields.DateTime("Valid To", readonly=True)
    order = fields.Many2One(
        'course.order', "Order", ondelete='RESTRICT', readonly=True)
    used_at = fields.DateTime("Used at", readonly=True)
    discount_amount = fields.Numeric(
        "Discount", digits='currency', readonly=True,
        help="The discount the grant gives on its order.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.company.readonly = True
        t = cls.__table__()
        cls._sql_constraints += [
            ('code_unique', Unique(t, t.code),
                'course_coupon.msg_grant_code_unique'),
            ]
        cls._sql_indexes.update({
                Index(t, (t.party, Index.Equality()),
                    (t.state, Index.Equality(cardinality='low'))),
                Index(t, (t.order, Index.Equality())),
                Index(t, (t.code, Index.Equality(cardinality='high'))),
                Index(
                    t, (t.state, Index.Equality(cardinality='low')),
                    (t.valid_to, Index.Range()),
                    where=t.state == 'available'),
                })
        cls._order = [('id', 'DESC')]
        cls._transitions |= {
            ('available', 'reserved'),
            ('reserved', 'used'),
            ('reserved', 'available'),
            ('reserved', 'expired'),
            ('available', 'expired'),
            ('available', 'revoked'),
            }
        cls._buttons.update({
                'revoke': {
                    'invisible': Eval('state') != 'available',
                    'icon': 'tryton-cancel',
                    'depends': ['state'],
                    },
                })

    @classmethod
    def default_state(cls):
        return 'available'

    @classmethod
    def default_origin(cls):
        return 'script'

    def get_rec_name(self, name):
        return f'{self.code} ({self.coupon.rec_name})'

    @classmethod
    def search_rec_name(cls, name, clause):
        _, operator, value, *extra = clause
        if isinstance(value, str) and operator in {'=', '!='}:
            value = normalize_code(value)
        return ['OR',
            ('code', operator, value, *extra),
            ('coupon.rec_name', operator, value, *extra),
            ]

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if mode == 'create':
            # Per record: defaults are computed once per batch
            if not values.get('code'):
                values['code'] = new_code()
            else:
                values['code'] = normalize_code(values['code'])
        return values

    @classmethod
    def check_modification(cls, mode, grants, values=None, external=False):
        """Users create, change and delete no grant: grants are issued by
        the grant wizard, claims, codes and redemptions, and move only with
        their orders and the Revoke button"""
        super().check_modification(
            mode, grants, values=values, external=external)
        if external:
            if mode == 'create':
                raise CouponModificationError(gettext(
                        'course_coupon.msg_grant_create_external'))
            elif mode == 'write':
                raise CouponModificationError(gettext(
                        'course_coupon.msg_grant_write_external'))
            elif mode == 'delete':
                raise CouponModificationError(gettext(
                        'course_coupon.msg_grant_delete_external'))
        if mode == 'delete':
            for grant in grants:
                if grant.state in {'reserved', 'used'}:
                    raise CouponModificationError(gettext(
                            'course_coupon.msg_grant_delete',
                            grant=grant.rec_name))

    @classmethod
    def validate_fields(cls, grants, field_names):
        super().validate_fields(grants, field_names)
        if field_names & {'company', 'coupon'}:
            for grant in grants:
                if grant.company != grant.coupon.company:
                    raise CouponValidationError(gettext(
                            'course_coupon.msg_grant_company',
                            grant=grant.rec_name))

    def valid_at(self, at):
        "Whether the grant is valid at `at` (validity_domain as a test)"
        return ((not self.valid_from or self.valid_from <= at)
            and (not self.valid_to or at < self.valid_to))

    @classmethod
    def validity_domain(cls, at):
        "The domain of the grants valid at `at` (valid_at as a domain)"
        return [
            ['OR', ('valid_from', '=', None), ('valid_from', '<=', at)],
            ['OR', ('valid_to', '=', None), ('valid_to', '>', at)],
            ]

    def check_usable(self, party, at):
        "Raise CouponError unless the grant may be used by party at `at`"
        if self.party != party:
            raise CouponError(gettext(
                    'course_coupon.msg_grant_not_yours', grant=self.code))
        if self.state != 'available':
            raise CouponError(gettext(
                    UNAVAILABLE[self.state], grant=self.code))
        if self.valid_from and at < self.valid_from:
            raise CouponError(gettext(
                    'course_coupon.msg_grant_not_yet_valid',
                    grant=self.code, start=self.valid_from))
        if self.valid_to and at >= self.valid_to:
            raise CouponError(gettext(
                    'course_coupon.msg_grant_expired', grant=self.code))

    # ---- Issuing: staff grants, claims, codes -------------------------------

    @classmethod
    def held_counts(cls, coupons, parties):
        "Return {(coupon id, party id): grants held} in one query"
        grant = cls.__table__()
        cursor = Transaction().connection.cursor()
        counts = defaultdict(int)
        coupon_ids = [c.id for c in coupons]
        party_ids = [p.id for p in parties]
        if not coupon_ids or not party_ids:
            return counts
        cursor.execute(*grant.select(
                grant.coupon, grant.party, Count(grant.id),
                where=grant.coupon.in_(coupon_ids)
                & grant.party.in_(party_ids),
                group_by=[grant.coupon, grant.party]))
        for coupon_id, party_id, count in cursor:
            counts[(coupon_id, party_id)] = count
        return counts

    @classmethod
    def issue(cls, coupons, parties, origin='staff', skip_limited=False):
        """Grant each coupon once to each party; return the grants.

        Respects the issue window, the stock and the per-party limit; with
        skip_limited, parties at their limit are left out instead of
        refused."""
        Party = Pool().get('party.party')
        # Lock first: the call restarts once with the lock held; the write
        # of lock_rows makes a stale snapshot fail instead of miscounting
        lock_rows(Party, parties)
        at = now()
        to_create = []
        counts = cls.held_counts(coupons, parties)
        for coupon in coupons:
            coupon.check_issue_window(at)
            valid_from, valid_to = coupon.validity(at)
            for party in parties:
                if (coupon.per_party_limit
                        and counts[(coupon.id, party.id)]
                        >= coupon.per_party_limit):
                    if skip_limited:
                        continue
                    raise CouponError(gettext(
                            'course_coupon.msg_coupon_party_limit',
                            coupon=coupon.rec_name, party=party.rec_name,
                            limit=coupon.per_party_limit))
                to_create.append((coupon, {
                            'party': party.id, 'origin': origin,
                            'granted_at': at, 'valid_from': valid_from,
                            'valid_to': valid_to}))
                # a coupon or a party given twice counts twice
                counts[(coupon.id, party.id)] += 1
        return cls._issue(to_create)

    @classmethod
    def check_issue_size(cls, count):
        "Refuse to issue more than MAX_ISSUE grants or codes in one call"
        if count > MAX_ISSUE:
            raise CouponError(gettext(
                    'course_coupon.msg_issue_too_many',
                    count=count, maximum=MAX_ISSUE))

    @classmethod
    def _issue(cls, to_create):
        """Take the stock, then create the grants of [(coupon, values)]: the
        one way grants are created"""
        Coupon = Pool().get('course.coupon')
        counts = defaultdict(int)
        for coupon, _ in to_create:
            counts[coupon] += 1
        Coupon.take_stock(counts)
        return cls.create([dict(
                    values, coupon=coupon.id, company=coupon.company.id)
                for coupon, values in to_create])

    @classmethod
    def create_codes(cls, coupons, number):
        """Create number codes per coupon: grants with no party yet,
        counted in the stock; return them.  The number is checked against
        MAX_ISSUE and the stock before any code is built."""
        if number <= 0:
            raise CouponError(gettext(
                    'course_coupon.msg_coupon_codes_number'))
        cls.check_issue_size(number * len(coupons))
        for coupon in coupons:
            coupon.check_active()
            coupon.check_stock(number)
        to_create = []
        for coupon in coupons:
            valid_from, valid_to = (
                (None, None) if coupon.valid_days
                else (coupon.valid_start, coupon.valid_end))
            for _ in range(number):
                to_create.append((coupon, {
                            'party': None, 'origin': 'code',
                            'valid_from': valid_from, 'valid_to': valid_to}))
        return cls._issue(to_create)

    # ---- Redemption of a code -----------------------------------------------

    @classmethod
    def redeem(cls, party, code):
        """The student (party) redeems a code: its grant becomes theirs,
        once; return the grant.

        A wrong or taken code is refused and counted: after too many wrong
        codes within an hour the party is refused until the hour is over.
        """
        pool = Pool()
        Party = pool.get('party.party')
        Attempt = pool.get('course.coupon.redeem.attempt')
        Configuration = pool.get('course.configuration')
        lock_rows(Party, [party])
        limit = Configuration(1).coupon_redeem_attempts or 10
        if Attempt.count(party) >= limit:
            raise RedeemRateLimitError(gettext(
                    'course_coupon.msg_redeem_too_many', limit=limit))
        code = normalize_code(code)
        grant = cls._find_code(party, code)
        coupon = grant.coupon
        coupon.check_issue_window()
        if (coupon.per_party_limit
                and cls.held_counts([coupon], [party])[(coupon.id, party.id)]
                >= coupon.per_party_limit):
            raise CouponError(gettext(
                    'course_coupon.msg_coupon_party_limit',
                    coupon=coupon.rec_name, party=party.rec_name,
                    limit=coupon.per_party_limit))
        at = now()
        valid_from, valid_to = coupon.validity(at)
        # Conditional UPDATE: of two students racing for one code, one gets
        # it (the other waits, then sees it taken)
        if not move_state(
                cls, [grant.id],
                lambda t: (t.party == Null) & (t.state == 'available'),
                {'party': party.id, 'granted_at': at,
                    'valid_from': valid_from, 'valid_to': valid_to}):
            raise CouponError(gettext(
                    'course_coupon.msg_redeem_taken', code=code))
        return cls(grant.id)

    @classmethod
    def _find_code(cls, party, code):
        """Return the grant of code, available and without a student;
        refuse (and count the attempt) a wrong or taken code"""
        Attempt = Pool().get('course.coupon.redeem.attempt')
        grants = cls.search([('code', '=', code)], limit=1) if code else []
        company = Transaction().context.get('company')
        if not grants or (company and grants[0].company.id != company):
            Attempt.add(party)
            raise CouponError(gettext(
                    'course_coupon.msg_redeem_unknown', code=code))
        grant, = grants
        if grant.party or grant.state != 'available':
            Attempt.add(party)
            if grant.party == party:
                raise CouponError(gettext(
                        'course_coupon.msg_redeem_already_yours',
                        code=code))
            elif grant.party:
                raise CouponError(gettext(
                        'course_coupon.msg_redeem_taken', code=code))
            # revoked or expired before anyone redeemed it
            raise CouponError(gettext(
                    'course_coupon.msg_redeem_unknown', code=code))
        return grant

    # ---- Workflow -----------------------------------------------------------

    @classmethod
    @guarded_button(
        'available', error=CouponError,
        message='course_coupon.msg_grant_revoke_state')
    @Workflow.transition('revoked')
    def revoke(cls, grants):
        "Staff take back available grants (locked: not while reserved)"
        pass

    @classmethod
    def reserve(cls, grants, order, amounts):
        """Reserve the grants for the order, by a conditional UPDATE: the
        grants still available and the party's, or none (CouponError).
        amounts: {grant: discount given}"""
        if not grants:
            return
        by_amount = defaultdict(list)
        for grant in grants:
            by_amount[amounts.get(grant)].append(grant.id)
        reserved = []
        for amount, ids in by_amount.items():
            reserved += move_state(
                cls, ids,
                lambda t: (t.state == 'available')
                & (t.party == order.party.id),
                {'state': 'reserved', 'order': order.id,
                    'discount_amount': amount})
        if len(reserved) != len(grants):
            raise CouponError(gettext(
                    'course_coupon.msg_grant_taken_meanwhile'))
        log_transitions(cls, reserved, 'reserved')

    @classmethod
    def _move(cls, where, values, state):
        """Move the grants matching where(table) to values by a conditional
        UPDATE, log their transition to state; return their ids (the
        expiry job moves thousands: no records built for nothing)"""
        ids = move_where(cls, where, values)
        # Set-based: the expiry job releases thousands of grants at once
        log_transitions(cls, ids, state)
        return ids

    @classmethod
    def use(cls, orders):
        "The orders are paid: their reserved grants are used (their ids)"
        if not orders:
            return []
        order_ids = [o.id for o in orders]
        return cls._move(
            lambda t: t.order.in_(order_ids) & (t.state == 'reserved'),
            {'state': 'used', 'used_at': now()}, 'used')

    @classmethod
    def release(cls, orders):
        """The orders are cancelled or expired: their reserved grants are
        available again, or expired when their validity is over; return the
        ids of the grants"""
        if not orders:
            return []
        at = now()
        order_ids = [o.id for o in orders]
        freed = {'order': None, 'discount_amount': None}
        expired = cls._move(
            lambda t: t.order.in_(order_ids) & (t.state == 'reserved')
            & (t.valid_to != Null) & (t.valid_to <= at),
            dict(freed, state='expired'), 'expired')
        available = cls._move(
            lambda t: t.order.in_(order_ids) & (t.state == 'reserved'),
            dict(freed, state='available'), 'available')
        return expired + available

    @classmethod
    def expire_grants(cls):
        """Expire the available grants whose validity is over (the cron
        job); reserved ones follow their order"""
        at = now()
        company = Transaction().context.get('company')

        def where(t):
            condition = ((t.state == 'available') & (t.valid_to != Null)
                & (t.valid_to <= at))
            if company:
                condition &= t.company == company
            return condition
        return cls.browse(cls._move(where, {'state': 'expired'}, 'expired'))


class RedeemAttempt(RPCInputMixin, ModelSQL):
    "Coupon Code Redeem Attempt"
    __name__ = 'course.coupon.redeem.attempt'
    # The party's id, not a Many2One: the foreign key would make the insert
    # (in its own transaction) wait for the redeem's lock on the party
    party = fields.Integer("Student", required=True)
    at = fields.DateTime("At", required=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls.__rpc__ = {}
        cls._sql_indexes.add(
            Index(t, (t.party, Index.Equality()), (t.at, Index.Range())))

    @classmethod
    def count(cls, party):
        "The wrong codes party tried within the last hour"
        with without_check_access():
            return cls.search([
                    ('party', '=', party.id),
                    ('at', '>', now() - REDEEM_WINDOW),
                    ], count=True)

    @classmethod
    def add(cls, party):
        """Record a wrong code of party in a transaction of its own: the
        failed redeem rolls back, the attempt stays.

        A SQLite file has one writer, and the redeem's transaction is it
        (its party lock writes the row): a transaction of its own would
        wait for it until the database answers busy.  There the attempt is
        written once the redeem's transaction has ended.  (The in-memory
        database of the tests shares one connection: nothing waits.)"""
        transaction = Transaction()
        database = transaction.database.name
        if backend.name == 'sqlite' and database != ':memory:':
            transaction.atexit(cls._add_after, database, party.id)
            return
        with transaction.new_transaction() as new:
            cls._insert(party.id)
            new.commit()

    @classmethod
    def _add_after(cls, database, party_id):
        with Transaction(new=True).start(database, 0) as transaction:
            cls._insert(party_id)
            transaction.commit()

    @classmethod
    def _insert(cls, party_id):
        "Insert an attempt of party_id now, forget the old ones"
        table = cls.__table__()
        with without_check_access():
            cursor = Transaction().connection.cursor()
            at = now()
            # Forget what is older than the window
            cursor.execute(*table.delete(
                    where=(table.party == party_id)
                    & (table.at <= at - REDEEM_WINDOW)))
            cls.create([{'party': party_id, 'at': at}])
