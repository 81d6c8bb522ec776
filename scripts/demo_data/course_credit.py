"""Demo data of the module course_credit: points and wallet money for the
demo students, and two orders that use them.

- every demo student gets 500 welcome points (a ``grant`` movement);
- two students top up their wallet (``topup`` movements);
  both through the "Adjust Credit or Wallet" wizard, as the staff would
  (the ledgers take no other way in), each recorded as an adjustment with
  its reason and who made it (admin);
- paid orders earn 5 % back in points (the configuration's credit earn rate
  is set to 0.05 when it is still the default 0);
- 王芳 buys "Linux 自动化运维" (permanent) with 100 points and pays the rest
  from her wallet: a paid order with ``spend`` and ``pay`` movements and
  earned points;
- 刘洋 checks out "Vue 3 + TypeScript 商城前台" with 150 points and pays by
  hand later: an unpaid order holding a ``spend`` movement.

Everything goes through the ledgers' own rules (the party lock, the balance
never below zero) and the real checkout.

Idempotent: a grant or top-up is identified by its student, kind and
reason (the note of its movement), an order by its student and course; only
what is missing is created, and an order is skipped when checkout would
refuse it (course owned or pending, not enough points or money).
"""
from decimal import Decimal

from proteus import Model, Wizard
from proteus.config import get_config

from .course import COMPANY_NAME, get_students

WELCOME_POINTS = 500
WELCOME_NOTE = "Demo: welcome points"
TOPUP_NOTE = "Demo: bank transfer"
EARN_RATE = Decimal('0.05')

# (student e-mail, amount)
TOPUPS = [
    ('wang.fang@example.com', Decimal('1000')),
    ('liu.yang@example.com', Decimal('300')),
    ]

# (student e-mail, course, option or None, points, pay method)
ORDERS = [
    ('wang.fang@example.com', "Linux 自动化运维", "永久有效", 100, 'wallet'),
    ('liu.yang@example.com', "Vue 3 + TypeScript 商城前台", None, 150,
        'manual'),
    ]


def load():
    config = get_config()
    company = get_company()
    set_earn_rate()
    students = get_students()
    for email, party in sorted(students.items()):
        adjust(party, 'credit', 'grant', WELCOME_POINTS, WELCOME_NOTE)
    for email, amount in TOPUPS:
        adjust(students[email], 'wallet', 'topup', amount, TOPUP_NOTE)
    Order = Model.get('course.order')
    Course = Model.get('course.course')
    for email, name, option_name, points, method in ORDERS:
        party = students[email]
        course, = Course.find([
                ('company', '=', company.id), ('name', '=', name)])
        if Order.find([
                    ('party', '=', party.id),
                    ('lines.course', '=', course.id),
                    ], limit=1):
            continue
        option = None
        if option_name:
            option, = [o for o in course.options if o.name == option_name]
        item = {'course': course.id, 'option': option.id if option else None}
        try:
            Order.checkout(
                party.id, [item], method, {'credit': points}, config.context)
        except Exception as error:  # a refusal: leave the demo as it is
            print(f"    skipped the order of {email}: {error}", flush=True)


def adjust(party, ledger, kind, value, reason):
    """Record value (points or money) in party's ledger with the adjust
    wizard, unless a movement of that kind and reason is there (the wizard
    notes the reason on the movement; earlier demos wrote the same note)"""
    Movement = Model.get(
        'course.credit.movement' if ledger == 'credit'
        else 'course.wallet.movement')
    if Movement.find([
                ('party', '=', party.id),
                ('kind', '=', kind),
                ('note', '=', reason),
                ], limit=1):
        return
    wizard = Wizard('course.credit.adjust', [party])
    wizard.form.ledger = ledger
    wizard.form.kind = kind
    if ledger == 'credit':
        wizard.form.points = value
    else:
        wizard.form.amount = value
    wizard.form.reason = reason
    wizard.execute('adjust_')


def get_company():
    Company = Model.get('company.company')
    company, = Company.find([('party.name', '=', COMPANY_NAME)])
    return company


def set_earn_rate():
    Configuration = Model.get('course.configuration')
    configuration = Configuration(1)
    if not configuration.credit_earn_rate:
        configuration.credit_earn_rate = EARN_RATE
        configuration.save()
