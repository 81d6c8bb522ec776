"""Sales figures over real RPC: a Shanghai school's orders paid on given
days (manually, with a coupon, with points, from the wallet), a whole and a
partial refund, coupons granted and used, points given, earned, spent and
expired, wallet top-ups; each report read by Course Administration in the
context of a period must give the figures these make; other groups get an
access error and nobody writes a report."""
import datetime as dt
import unittest
from decimal import Decimal

from trytond.modules.course.tests.rpc import RPCTestMixin
from trytond.modules.course.tests.tools import run_transaction

D = Decimal
MARCH_1, MARCH_2, MARCH_3 = (dt.date(2026, 3, d) for d in [1, 2, 3])
APRIL_1 = dt.date(2026, 4, 1)
REPORTS = [
    'course.order.reporting', 'course.order.reporting.course',
    'course.order.reporting.category', 'course.order.reporting.direction',
    'course.coupon.reporting', 'course.credit.reporting',
    'course.wallet.reporting',
    ]
# Tryton's AccessError (a UserError) as the JSON-RPC client names it
DENIED = ('UserError', 'AccessError')


def utc(*args):
    return dt.datetime(*args)


def restamp(model, ids, **values):
    """Move the timestamps of the records to the given UTC times (the
    workflow stamped them now)"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    table = Pool().get(model).__table__()
    Transaction().connection.cursor().execute(*table.update(
            [getattr(table, n) for n in values], list(values.values()),
            where=table.id.in_(list(ids))))


def school():
    """The orders, coupons and ledgers of the figures (run as root in the
    company; see the test's docstrings for the days)"""
    from trytond.modules.course.tests.tools import create_catalog
    from trytond.modules.course_coupon.tests.tools import (
        create_coupon, give)
    from trytond.modules.course_credit.tests.tools import (
        adjust, grant, set_config, topup)
    from trytond.modules.course_order.tests.tools import checkout
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool()
    Company = pool.get('company.company')
    Order = pool.get('course.order')
    Refund = pool.get('course.payment.refund')
    Credit = pool.get('course.credit.movement')
    Wallet = pool.get('course.wallet.movement')
    Grant = pool.get('course.coupon.grant')
    company = Company(Transaction().context['company'])
    company.timezone = 'Asia/Shanghai'
    company.save()
    # 1% of the paid amount earned back, 10 points a yuan
    set_config(credit_earn_rate=Decimal('0.01'), credit_ratio=10)
    cat = create_catalog(company)
    ann, bob, cid = cat.student, cat.other_student, pool.get(
        'party.party')(pool.get('party.party').create([{'name': "Cid"}])[0])
    coupon = create_coupon(company, '-100', courses=[cat.course_a])
    unused = create_coupon(company, '*0.5')
    welcome = grant(ann, 500)
    gift = grant(bob, 300)
    top = topup(bob, '1000')
    ann_grant = give(coupon, ann)
    cid_grant = give(coupon, cid)
    give(unused, cid)
    # A 1000 + B 500 less the coupon's 100 (on both lines: 933.33 and
    # 466.67), paid manually
    first = checkout(ann, cat.course_a, cat.course_b, grants=[ann_grant.id])
    # B 500 less 100 points (10.00), from the wallet: paid at once
    second = checkout(bob, cat.course_b, pay_method='wallet', credit=100)
    third = checkout(bob, cat.course_c)  # C 300, refunded whole
    fourth = checkout(cid, cat.course_a, cat.course_c)  # C refunded alone
    checkout(ann, cat.course_c)  # never paid
    Order.confirm_payment([first, third, fourth])
    whole = Refund.refund_order(third, reason="whole")
    line_c, = [l for l in fourth.lines if l.course == cat.course_c]
    partial = Refund.refund_order(fourth, lines=[line_c], reason="line C")
    expired = adjust(ann, 'expire', -50)
    # The days (UTC; Shanghai is 8 hours ahead)
    paid = {first: utc(2026, 3, 1, 10), second: utc(2026, 3, 2, 17),
        third: utc(2026, 3, 3, 1), fourth: utc(2026, 3, 3, 2)}
    for order, at in paid.items():
        restamp('course.order', [order.id], paid_at=at)
    restamp('course.order', [third.id], refunded_at=utc(2026, 4, 2, 3))
    restamp('course.payment.refund', [whole.id],
        refunded_at=utc(2026, 4, 2, 3))
    restamp('course.payment.refund', [partial.id],
        refunded_at=utc(2026, 4, 5, 3))
    restamp('course.coupon.grant', [ann_grant.id, cid_grant.id],
        granted_at=utc(2026, 3, 1, 1))
    restamp('course.coupon.grant', [ann_grant.id],
        used_at=utc(2026, 3, 1, 10))
    refunded = {third: utc(2026, 4, 2, 3), fourth: utc(2026, 4, 5, 3)}
    # The movements of the orders on the days of what made them (the
    # earned points of a refunded order go back with the refund)
    for Ledger in [Credit, Wallet]:
        for movement in Ledger.search([('order', '!=', None)]):
            taken_back = movement.kind == 'refund' or (
                movement.kind == 'earn' and movement.points < 0)
            at = (refunded if taken_back else paid)[movement.order]
            restamp(Ledger.__name__, [movement.id], date=at)
    restamp('course.credit.movement', [welcome.id, gift.id],
        date=utc(2026, 3, 1, 2))
    restamp('course.credit.movement', [expired.id],
        date=utc(2026, 4, 30, 20))  # 1 May in Shanghai
    restamp('course.wallet.movement', [top.id], date=utc(2026, 3, 2, 2))
    from trytond.modules.company.tests import create_company
    other = create_company()
    with Transaction().set_context(company=other.id):
        # Points in the other company: figures its users may see
        outsider, = pool.get('party.party').create([{'name': "Outsider"}])
        grant(outsider, 70, company=other.id)
    return {
        'other_company': other.id,
        'courses': [cat.course_a.id, cat.course_b.id, cat.course_c.id],
        'category': cat.category.id, 'direction': cat.direction.id,
        'coupon': coupon.id, 'unused': unused.id,
        'lines': sorted((l.course.name, l.amount) for o in [
                first, second, third, fourth] for l in o.lines),
        'payable': [o.payable_amount for o in [first, second, third, fourth]],
        }


def date_value(date):
    "A date as Tryton's JSON-RPC sends it"
    return {'__class__': 'date', 'year': date.year, 'month': date.month,
        'day': date.day}


class ReportingRPCTestCase(RPCTestMixin, unittest.TestCase):
    "The reports' figures, read over JSON-RPC, and who may read them"
    module = ['course_payment', 'course_coupon', 'course_credit']

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.data = run_transaction(
            school, context={'company': cls.company_id})

    def read(self, model, fields, period='month',
            from_date=dt.date(2026, 1, 1), to_date=dt.date(2026, 12, 31),
            login='manager', key='date', company=None):
        """{key: (fields…)} of the rows of model read by login in the
        context of period and dates (and company)"""
        client = self.login(login)
        context = {
            'period': period, 'from_date': date_value(from_date),
            'to_date': date_value(to_date)}
        if company:
            context['company'] = company
        rows = client.model(model, 'search_read', [], 0, None, None,
            [key] + fields, context=context)
        result = {}
        for row in rows:
            value = row[key]
            if isinstance(value, dict) and value.get('__class__') == 'date':
                value = dt.date(value['year'], value['month'], value['day'])
            result[value] = tuple(row[f] for f in fields)
        return result

    def test_orders(self):
        "The checkouts made the orders the figures are about"
        self.assertEqual(self.data['payable'],
            [D('1400.00'), D('490.00'), D('300.00'), D('1300.00')])
        self.assertEqual(self.data['lines'], [
                ('A', D('933.33')), ('A', D('1000.00')),
                ('B', D('466.67')), ('B', D('490.00')),
                ('C', D('300.00')), ('C', D('300.00'))])

    SALES = ['orders', 'paid_amount', 'refunds', 'refund_amount',
        'net_amount']

    def test_sales_by_day(self):
        """Paid on the Shanghai day: 2 March 17:00 UTC is 3 March; the
        whole refund on 2 April, the partial one on 5 April"""
        self.assertEqual(self.read('course.order.reporting', self.SALES,
                period='day'), {
                MARCH_1: (1, D('1400.00'), 0, D('0.00'), D('1400.00')),
                MARCH_3: (3, D('2090.00'), 0, D('0.00'), D('2090.00')),
                dt.date(2026, 4, 2): (0, D('0.00'), 1, D('300.00'),
                    D('-300.00')),
                dt.date(2026, 4, 5): (0, D('0.00'), 1, D('300.00'),
                    D('-300.00')),
                })

    def test_sales_by_month_and_year(self):
        "Months and years sum the days; the dates keep their days only"
        self.assertEqual(self.read('course.order.reporting', self.SALES), {
                MARCH_1: (4, D('3490.00'), 0, D('0.00'), D('3490.00')),
                APRIL_1: (0, D('0.00'), 2, D('600.00'), D('-600.00')),
                })
        self.assertEqual(self.read('course.order.reporting', self.SALES,
                period='year'), {
                dt.date(2026, 1, 1): (4, D('3490.00'), 2, D('600.00'),
                    D('2890.00')),
                })
        self.assertEqual(self.read('course.order.reporting', self.SALES,
                from_date=MARCH_2, to_date=dt.date(2026, 4, 3)), {
                MARCH_1: (3, D('2090.00'), 0, D('0.00'), D('2090.00')),
                APRIL_1: (0, D('0.00'), 1, D('300.00'), D('-300.00')),
                })

    def test_sales_per_course_category_direction(self):
        "The lines' amounts (after discounts) per course, then summed up"
        course_a, course_b, course_c = self.data['courses']
        self.assertEqual(self.read('course.order.reporting.course',
                self.SALES, key='course'), {
                course_a: (2, D('1933.33'), 0, D('0.00'), D('1933.33')),
                course_b: (2, D('956.67'), 0, D('0.00'), D('956.67')),
                course_c: (2, D('600.00'), 2, D('600.00'), D('0.00')),
                })
        total = (4, D('3490.00'), 2, D('600.00'), D('2890.00'))
        self.assertEqual(self.read('course.order.reporting.category',
                self.SALES, key='category'), {self.data['category']: total})
        self.assertEqual(self.read('course.order.reporting.direction',
                self.SALES, key='direction'),
            {self.data['direction']: total})

    def test_coupons(self):
        """Two grants of the coupon on 1 March, one used that day for 100;
        the other coupon's grant was made now (not in March)"""
        fields = ['granted', 'used', 'discount_amount']
        self.assertEqual(self.read('course.coupon.reporting', fields,
                from_date=MARCH_1, to_date=dt.date(2026, 3, 31),
                key='coupon'), {
                self.data['coupon']: (2, 1, D('100.00')),
                })
        self.assertEqual(self.read('course.coupon.reporting', fields,
                from_date=MARCH_2, to_date=dt.date(2026, 3, 31),
                key='coupon'), {})
        today = dt.date.today()
        self.assertEqual(self.read('course.coupon.reporting', fields,
                from_date=today - dt.timedelta(days=1),
                to_date=today + dt.timedelta(days=1), key='coupon'), {
                self.data['unused']: (1, 0, D('0.00')),
                })

    def test_points(self):
        """March: 800 given, 140 + 49 + 30 + 130 earned, 100 spent; April:
        the 30 earned by the refunded order taken back; May (Shanghai):
        50 expired"""
        fields = ['issued', 'spent', 'returned', 'expired', 'adjusted',
            'net']
        self.assertEqual(self.read('course.credit.reporting', fields), {
                MARCH_1: (1149, 100, 0, 0, 0, 1049),
                APRIL_1: (-30, 0, 0, 0, 0, -30),
                dt.date(2026, 5, 1): (0, 0, 0, 50, 0, -50),
                })

    def test_wallets(self):
        "1000 topped up on 2 March, 490 paid on 3 March"
        fields = ['topped_up', 'paid', 'refunded', 'adjusted', 'net']
        self.assertEqual(self.read('course.wallet.reporting', fields,
                period='day'), {
                MARCH_2: (D('1000.00'), D('0.00'), D('0.00'), D('0.00'),
                    D('1000.00')),
                MARCH_3: (D('0.00'), D('490.00'), D('0.00'), D('0.00'),
                    D('-490.00')),
                })

    def test_other_company(self):
        """In the context of a company not theirs, the manager reads no
        row of any report (the figures are the context company's, and the
        rules keep the user's companies), though that company has some"""
        def other_points():
            from trytond.pool import Pool
            Figures = Pool().get('course.credit.reporting')
            return [f.issued for f in Figures.search([])]
        self.assertEqual(run_transaction(other_points, context={
                    'company': self.data['other_company']}), [70])
        for model in REPORTS:
            with self.subTest(model=model):
                self.assertTrue(self.read(model, ['company'], key='id'))
                self.assertEqual(self.read(model, ['company'], key='id',
                        company=self.data['other_company']), {})

    def test_access(self):
        """Course Administration reads every report and writes none;
        Course Sales and a user of no course group get an access error"""
        for model in REPORTS:
            with self.subTest(model=model):
                manager = self.login('manager')
                self.assertTrue(
                    manager.model(model, 'search', [], 0, None, None))
                for login in ['sales', 'nobody']:
                    self.assertRPCError(
                        self.login(login).model, model, 'search_read',
                        [], 0, None, None, ['id'], kinds=DENIED,
                        text='not allowed')
                # No door writes figures: the server answers 403
                ids = manager.model(model, 'search', [], 0, None, None)
                for method, args in [('create', [[{}]]), ('delete', [ids]),
                        ('write', [ids, {}]), ('copy', [ids])]:
                    self.assertRPCError(manager.model, model, method,
                        *args, kinds=('HTTP 403',))
