"""Sales figures: what paid orders brought in and what refunds gave back,
by period, by course, by category and by direction.

Every report aggregates `course.order.reporting.movement`: one row per
line of an order paid (dated when it was paid) and one row per line given
back by a refund (dated when it was refunded).  course_order knows whole
refunds only (the refunded orders); course_payment replaces them with its
refund records (partial refunds too) through `_refund_lines`."""
from sql import Column, Literal, Null, Union
from sql.aggregate import Count, Min, Sum
from sql.conditionals import Case

from trytond.model import ModelSQL, ModelView, fields
from trytond.modules.course.reporting import ReportingMixin
from trytond.modules.currency.fields import Monetary
from trytond.pool import Pool

PAID_STATES = ['paid', 'refunding', 'refunded']
MOVEMENT_COLUMNS = [
    'id', 'company', 'kind', 'date', 'order', 'line', 'course', 'refund',
    'amount']


class Movement(ReportingMixin, ModelSQL):
    "Course Sales Movement"
    __name__ = 'course.order.reporting.movement'
    __string__ = "Sales Movement"

    kind = fields.Selection([
            ('paid', "Paid"),
            ('refund', "Refund"),
            ], "Kind", readonly=True)
    date = fields.Date("Date", readonly=True,
        help="The day it was paid or refunded, in the company's time zone.")
    order = fields.Many2One('course.order', "Order", readonly=True)
    line = fields.Many2One('course.order.line', "Line", readonly=True)
    course = fields.Many2One('course.course', "Course", readonly=True)
    refund = fields.Integer(
        "Refund", readonly=True,
        help="What identifies the refund: the order refunded, or the "
        "payment module's refund.")
    amount = fields.Numeric("Amount", digits=(16, 2), readonly=True)

    @classmethod
    def table_query(cls):
        return Union(
            cls._paid_lines(), cls._refund_lines(), all_=True)

    @classmethod
    def _tables(cls):
        pool = Pool()
        return (pool.get('course.order').__table__(),
            pool.get('course.order.line').__table__())

    @classmethod
    def _paid_lines(cls):
        "The lines of the orders paid in the context's dates"
        order, line = cls._tables()
        date = cls._local_date(order.paid_at)
        return line.join(order, condition=line.order == order.id).select(
            (line.id * 2).as_('id'),
            *cls._company_columns(),
            cls.kind.sql_cast(Literal('paid')).as_('kind'),
            date.as_('date'),
            order.id.as_('order'), line.id.as_('line'),
            line.course.as_('course'),
            cls.refund.sql_cast(Literal(None)).as_('refund'),
            cls.amount.sql_cast(line.amount).as_('amount'),
            where=(order.company == cls._company_id())
            & order.state.in_(PAID_STATES) & (order.paid_at != Null)
            & cls._in_dates(date))

    @classmethod
    def _refund_lines(cls):
        """The lines given back in the context's dates: here the lines of
        the orders refunded whole (one refund an order)"""
        order, line = cls._tables()
        date = cls._local_date(order.refunded_at)
        return line.join(order, condition=line.order == order.id).select(
            (line.id * 2 + 1).as_('id'),
            *cls._company_columns(),
            cls.kind.sql_cast(Literal('refund')).as_('kind'),
            date.as_('date'),
            order.id.as_('order'), line.id.as_('line'),
            line.course.as_('course'),
            order.id.as_('refund'),
            cls.amount.sql_cast(line.amount).as_('amount'),
            where=(order.company == cls._company_id())
            & (order.state == 'refunded') & (order.refunded_at != Null)
            & cls._in_dates(date))


