"""Demo data of the module course_storefront: a student who can log in to
the Storefront API (POST /course_demo/storefront).

张伟 (zhang.wei@example.com) gets a web user with the demo password, so
``auth.login`` answers a token; the other modules' demo data already give
him courses, coupons, 500 points and unpaid orders.  He also gets 2000.00 of
wallet money (a ``topup`` through the "Adjust Credit or Wallet" wizard, as
staff would), so an order paid from the wallet (``order.create`` with
``pay_method`` ``wallet``) goes through in the demo.

Idempotent: the web user is identified by its e-mail (its password is set
again, its party linked when missing), the top-up by its student, kind and
reason.
"""
from decimal import Decimal

from proteus import Model

from . import STUDENT_LOGINS
from .course import get_students
from .course_credit import adjust

TOPUP = Decimal('2000')
TOPUP_NOTE = "Demo: storefront wallet"


def load():
    students = get_students(set(STUDENT_LOGINS))
    for email, (password, _) in sorted(STUDENT_LOGINS.items()):
        party = students[email]
        web_user(email, password, party)
        adjust(party, 'wallet', 'topup', TOPUP, TOPUP_NOTE)


def web_user(email, password, party):
    "The web user of email, created or brought back to the demo password"
    User = Model.get('web.user')
    users = User.find([('email', '=', email)], limit=1)
    user = users[0] if users else User(email=email)
    if user.party != party:
        user.party = party
    user.password = password
    user.save()
    return user
