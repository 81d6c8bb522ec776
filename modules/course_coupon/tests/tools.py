"Helpers for tests of coupons"
from decimal import Decimal

from trytond.pool import Pool


def create_coupon(company, formula, **values):
    """Create a coupon with formula; valid for 30 days from the grant, no
    stock or per-student limit unless values say otherwise"""
    Coupon = Pool().get('course.coupon')
    values.setdefault('name', f"Coupon {formula}")
    if not (values.get('valid_start') or values.get('valid_end')):
        values.setdefault('valid_days', 30)
    values.setdefault('per_party_limit', 0)
    values.setdefault('condition', Decimal(0))
    for key in ['directions', 'categories', 'courses']:
        if key in values:
            values[key] = [('add', [r.id for r in values[key]])]
    coupon, = Coupon.create([dict(
                values, formula=formula, company=company.id)])
    return coupon


def give(coupon, party):
    "Grant coupon to party (staff) and return the grant"
    Grant = Pool().get('course.coupon.grant')
    grant, = Grant.issue([coupon], [party])
    return grant
