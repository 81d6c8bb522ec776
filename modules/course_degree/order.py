"""Degree programs at checkout (the item kind `degree`), what a paid order
gives (the enrollment) and what a refund takes back"""
from trytond.i18n import gettext
from trytond.model import fields
from trytond.modules.course.course import SalePrice
from trytond.modules.course.tools import (
    check_id, company_language, round_amount)
from trytond.modules.course_order.exceptions import CheckoutError
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction


class Order(metaclass=PoolMeta):
    __name__ = 'course.order'

    @classmethod
    def _get_checkout_item_kinds(cls):
        return super()._get_checkout_item_kinds() + ['degree']

    @classmethod
    def _checkout_item_degree(cls, item):
        "Return a degree item as {'degree': id, 'option': id or None}"
        unknown = item.keys() - {'degree', 'option'}
        if unknown:
            raise CheckoutError(gettext(
                    'course_degree.msg_checkout_degree_item_keys',
                    keys=', '.join(sorted(map(str, unknown)))[:100]))
        option = item.get('option')
        return {
            'degree': check_id(item['degree'], 'degree'),
            'option': check_id(option, 'option') if option is not None
            else None,
            }

    @classmethod
    def checkout_items_degree(cls, checkout, items):
        """Check the degree items and return each with its records and its
        price: [({'degree': degree, 'option': option or None}, SalePrice)].

        Refused: an unknown, unpublished, archived or other company's
        program, an option of another program, a program twice, a program
        the student is enrolled in or has in an unpaid order.
        """
        pool = Pool()
        Degree = pool.get('course.degree')
        Option = pool.get('course.degree.option')
        with Transaction().set_context(active_test=False):
            degrees = {d.id: d for d in Degree.search(
                    [('id', 'in', [i['degree'] for i in items])])}
            options = {o.id: o for o in Option.search(
                    [('id', 'in', [i['option'] for i in items
                                if i.get('option')])])}
        pairs = []
        for item in items:
            degree = degrees.get(item['degree'])
            if degree is None:
                raise CheckoutError(gettext(
                        'course_degree.msg_checkout_degree_unknown',
                        id=item['degree']))
            option = None
            if item.get('option'):
                option = options.get(item['option'])
                if option is None or option.degree != degree:
                    raise CheckoutError(gettext(
                            'course_degree.msg_checkout_option_other',
                            id=item['option'], degree=degree.rec_name))
            pairs.append((degree, option))
        seen = set()
        for degree, _ in pairs:
            if (not degree.active or not degree.published
                    or degree.company != checkout.order.company):
                raise CheckoutError(gettext(
                        'course_degree.msg_checkout_degree_unavailable',
                        degree=degree.rec_name))
            if degree in seen:
                raise CheckoutError(gettext(
                        'course_degree.msg_checkout_degree_twice',
                        degree=degree.rec_name))
            seen.add(degree)
        cls.check_not_enrolled(checkout.party, [d for d, _ in pairs])
        cls.check_degree_not_pending(checkout.party, [d for d, _ in pairs])
        return [
            (dict(item, degree=degree, option=option),
                cls._degree_price(degree, option))
            for item, (degree, option) in zip(items, pairs)]

    @classmethod
    def _degree_price(cls, degree, option):
        """The SalePrice of a program (with option): its price, named in the
        company's language; programs have no price activity"""
        Course = Pool().get('course.course')
        price = round_amount(
            degree.currency, option.price if option else degree.price)
        return SalePrice(
            price, price,
            Course._price_name(company_language(degree.company)), None)

    @classmethod
    def check_not_enrolled(cls, party, degrees):
        "Refuse a program the student is already enrolled in (any state)"
        Enrollment = Pool().get('course.degree.enrollment')
        enrolled = Enrollment.search([
                ('party', '=', party.id),
                ('degree', 'in', [d.id for d in degrees]),
                ], limit=1)
        if enrolled:
            raise CheckoutError(gettext(
                    'course_degree.msg_checkout_degree_enrolled',
                    degree=enrolled[0].degree.rec_name))

    @classmethod
    def check_degree_not_pending(cls, party, degrees):
        "Refuse a program already in an unpaid order of the student"
        Line = Pool().get('course.order.line')
        pending = Line.search([
                ('order.party', '=', party.id),
                ('order.state', '=', 'unpaid'),
                ('product', 'in', [
                        f'course.degree,{d.id}' for d in degrees]),
                ], limit=1)
        if pending:
            line, = pending
            raise CheckoutError(gettext(
                    'course_degree.msg_checkout_degree_pending',
                    degree=line.product.rec_name,
                    order=line.order.rec_name))

    @classmethod
    def checkout_items_course(cls, checkout, items):
        "Refuse a course that a program sells and that is not sold alone"
        result = super().checkout_items_course(checkout, items)
        cls.check_sold_alone([item['course'] for item, _ in result])
        return result

    @classmethod
    def check_sold_alone(cls, courses):
        Module = Pool().get('course.degree.module')
        modules = Module.search([
                ('course', 'in', [c.id for c in courses]),
                ('course.sold_alone', '=', False),
                ], limit=1)
        if modules:
            module, = modules
            raise CheckoutError(gettext(
                    'course_degree.msg_checkout_course_module',
                    course=module.course.rec_name,
                    degree=module.degree.rec_name))

    @classmethod
    def _get_checkout_line(cls, checkout, item, price):
        line = super()._get_checkout_line(checkout, item, price)
        line.degree_option = None
        if 'degree' in item:
            line.product = item['degree']
            line.degree_option = item.get('option')
        return line

    @classmethod
    def fulfil(cls, orders):
        "Paid: each degree line gives its enrollment, once"
        Enrollment = Pool().get('course.degree.enrollment')
        super().fulfil(orders)
        Enrollment.enroll(cls.degree_lines(orders))

    @classmethod
    def revoke(cls, orders):
        "Refunded: the enrollments the degree lines gave end for good"
        Enrollment = Pool().get('course.degree.enrollment')
        super().revoke(orders)
        Enrollment.end_refunded([
                e for l in cls.degree_lines(orders)
                for e in l.get_revoked_degree_enrollments()])

    @staticmethod
    def degree_lines(orders):
        return [l for o in orders for l in o.lines if l.is_degree]


class OrderLine(metaclass=PoolMeta):
    __name__ = 'course.order.line'
    degree_option = fields.Many2One(
        'course.degree.option', "Program Option", ondelete='RESTRICT',
        readonly=True,
        help="The validity option of a line selling a degree program.")
    degree_enrollments = fields.One2Many(
        'course.degree.enrollment', 'order_line', "Degree Enrollments",
        readonly=True)

    @classmethod
    def _get_product(cls):
        return super()._get_product() + ['course.degree']

    @property
    def is_degree(self):
        return bool(self.product) and (
            self.product.__name__ == 'course.degree')

    def get_revoked_degree_enrollments(self):
        """The degree enrollments a refund of the line ends (a partial
        refund of course_payment may have ended them already)"""
        if getattr(self, 'refunded', False) and self.degree_enrollments and (
                all(e.refunded for e in self.degree_enrollments)):
            return []
        return list(self.degree_enrollments)


class Refund(metaclass=PoolMeta):
    __name__ = 'course.payment.refund'

    @classmethod
    def revoke_lines(cls, refunds):
        "A partial refund of a degree line ends its enrollment too"
        Enrollment = Pool().get('course.degree.enrollment')
        super().revoke_lines(refunds)
        Enrollment.end_refunded([
                e for r in refunds for l in r.lines if l.is_degree
                for e in l.degree_enrollments])
