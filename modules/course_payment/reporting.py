"""Sales figures with payments: the refunds are course.payment.refund
records (whole orders and some lines), dated when the money went back."""
from sql import Literal, Null

from trytond.pool import Pool, PoolMeta


class Movement(metaclass=PoolMeta):
    __name__ = 'course.order.reporting.movement'

    @classmethod
    def _refund_lines(cls):
        """The lines of the refunds that succeeded in the context's dates,
        one refund per record (a late payment's refund gave back money no
        paid order counted: it has no line and is left out)"""
        pool = Pool()
        Refund = pool.get('course.payment.refund')
        RefundLine = pool.get('course.payment.refund-course.order.line')
        refund = Refund.__table__()
        relation = RefundLine.__table__()
        order, line = cls._tables()
        date = cls._local_date(refund.refunded_at)
        return (relation
            .join(refund, condition=relation.refund == refund.id)
            .join(line, condition=relation.line == line.id)
            .join(order, condition=line.order == order.id)
            .select(
                (relation.id * 2 + 1).as_('id'),
                *cls._company_columns(),
                cls.kind.sql_cast(Literal('refund')).as_('kind'),
                date.as_('date'),
                order.id.as_('order'), line.id.as_('line'),
                line.course.as_('course'),
                refund.id.as_('refund'),
                cls.amount.sql_cast(line.amount).as_('amount'),
                where=(refund.company == cls._company_id())
                & (refund.state == 'succeeded')
                & (refund.refunded_at != Null)
                & cls._in_dates(date)))
