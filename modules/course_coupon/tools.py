"""What the RPC doors of coupons need and course.tools does not offer (yet):
who calls, many records checked at once, a boolean parameter"""
from trytond.i18n import gettext
from trytond.modules.course.tools import check_ids, check_record, in_max
from trytond.pool import Pool
from trytond.tools import grouped_slice
from trytond.transaction import Transaction, without_check_access

from .exceptions import CouponAccessError, CouponInputError

# Course Administration: the work of the coupons' buttons and wizards
ADMIN = ('course.group_course_admin',)
# Staff who act for a student (claim, redeem, usable coupons)
STAFF = ('course.group_course_admin', 'course.group_course_sales')


def check_caller(method, groups):
    """Refuse a user's call (access checked: over RPC) unless the user is
    in one of groups (XML ids 'module.id'); code, buttons and wizards, which
    run without access check, pass"""
    pool = Pool()
    User = pool.get('res.user')
    Group = pool.get('res.group')
    ModelData = pool.get('ir.model.data')
    transaction = Transaction()
    if not transaction.user or not transaction.check_access:
        return
    allowed = [ModelData.get_id(*g.split('.')) for g in groups]
    if set(allowed) & set(User.get_groups()):
        return
    with without_check_access():
        names = ', '.join(f'"{g.rec_name}"' for g in Group.browse(allowed))
    raise CouponAccessError(gettext(
            'course_coupon.msg_call_forbidden', method=method, groups=names))


def check_records(Model, values, name):
    """Return the records of Model with the ids of values (a list), which
    must all exist (inactive ones too), read in one query per slice"""
    ids = check_ids(values, name)
    found = set()
    with without_check_access(), Transaction().set_context(
            active_test=False):
        for sub_ids in grouped_slice(ids, in_max()):
            found.update(r.id for r in Model.search(
                    [('id', 'in', list(sub_ids))]))
    for id_ in ids:
        if id_ not in found:
            # raises the InputError of an unknown id
            check_record(Model, id_, name)
    return Model.browse(ids)


def check_list(value, name):
    "Return value when it is a list (or a tuple)"
    if not isinstance(value, (list, tuple)):
        raise CouponInputError(gettext(
                'course.msg_input_invalid', name=name,
                value=repr(value)[:60],
                kind=gettext('course.msg_input_kind_list')))
    return value


def check_bool(value, name):
    "Return value when it is a boolean"
    if not isinstance(value, bool):
        raise CouponInputError(gettext(
                'course_coupon.msg_input_boolean', name=name,
                value=repr(value)[:60]))
    return value


def check_company(method):
    """Return the company the call works in: the context's, which a user's
    call must have among the user's companies"""
    pool = Pool()
    User = pool.get('res.user')
    Company = pool.get('company.company')
    transaction = Transaction()
    company = transaction.context.get('company')
    external = transaction.user and transaction.check_access
    if not company or (external and company not in User.get_companies()):
        raise CouponAccessError(gettext(
                'course_coupon.msg_call_company', method=method))
    return Company(company)
