"""Who calls: the student of a Bearer token, the company the storefront
sells for, and the rate limit of logins and registrations."""
import datetime as dt

from trytond.config import config
from trytond.modules.course.tools import now
from trytond.i18n import gettext
from trytond.pool import Pool
from trytond.transaction import Transaction

from . import errors, redis_client
from .errors import StorefrontError, refused


def storefront_company():
    """The company of `[course] storefront_company` (an id), else the only
    company of the database"""
    Company = Pool().get('company.company')
    company_id = config.getint('course', 'storefront_company', default=0)
    if company_id:
        companies = Company.search([('id', '=', company_id)])
    else:
        companies = Company.search([], limit=2)
    if len(companies) != 1:
        raise StorefrontError(
            errors.INTERNAL_ERROR, 'storefront.company',
            gettext('course_storefront.msg_company'))
    return companies[0]


def authenticate(call, required=True):
    """Set call.user and call.party from the token; refuse with -32001 when
    required and the token is missing, unknown or expired"""
    pool = Pool()
    User = pool.get('web.user')
    user = User.get_user(call.token) if call.token else None
    if user and user.active and user.party:
        call.user, call.party = user, user.party
    elif required:
        raise StorefrontError(
            errors.NOT_AUTHENTICATED, 'auth.required',
            gettext('course_storefront.msg_not_authenticated'))


def attempt_window():
    return config.getint('course', 'storefront_attempt_window', default=900)


def attempt_limits():
    return {
        'email': config.getint(
            'course', 'storefront_attempts_email', default=10),
        'ip': config.getint('course', 'storefront_attempts_ip', default=100),
        }


def count_attempt(call, email):
    """Count an attempt to log in or register for the e-mail from the
    client's address; refuse once either is over its limit in the window.

    Counted in Redis when configured (INCR with a TTL), else in the
    database in a transaction of its own: a refused login rolls its call
    back, not its attempt."""
    keys = {'email': f'email:{email}', 'ip': f'ip:{call.remote_address}'}
    counts = hit_redis(call.database, keys.values())
    if counts is None:
        counts = hit_database(keys.values())
    limits = attempt_limits()
    for kind, key in keys.items():
        if counts.get(key, 0) > limits[kind]:
            raise refused(
                'auth.rate_limited',
                gettext('course_storefront.msg_rate_limited',
                    minutes=attempt_window() // 60 or 1),
                retry_after=attempt_window())


def hit_redis(database, keys):
    client = redis_client.client()
    if client is None:
        return None
    import redis
    window = attempt_window()
    try:
        pipe = client.pipeline()
        names = [redis_client.key(database, 'attempt', k) for k in keys]
        for name in names:
            pipe.incr(name)
            pipe.expire(name, window, nx=True)
        values = pipe.execute()
    except redis.RedisError:
        return None
    return dict(zip(keys, values[::2]))


def hit_database(keys):
    Attempt = Pool().get('course.storefront.attempt')
    since = now() - dt.timedelta(seconds=attempt_window())
    keys = list(keys)
    transaction = Transaction()
    with transaction.new_transaction() as new:
        counts = Attempt.hit(keys, since)
        new.commit()
    return counts