class FiguresMixin(ReportingMixin):
    """Paid and refunded amounts, orders and refunds of the movements,
    grouped as `_group` says"""
    __slots__ = ()

    currency = fields.Many2One(
        'currency.currency', "Currency", readonly=True)
    orders = fields.Integer(
        "Orders", readonly=True, help="The orders paid in the period.")
    paid_amount = Monetary(
        "Paid", digits='currency', currency='currency', readonly=True,
        help="What the orders paid in the period cost (after discounts).")
    refunds = fields.Integer(
        "Refunds", readonly=True, help="The refunds made in the period.")
    refund_amount = Monetary(
        "Refunded", digits='currency', currency='currency', readonly=True,
        help="What the refunds of the period gave back.")
    net_amount = Monetary(
        "Net", digits='currency', currency='currency', readonly=True,
        help="Paid less refunded.")

    @classmethod
    def table_query(cls):
        movement = cls._movements()
        from_item, group_columns, group_by = cls._group(movement)
        paid = movement.kind == 'paid'
        refund = movement.kind == 'refund'
        zero = Literal(0)
        paid_amount = Sum(Case((paid, movement.amount), else_=zero))
        refund_amount = Sum(Case((refund, movement.amount), else_=zero))
        return from_item.select(
            *cls._company_columns(),
            *group_columns,
            Count(Case((paid, movement.order)), distinct=True).as_('orders'),
            cls.paid_amount.sql_cast(paid_amount).as_('paid_amount'),
            Count(Case((refund, movement.refund)), distinct=True
                ).as_('refunds'),
            cls.refund_amount.sql_cast(refund_amount).as_('refund_amount'),
            cls.net_amount.sql_cast(paid_amount - refund_amount
                ).as_('net_amount'),
            group_by=group_by)

    @classmethod
    def _movements(cls):
        "The movements to sum (a table or a query with their columns)"
        return Pool().get('course.order.reporting.movement').__table__()

    @classmethod
    def _group(cls, movement):
        """Return the FROM item (the movement table and what it joins), the
        columns of the group (with 'id') and the GROUP BY expressions"""
        raise NotImplementedError


class Sales(FiguresMixin, ModelSQL, ModelView):
    "Course Sales"
    __name__ = 'course.order.reporting'
    __string__ = "Sales"

    date = fields.Date(
        "Date", readonly=True, help="The first day of the period.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('date', 'DESC'), ('id', 'DESC')]

    @classmethod
    def _movements(cls):
        # The period computed below: PostgreSQL cannot group by an
        # expression holding a query parameter
        movement = super()._movements()
        return movement.select(
            *(Column(movement, n) for n in MOVEMENT_COLUMNS),
            cls._period(movement.date).as_('period'))

    @classmethod
    def _group(cls, movement):
        # The movements of a period are its own: their least id is unique
        return movement, [
            Min(movement.id).as_('id'), movement.period.as_('date')], [
            movement.period]


class CourseSales(FiguresMixin, ModelSQL, ModelView):
    "Course Sales per Course"
    __name__ = 'course.order.reporting.course'
    __string__ = "Sales per Course"

    course = fields.Many2One('course.course', "Course", readonly=True)
    category = fields.Many2One('course.category', "Category", readonly=True)
    direction = fields.Many2One(
        'course.direction', "Direction", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('paid_amount', 'DESC'), ('id', 'ASC')]

    @classmethod
    def _group(cls, movement):
        course = Pool().get('course.course').__table__()
        return (movement.join(course, condition=movement.course == course.id),
            [course.id.as_('id'), course.id.as_('course'),
                course.category.as_('category'),
                course.direction.as_('direction')],
            [course.id, course.category, course.direction])

    def get_rec_name(self, name):
        return self.course.rec_name if self.course else ''


class CategorySales(FiguresMixin, ModelSQL, ModelView):
    "Course Sales per Category"
    __name__ = 'course.order.reporting.category'
    __string__ = "Sales per Category"

    category = fields.Many2One('course.category', "Category", readonly=True)
    direction = fields.Many2One(
        'course.direction', "Direction", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('paid_amount', 'DESC'), ('id', 'ASC')]

    @classmethod
    def _group(cls, movement):
        course = Pool().get('course.course').__table__()
        return (movement.join(course, condition=movement.course == course.id),
            [course.category.as_('id'), course.category.as_('category'),
                course.direction.as_('direction')],
            [course.category, course.direction])

    def get_rec_name(self, name):
        return self.category.rec_name if self.category else ''


class DirectionSales(FiguresMixin, ModelSQL, ModelView):
    "Course Sales per Direction"
    __name__ = 'course.order.reporting.direction'
    __string__ = "Sales per Direction"

    direction = fields.Many2One(
        'course.direction', "Direction", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('paid_amount', 'DESC'), ('id', 'ASC')]

    @classmethod
    def _group(cls, movement):
        course = Pool().get('course.course').__table__()
        return (movement.join(course, condition=movement.course == course.id),
            [course.direction.as_('id'), course.direction.as_('direction')],
            [course.direction])

    def get_rec_name(self, name):
        return self.direction.rec_name if self.direction else ''
