"auth.* and account.me: students are web.user records linked to a party"
from pydantic import BaseModel

from trytond.i18n import gettext
from trytond.pool import Pool

from ..errors import refused
from ..session import count_attempt
from .registry import Params, Result, method
from .types import Email, Name, Password


class UserResult(Result):
    id: int
    email: str
    name: str


class TokenResult(Result):
    token: str
    user: UserResult


class RegisterParams(Params):
    email: Email
    password: Password
    name: Name


class LoginParams(Params):
    email: Email
    password: Password


class MeResult(Result):
    email: str
    name: str
    credit_balance: int
    wallet_balance: str
    credit_ratio: int


def user_json(user):
    return {'id': user.id, 'email': user.email, 'name': user.party.name}


def token_json(user):
    return {'token': user.new_session(), 'user': user_json(user)}


@method('auth.register', RegisterParams, TokenResult, auth=False,
    errors=['auth.email_taken', 'auth.rate_limited'])
def register(call, params):
    """Create a student (a party and its web user) and log in"""
    pool = Pool()
    User = pool.get('web.user')
    Party = pool.get('party.party')
    count_attempt(call, params.email)
    if User.search([('email', '=', params.email)], limit=1):
        raise refused('auth.email_taken', gettext(
                'course_storefront.msg_email_taken'))
    party, = Party.create([{'name': params.name}])
    user, = User.create([{
                'email': params.email, 'password': params.password,
                'party': party.id}])
    return token_json(user)


@method('auth.login', LoginParams, TokenResult, auth=False,
    errors=['auth.invalid', 'auth.rate_limited'])
def login(call, params):
    """Log in with e-mail and password; return a session token"""
    User = Pool().get('web.user')
    count_attempt(call, params.email)
    users = User.search([('email', '=', params.email)], limit=1)
    if users and users[0].party and users[0].password_hash:
        user, = users
        valid, _ = User.check_password(params.password, user.password_hash)
        if valid:
            return token_json(user)
    raise refused('auth.invalid', gettext(
            'course_storefront.msg_login_invalid'))


class LogoutResult(BaseModel):
    ok: bool


@method('auth.logout', result=LogoutResult)
def logout(call, params):
    """End the session of the token"""
    Session = Pool().get('web.user.session')
    Session.remove(call.token)
    return {'ok': True}


@method('account.me', result=MeResult, readonly=True)
def me(call, params):
    """The student: e-mail, name, points and wallet balances, and how many
    points make one unit of money"""
    pool = Pool()
    Credit = pool.get('course.credit.movement')
    Wallet = pool.get('course.wallet.movement')
    Configuration = pool.get('course.configuration')
    from ..values import money
    party = call.party
    company = call.company
    return {
        'email': call.user.email,
        'name': party.name,
        'credit_balance': int(Credit.get_balances(
                [party], company.id)[party.id]),
        'wallet_balance': money(Wallet.get_balances(
                [party], company.id)[party.id], call.currency),
        'credit_ratio': Configuration(1).get_credit_ratio(),
        }
