"""With course_credit: a partial refund gives back the refunded lines' share
of the points spent, and a partial refund of a wallet order credits the
wallet with the lines' amount."""
from decimal import Decimal

from trytond.i18n import gettext
from trytond.modules.course.tools import allocate, company_language
from trytond.pool import Pool, PoolMeta


def split_points(weights, points):
    """Split the integer points among weights in proportion (largest
    remainder), so the parts add up to points"""
    base = sum(weights, Decimal(0))
    if not weights or not points or not base:
        return [0] * len(weights)
    exact = [Decimal(points) * w / base for w in weights]
    parts = [int(e) for e in exact]
    left = points - sum(parts)
    by_loss = sorted(
        range(len(weights)), key=lambda i: (exact[i] - parts[i], i),
        reverse=True)
    for i in by_loss[:left]:
        parts[i] += 1
    return parts


def discount_shares(order):
    """{(discount, line): share}: each discount's allocation to its lines,
    replayed in sequence as checkout made it (course_order's
    Checkout.add_discount)"""
    remaining = {l: l.unit_price for l in order.lines}
    shares = {}
    for discount in sorted(
            order.discounts, key=lambda d: (d.sequence or 0, d.id)):
        lines = list(discount.lines)
        parts = allocate(
            [remaining[l] for l in lines], discount.amount, order.currency)
        for line, part in zip(lines, parts):
            remaining[line] -= part
            shares[(discount, line)] = part
    return shares


class Refund(metaclass=PoolMeta):
    __name__ = 'course.payment.refund'

    @classmethod
    def line_points(cls, order):
        """{line: points}: the points spent on order split among its lines
        by their share of the credit discount"""
        Credit = Pool().get('course.credit.movement')
        spent = -Credit.totals_by_order([order])[order.id].get('spend', 0)
        result = {l: 0 for l in order.lines}
        if spent <= 0:
            return result
        shares = discount_shares(order)
        credit = [(l, s) for (d, l), s in shares.items() if d.kind == 'credit']
        parts = split_points([s for _, s in credit], spent)
        for (line, _), part in zip(credit, parts):
            result[line] += part
        return result

    @classmethod
    def revoke_lines(cls, refunds):
        "Give back the refunded lines' share of the points spent"
        Credit = Pool().get('course.credit.movement')
        super().revoke_lines(refunds)
        entries = []
        for refund in refunds:
            order = refund.order
            totals = Credit.totals_by_order([order])[order.id]
            held = -(totals.get('spend', 0) + totals.get('refund', 0))
            points = sum(cls.line_points(order)[l] for l in refund.lines)
            points = min(points, held)
            if points > 0:
                entries.append((order, 'refund', points, gettext(
                            'course_payment.msg_note_refund_points',
                            company_language(order.company),
                            order=order.number, refund=refund.number)))
        Credit.record_for_orders(entries)

    @classmethod
    def _refund_partial_wallet(cls, refund):
        "Credit the wallet with the refunded lines' amount"
        Wallet = Pool().get('course.wallet.movement')
        if refund.amount > 0:
            Wallet.record_for_orders([(refund.order, 'refund', refund.amount,
                        gettext('course_payment.msg_note_refund_wallet',
                            company_language(refund.order.company),
                            order=refund.order.number,
                            refund=refund.number))])
