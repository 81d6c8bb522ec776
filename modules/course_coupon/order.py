"Coupons at checkout: the course_order extension points"
from trytond.i18n import gettext
from trytond.modules.course.tools import check_ids, now
from trytond.modules.course_order.exceptions import CheckoutError
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction

from .exceptions import CouponError


class Order(metaclass=PoolMeta):
    __name__ = 'course.order'

    @classmethod
    def _get_discount_steps(cls):
        return super()._get_discount_steps() + [
            (10, 'coupon_course'), (20, 'coupon_order')]

    @classmethod
    def checkout_validate(cls, checkout):
        """Take the `grants` option (grant ids): each must be the party's,
        available and valid now; the stacking configuration says how many"""
        pool = Pool()
        Grant = pool.get('course.coupon.grant')
        Configuration = pool.get('course.configuration')
        raw = checkout.options.pop('grants', None)
        ids = check_ids(raw, 'grants') if raw is not None else []
        state = checkout.namespace('course_coupon')
        state.grants = []
        state.amounts = {}
        state.stacking = 'single'
        if ids:
            if len(set(ids)) != len(ids):
                raise CheckoutError(gettext(
                        'course_coupon.msg_checkout_grant_twice'))
            stacking = Configuration(1).coupon_stacking
            if stacking == 'single' and len(ids) > 1:
                raise CheckoutError(gettext(
                        'course_coupon.msg_checkout_single_coupon'))
            existing = {g.id: g for g in Grant.search(
                    [('id', 'in', ids)])}
            at = now()
            grants = []
            for grant_id in ids:
                grant = existing.get(grant_id)
                if grant is None:
                    raise CheckoutError(gettext(
                            'course_coupon.msg_checkout_grant_unknown',
                            id=grant_id))
                try:
                    grant.check_usable(checkout.party, at)
                except CouponError as error:
                    raise CheckoutError(error.message) from error
                grants.append(grant)
            if stacking == 'course_and_order':
                order_wide = [
                    g for g in grants
                    if not g.coupon.is_course_coupon(stacking)]
                if len(order_wide) > 1:
                    raise CheckoutError(gettext(
                            'course_coupon.msg_checkout_one_order_coupon'))
            state.grants = grants
            state.stacking = stacking
            checkout.families.add('coupon')
        super().checkout_validate(checkout)

    @classmethod
    def _coupon_plan(cls, checkout, grant, lines, per_line):
        if grant.company != checkout.order.company:
            raise CheckoutError(gettext(
                    'course_coupon.msg_grant_not_yours', grant=grant.code))
        try:
            return grant.coupon.plan(
                lines, checkout.remaining, checkout.currency,
                per_line=per_line)
        except CouponError as error:
            raise CheckoutError(error.message) from error

    @classmethod
    def _coupon_apply(cls, checkout, grant, targets, amount):
        discount = checkout.add_discount(
            'coupon', amount, targets, grant.coupon.display, origin=grant)
        checkout.namespace('course_coupon').amounts[grant] = discount.amount

    @classmethod
    def checkout_discount_coupon_course(cls, checkout):
        """Stacking course_and_order: each course coupon on its line(s),
        with its threshold on the line's price; one per line"""
        state = checkout.namespace('course_coupon')
        grants = [
            g for g in state.grants
            if g.coupon.is_course_coupon(state.stacking)]
        taken = {}
        plans = []
        for grant in grants:
            targets, amount = cls._coupon_plan(
                checkout, grant, checkout.lines, per_line=True)
            for line in targets:
                if line in taken:
                    raise CheckoutError(gettext(
                            'course_coupon.msg_checkout_two_course_coupons',
                            course=line.product.rec_name))
                taken[line] = grant
            plans.append((grant, targets, amount))
        for grant, targets, amount in plans:
            cls._coupon_apply(checkout, grant, targets, amount)

    @classmethod
    def checkout_discount_coupon_order(cls, checkout):
        """The order-wide coupon (every coupon in single stacking) on the
        eligible lines' remaining subtotal"""
        state = checkout.namespace('course_coupon')
        grants = [
            g for g in state.grants
            if not g.coupon.is_course_coupon(state.stacking)]
        for grant in grants:
            targets, amount = cls._coupon_plan(
                checkout, grant, checkout.lines, per_line=False)
            cls._coupon_apply(checkout, grant, targets, amount)

    @classmethod
    def checkout_preview_info(cls, checkout):
        """Add `stacking` (the configuration) and `usable_coupons`: each
        available grant of the student that would apply alone to the lines,
        with the discount it would give (Decimal) and the courses it covers"""
        pool = Pool()
        Coupon = pool.get('course.coupon')
        Configuration = pool.get('course.configuration')
        info = super().checkout_preview_info(checkout)
        info['stacking'] = Configuration(1).coupon_stacking
        with Transaction().set_context(company=checkout.order.company.id):
            usable = Coupon.usable(checkout.party, checkout.lines)
        # What a coupon gives is the same for each of its grants: described
        # once per coupon, not once per grant (a student may hold hundreds)
        described = {}
        for u in usable:
            if u.coupon.id not in described:
                described[u.coupon.id] = {
                    'name': u.coupon.name,
                    'formula': u.coupon.formula,
                    'discount': u.discount,
                    # A line selling something else has no course
                    'courses': [l.course.id for l in u.lines if l.course],
                    'scope': u.coupon.scope,
                    }
        info['usable_coupons'] = [
            {'grant': u.grant.id, **described[u.coupon.id]} for u in usable]
        return info

    @classmethod
    def checkout_reserve(cls, checkout):
        "Reserve the grants for the saved order, race-free"
        pool = Pool()
        Grant = pool.get('course.coupon.grant')
        super().checkout_reserve(checkout)
        state = checkout.namespace('course_coupon')
        if state.grants:
            try:
                Grant.reserve(state.grants, checkout.order, state.amounts)
            except CouponError as error:
                raise CheckoutError(error.message) from error

    @classmethod
    def fulfil(cls, orders):
        "Paid: the reserved grants are used"
        Grant = Pool().get('course.coupon.grant')
        super().fulfil(orders)
        Grant.use(orders)

    @classmethod
    def release(cls, orders):
        "Cancelled or expired: the grants are available again (or expired)"
        Grant = Pool().get('course.coupon.grant')
        super().release(orders)
        Grant.release(orders)

    @classmethod
    def revoke(cls, orders):
        """Refunded: the grants stay used (see doc/index.rst: a refund gives
        the money back, not the coupon; staff may grant a new one)"""
        super().revoke(orders)


class OrderDiscount(metaclass=PoolMeta):
    __name__ = 'course.order.discount'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.kind.selection.append(('coupon', "Coupon"))

    @classmethod
    def _get_origin(cls):
        return super()._get_origin() + ['course.coupon.grant']
