"""Who calls: the student of a Bearer token, the company the storefront
sells for, and the rate limit of logins and registrations."""
import datetime as dt

from sql.conditionals import Coalesce

from trytond.cache import Cache
from trytond.config import config
from trytond.modules.course.tools import now
from trytond.i18n import gettext
from trytond.pool import Pool
from trytond.transaction import Transaction

from . import errors, redis_client
from .errors import StorefrontError, refused


# The id of the storefront's company, found once per process and database;
# cleared when a company is created or deleted (storefront.Company)
_company = Cache('course_storefront.company', context=False)


def storefront_company():
    """The company of `[course] storefront_company` (an id), else the only
    company of the database"""
    Company = Pool().get('company.company')
    company_id = config.getint('course', 'storefront_company', default=0)
    found = _company.get(company_id)
    if found is not None:
        return Company(found)
    if company_id:
        companies = Company.search([('id', '=', company_id)])
    else:
        companies = Company.search([], limit=2)
    if len(companies) != 1:
        raise StorefrontError(
            errors.INTERNAL_ERROR, 'storefront.company',
            gettext('course_storefront.msg_company'))
    _company.set(company_id, companies[0].id)
    return companies[0]


def clear_storefront_company():
    _company.clear()


def authenticate(call, required=True):
    """Set call.user and call.party from the token; refuse with -32001 when
    required and the token is missing, unknown or expired"""
    found = session_user(call.token) if call.token else None
    if found:
        call.user, call.party = found
    elif required:
        raise StorefrontError(
            errors.NOT_AUTHENTICATED, 'auth.required',
            gettext('course_storefront.msg_not_authenticated'))


def session_user(token):
    """(web.user, party) of an active student's token, else None: what
    web.user's get_user with the user's active and party checks answers,
    in one query (this runs before every call of a student).  An expired
    session is refused (web.user.session deletes the expired ones at each
    login)."""
    pool = Pool()
    Session = pool.get('web.user.session')
    User = pool.get('web.user')
    Party = pool.get('party.party')
    session, user = Session.__table__(), User.__table__()
    cursor = Transaction().connection.cursor()
    cursor.execute(*session.join(user, condition=session.user == user.id
            ).select(user.id, user.party, user.active,
            Coalesce(session.write_date, session.create_date),
            where=session.key == token, limit=1))
    row = cursor.fetchone()
    if row is None:
        return None
    user_id, party_id, active, modified = row
    if isinstance(modified, str):  # SQLite without the column's type
        modified = dt.datetime.fromisoformat(modified)
    if (abs(modified - dt.datetime.now()) > Session.timeout()
            or not active or party_id is None):
        return None
    return User(user_id), Party(party_id)


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
