"coupon.*: the student's coupons, claiming and redeeming"
from typing import Literal, Optional

from trytond.i18n import gettext
from trytond.modules.course.tools import now
from trytond.pool import Pool

from ..errors import not_found
from ..values import money, when
from .registry import Params, Result, method
from .types import Id, Text

GRANT_STATES = Literal['available', 'reserved', 'used', 'expired', 'revoked']


class GrantResult(Result):
    grant: int
    coupon: int
    name: str
    formula: str
    condition: Optional[str]
    state: str
    valid_from: Optional[str]
    valid_to: Optional[str]
    order: Optional[str]
    discount: Optional[str]


class ClaimableResult(Result):
    coupon: int
    name: str
    description: str
    formula: str
    condition: Optional[str]
    claim_end: Optional[str]
    remaining: Optional[int]
    held: int
    per_party_limit: Optional[int]


class MineParams(Params):
    state: Optional[GRANT_STATES] = None


class ClaimParams(Params):
    coupon: Id


class RedeemParams(Params):
    code: Text


def grants_json(call, grants):
    currency = call.currency
    return [{
            'grant': g.id,
            'coupon': g.coupon.id,
            'name': g.coupon.name,
            'formula': g.coupon.formula,
            'condition': money(g.coupon.condition, currency),
            'state': g.state,
            'valid_from': when(g.valid_from, call.company),
            'valid_to': when(g.valid_to, call.company),
            'order': g.order.number if g.order else None,
            'discount': money(g.discount_amount, currency),
            } for g in grants]


@method('coupon.mine', MineParams, list[GrantResult], readonly=True)
def mine(call, params):
    """The student's coupons (grants), of one state when given, newest
    first"""
    Grant = Pool().get('course.coupon.grant')
    domain = [
        ('party', '=', call.party.id),
        ('company', '=', call.company.id),
        ]
    if params.state:
        domain.append(('state', '=', params.state))
    return grants_json(call, Grant.search(
            domain, order=[('id', 'DESC')], limit=200))


def claimable_coupons(call):
    Coupon = Pool().get('course.coupon')
    at = now()
    coupons = Coupon.search([
            ('company', '=', call.company.id),
            ('issue_mode', '=', 'claim'),
            ['OR', ('claim_start', '=', None), ('claim_start', '<=', at)],
            ['OR', ('claim_end', '=', None), ('claim_end', '>=', at)],
            ['OR', ('valid_end', '=', None), ('valid_end', '>', at)],
            ['OR', ('remaining', '=', None), ('remaining', '>', 0)],
            ], order=[('id', 'DESC')], limit=200)
    return coupons


@method('coupon.claimable', result=list[ClaimableResult], readonly=True)
def claimable(call, params):
    """The coupons the student can claim now, with how many they hold"""
    Grant = Pool().get('course.coupon.grant')
    coupons = claimable_coupons(call)
    held = Grant.held_counts(coupons, [call.party])
    currency = call.currency
    return [{
            'coupon': c.id,
            'name': c.name,
            'description': c.description or '',
            'formula': c.formula,
            'condition': money(c.condition, currency),
            'claim_end': when(c.claim_end, call.company),
            'remaining': c.remaining,
            'held': held[(c.id, call.party.id)],
            'per_party_limit': c.per_party_limit or None,
            } for c in coupons]


@method('coupon.claim', ClaimParams, GrantResult, errors=[
        'not_found', 'coupon.not_claimable', 'coupon.sold_out',
        'coupon.limit_reached'],
    locks_party=True)
def claim(call, params):
    """Claim a coupon: the student gets a grant of it"""
    Coupon = Pool().get('course.coupon')
    coupons = Coupon.search([
            ('id', '=', params.coupon),
            ('company', '=', call.company.id),
            ])
    if not coupons:
        raise not_found(gettext(
                'course_storefront.msg_coupon_not_found', id=params.coupon))
    grant, = Coupon.claim([coupons[0].id], call.party.id)
    return grants_json(call, [grant])[0]


@method('coupon.redeem', RedeemParams, GrantResult, errors=[
        'coupon.code_invalid', 'coupon.code_taken', 'coupon.code_locked',
        'coupon.code_already_yours'],
    locks_party=True)
def redeem(call, params):
    """Redeem a printed code: its coupon becomes the student's; too many
    wrong codes lock the student out for a while (coupon.code_locked)"""
    Coupon = Pool().get('course.coupon')
    grant = Coupon.redeem(call.party.id, params.code)
    return grants_json(call, [grant])[0]
