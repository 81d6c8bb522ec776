"""Sales figures of course_order alone: paid orders by the day they were
paid (in the company's time zone), whole refunds by the day they were
refunded, per period, course, category and direction."""
import datetime as dt
import unittest
from decimal import Decimal

from dateutil.relativedelta import relativedelta

from trytond.modules.company.tests import create_company
from trytond.modules.course.tests.tools import create_catalog
from trytond.modules.course_order.tests.tools import checkout
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

D = Decimal


def utc(*args):
    return dt.datetime(*args)


def set_dates(order, **values):
    "Move the order's stamps (paid_at, refunded_at) to the given UTC times"
    Order = Pool().get('course.order')
    table = Order.__table__()
    cursor = Transaction().connection.cursor()
    cursor.execute(*table.update(
            [getattr(table, n) for n in values], list(values.values()),
            where=table.id == order.id))


class CourseOrderReportingTestCase(unittest.TestCase):
    "Sales figures of course_order"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('course_order')

    def shop(self):
        """Orders of a Shanghai school: 1500 paid on 1 March at 18:00, 300
        paid at 1 March 17:00 UTC (2 March in Shanghai), 500 paid on 5
        March and refunded on 2 April, one left unpaid"""
        pool = Pool()
        Order = pool.get('course.order')
        company = create_company()
        company.timezone = 'Asia/Shanghai'
        company.save()
        transaction = Transaction()
        transaction.context = dict(transaction.context, company=company.id)
        cat = create_catalog(company)
        first = checkout(cat.student, cat.course_a, cat.course_b)
        second = checkout(cat.student, cat.course_c)
        third = checkout(cat.other_student, cat.course_b)
        checkout(cat.other_student, cat.course_c)  # never paid
        Order.confirm_payment([first, second, third])
        Order.refund([third])
        set_dates(first, paid_at=utc(2026, 3, 1, 10))
        set_dates(second, paid_at=utc(2026, 3, 1, 17))
        set_dates(third, paid_at=utc(2026, 3, 5, 2),
            refunded_at=utc(2026, 4, 2, 3))
        return cat

    def read(self, model, period='month', from_date=dt.date(2026, 1, 1),
            to_date=dt.date(2026, 12, 31), key='date'):
        "{key: (orders, paid, refunds, refunded, net)} of model's rows"
        Model = Pool().get(model)
        with Transaction().set_context(
                period=period, from_date=from_date, to_date=to_date):
            return {getattr(r, key): (r.orders, r.paid_amount, r.refunds,
                    r.refund_amount, r.net_amount)
                for r in Model.search([])}

    @with_transaction()
    def test_by_day_and_month(self):
        "The day is the company's (Asia/Shanghai), refunds on their day"
        self.shop()
        date = dt.date
        self.assertEqual(self.read('course.order.reporting', 'day'), {
                date(2026, 3, 1): (1, D('1500.00'), 0, D('0.00'),
                    D('1500.00')),
                date(2026, 3, 2): (1, D('300.00'), 0, D('0.00'),
                    D('300.00')),
                date(2026, 3, 5): (1, D('500.00'), 0, D('0.00'),
                    D('500.00')),
                date(2026, 4, 2): (0, D('0.00'), 1, D('500.00'),
                    D('-500.00')),
                })
        self.assertEqual(self.read('course.order.reporting', 'month'), {
                date(2026, 3, 1): (3, D('2300.00'), 0, D('0.00'),
                    D('2300.00')),
                date(2026, 4, 1): (0, D('0.00'), 1, D('500.00'),
                    D('-500.00')),
                })
        self.assertEqual(self.read('course.order.reporting', 'year'), {
                date(2026, 1, 1): (3, D('2300.00'), 1, D('500.00'),
                    D('1800.00')),
                })
        # The dates of the context keep their days only
        self.assertEqual(self.read('course.order.reporting', 'month',
                from_date=date(2026, 3, 2), to_date=date(2026, 3, 31)), {
                date(2026, 3, 1): (2, D('800.00'), 0, D('0.00'),
                    D('800.00')),
                })

    @with_transaction()
    def test_by_course_category_direction(self):
        "Per course the lines' amounts; per category and direction the sums"
        cat = self.shop()
        by_course = self.read('course.order.reporting.course', key='course')
        self.assertEqual(by_course, {
                cat.course_a: (1, D('1000.00'), 0, D('0.00'), D('1000.00')),
                cat.course_b: (2, D('1000.00'), 1, D('500.00'),
                    D('500.00')),
                cat.course_c: (1, D('300.00'), 0, D('0.00'), D('300.00')),
                })
        total = (3, D('2300.00'), 1, D('500.00'), D('1800.00'))
        self.assertEqual(self.read(
                'course.order.reporting.category', key='category'),
            {cat.category: total})
        self.assertEqual(self.read(
                'course.order.reporting.direction', key='direction'),
            {cat.direction: total})
        self.assertEqual(self.read('course.order.reporting.course',
                from_date=dt.date(2026, 4, 1), key='course'), {
                cat.course_b: (0, D('0.00'), 1, D('500.00'), D('-500.00')),
                })

    @with_transaction()
    def test_other_company(self):
        "Another company's context sees none of these orders"
        self.shop()
        other = create_company()
        with Transaction().set_context(company=other.id):
            self.assertEqual(self.read('course.order.reporting'), {})
            self.assertEqual(
                self.read('course.order.reporting.course', key='course'), {})

    @with_transaction()
    def test_odd_context(self):
        """A period the reports do not know counts as month; dates that are
        no dates are ignored"""
        self.shop()
        by_month = self.read('course.order.reporting', 'month')
        self.assertEqual(
            self.read('course.order.reporting', "week'; DROP TABLE x"),
            by_month)
        self.assertEqual(self.read('course.order.reporting', 'month',
                from_date='garbage', to_date=42), by_month)

    @with_transaction()
    def test_context_defaults(self):
        "The context opens on the user's company, a year back, by month"
        pool = Pool()
        Context = pool.get('course.reporting.context')
        today = pool.get('ir.date').today()
        company = create_company()
        with Transaction().set_context(company=company.id):
            values = Context.default_get(
                ['company', 'from_date', 'to_date', 'period'],
                with_rec_name=False)
        self.assertEqual(values, {
                'company': company.id,
                'from_date': today - relativedelta(years=1),
                'to_date': today, 'period': 'month'})
