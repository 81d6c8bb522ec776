"""The stable `data.type` of the business modules' refusals.

A refusal is a UserError whose text came from one of the modules'
messages; the dispatcher finds which (see jsonrpc.MESSAGES) and this table
names it.  A message not listed is answered with the slug
`<module>.<message>` (its XML id without `msg_`), which is as stable as the
message; the documented slugs are these."""
from trytond.modules.course.exceptions import InputError

from . import errors

SLUGS = {
    'web_user.msg_user_email_unique': 'auth.email_taken',
    'course_order.msg_checkout_course_owned': 'cart.course_owned',
    'course_order.msg_checkout_course_pending': 'cart.course_pending',
    'course_order.msg_checkout_course_unavailable': 'cart.course_unavailable',
    'course_order.msg_checkout_course_unknown': 'cart.course_unavailable',
    'course_order.msg_checkout_option_unknown': 'cart.option_unavailable',
    'course_order.msg_checkout_empty': 'cart.nothing_selected',
    'course_order.msg_checkout_discounts_not_combinable':
        'checkout.discounts_not_combinable',
    'course_order.msg_checkout_unknown_pay_method':
        'checkout.pay_method_unknown',
    'course_order.msg_checkout_free_not_free': 'checkout.not_free',
    'course_order.msg_order_wrong_state': 'order.not_unpaid',
    'course_order.msg_order_pay_not_unpaid': 'order.not_unpaid',
    'course_payment.msg_start_not_unpaid': 'order.not_unpaid',
    'course_payment.msg_start_not_provider': 'order.pay_method',
    'course_payment.msg_provider_error': 'payment.provider_error',
    'course_payment.msg_provider_missing': 'payment.provider_missing',
    'course_payment.msg_request_order_state': 'order.not_refundable',
    'course_payment.msg_request_open': 'refund.request_open',
    'course_payment.msg_request_reason': 'refund.reason_required',
    'course_coupon.msg_checkout_grant_unknown': 'coupon.not_found',
    'course_coupon.msg_checkout_grant_twice': 'coupon.twice',
    'course_coupon.msg_checkout_single_coupon': 'coupon.stacking',
    'course_coupon.msg_checkout_one_order_coupon': 'coupon.stacking',
    'course_coupon.msg_checkout_two_course_coupons': 'coupon.stacking',
    'course_coupon.msg_coupon_condition': 'coupon.not_applicable',
    'course_coupon.msg_coupon_condition_line': 'coupon.not_applicable',
    'course_coupon.msg_coupon_no_eligible_course': 'coupon.not_applicable',
    'course_coupon.msg_grant_not_yours': 'coupon.not_found',
    'course_coupon.msg_grant_reserved': 'coupon.not_available',
    'course_coupon.msg_grant_used': 'coupon.not_available',
    'course_coupon.msg_grant_expired': 'coupon.expired',
    'course_coupon.msg_grant_revoked': 'coupon.not_available',
    'course_coupon.msg_grant_not_yet_valid': 'coupon.not_yet_valid',
    'course_coupon.msg_grant_taken_meanwhile': 'coupon.not_available',
    'course_coupon.msg_coupon_inactive': 'coupon.not_available',
    'course_coupon.msg_coupon_claim_window': 'coupon.not_claimable',
    'course_coupon.msg_coupon_not_claimable': 'coupon.not_claimable',
    'course_coupon.msg_coupon_sold_out': 'coupon.sold_out',
    'course_coupon.msg_coupon_not_enough': 'coupon.sold_out',
    'course_coupon.msg_coupon_party_limit': 'coupon.limit_reached',
    'course_coupon.msg_redeem_unknown': 'coupon.code_invalid',
    'course_coupon.msg_redeem_taken': 'coupon.code_taken',
    'course_coupon.msg_redeem_already_yours': 'coupon.code_already_yours',
    'course_coupon.msg_redeem_too_many': 'coupon.code_locked',
    'course_credit.msg_checkout_credit_too_many': 'credit.over_limit',
    'course_credit.msg_checkout_credit_inexact': 'credit.inexact',
    'course_credit.msg_credit_balance_short': 'credit.balance_short',
    'course_credit.msg_wallet_balance_short': 'wallet.balance_short',
    # course_degree (an extras_depend: the storefront's degree.* methods)
    'course_degree.msg_checkout_degree_unknown': 'degree.unavailable',
    'course_degree.msg_checkout_degree_unavailable': 'degree.unavailable',
    'course_degree.msg_checkout_option_other': 'degree.unavailable',
    'course_degree.msg_checkout_degree_twice': 'degree.unavailable',
    'course_degree.msg_checkout_degree_enrolled': 'degree.enrolled',
    'course_degree.msg_checkout_degree_pending': 'degree.pending',
    'course_degree.msg_checkout_course_module':
        'cart.course_not_sold_alone',
    'course_degree.msg_form_unknown_field': 'degree.form_invalid',
    'course_degree.msg_form_field_required': 'degree.form_invalid',
    'course_degree.msg_form_field_invalid': 'degree.form_invalid',
    'course_degree.msg_form_field_too_long': 'degree.form_invalid',
    'course_degree.msg_form_enrollment_state': 'degree.closed',
    'course_degree.msg_study_enrollment_state': 'degree.closed',
    'course_degree.msg_submission_enrollment_state': 'degree.closed',
    'course_degree.msg_submission_module_closed': 'degree.homework_closed',
    'course_degree.msg_submission_not_open': 'degree.homework_closed',
    'course_degree.msg_submission_text_invalid': 'degree.homework_invalid',
    'course_degree.msg_submission_text_too_long': 'degree.homework_invalid',
    'course_degree.msg_submission_attachment_invalid':
        'degree.homework_invalid',
    'course_degree.msg_submission_attachment_too_large':
        'degree.homework_invalid',
    'course_degree.msg_submission_empty': 'degree.homework_invalid',
    }


def slug_of(message_id, error):
    "(code, data.type) of a business module's refusal"
    if message_id in SLUGS:
        return errors.BUSINESS_RULE, SLUGS[message_id]
    if isinstance(error, InputError):
        return errors.INVALID_PARAMS, 'params.invalid'
    if message_id:
        module, _, name = message_id.partition('.')
        return errors.BUSINESS_RULE, f'{module}.{name.removeprefix("msg_")}'
    return errors.BUSINESS_RULE, 'refused'
