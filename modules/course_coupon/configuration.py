from trytond.model import fields
from trytond.pool import PoolMeta


class Configuration(metaclass=PoolMeta):
    __name__ = 'course.configuration'
    coupon_stacking = fields.Selection([
            ('single', "One coupon per order"),
            ('course_and_order',
                "One course coupon per line and one order coupon"),
            ], "Coupon Stacking", required=True,
        help="single: one coupon per order.\n"
        "course_and_order: at most one course coupon per line, applied "
        "to its line first, then one order-wide coupon on what is left.")
    coupon_redeem_attempts = fields.Integer(
        "Wrong Codes per Hour", required=True,
        domain=[('coupon_redeem_attempts', '>', 0)],
        help="After this many wrong coupon codes within an hour, a student "
        "cannot redeem codes for the rest of that hour.")

    @classmethod
    def default_coupon_stacking(cls):
        return 'single'

    @classmethod
    def default_coupon_redeem_attempts(cls):
        return 10
