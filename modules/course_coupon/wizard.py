"""The staff wizards of coupons: grant a coupon to students, generate codes;
both start on the coupon of the active record and open the grants made"""
import re

from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.modules.course.rpc import RPCInputMixin
from trytond.pool import Pool
from trytond.pyson import Eval, PYSONEncoder
from trytond.wizard import (
    Button, StateAction, StateTransition, StateView, Wizard)

from .exceptions import CouponError


class CouponWizardMixin:
    """What the coupon wizards share: the start form takes the coupon of
    the active record; the grants made are opened at the end"""
    open_ = StateAction('course_coupon.act_grant_form')
    # The ids of the grants made, set by the transition for do_open_
    grant_ids = ()

    def default_start(self, fields):
        if (self.model and self.model.__name__ == 'course.coupon'
                and self.record):
            return {'coupon': self.record.id}
        return {}

    def open_grants(self, grants):
        "Keep the grants made for do_open_ and go there"
        self.grant_ids = [g.id for g in grants]
        return 'open_'

    def do_open_(self, action):
        action['pyson_domain'] = PYSONEncoder().encode(
            [('id', 'in', list(self.grant_ids))])
        return action, {}


class GrantStart(RPCInputMixin, ModelView):
    "Grant Coupon"
    __name__ = 'course.coupon.grant.start'
    coupon = fields.Many2One(
        'course.coupon', "Coupon", required=True,
        domain=[('active', '=', True)])
    mode = fields.Selection([
            ('parties', "Chosen students"),
            ('all', "All students"),
            ('emails', "A list of e-mails"),
            ], "To", required=True)
    parties = fields.Many2Many(
        'party.party', None, None, "Students",
        states={
            'invisible': Eval('mode') != 'parties',
            'required': Eval('mode') == 'parties',
            })
    emails = fields.Text(
        "E-mails",
        states={
            'invisible': Eval('mode') != 'emails',
            'required': Eval('mode') == 'emails',
            },
        help="One e-mail a line (or separated by commas or blanks).")
    skip_limited = fields.Boolean(
        "Skip Students at their Limit",
        help="Leave out the students who hold as many grants of the coupon "
        "as it allows, instead of refusing.")

    @classmethod
    def default_mode(cls):
        return 'parties'

    @classmethod
    def default_skip_limited(cls):
        return False

    def students(self):
        "The parties chosen, every student, or the owners of the e-mails"
        pool = Pool()
        Party = pool.get('party.party')
        Company = pool.get('company.company')
        Mechanism = pool.get('party.contact_mechanism')
        if self.mode == 'parties':
            return list(self.parties)
        if self.mode == 'all':
            companies = Company.search([])
            return Party.search([
                    ('id', 'not in', [c.party.id for c in companies]),
                    ])
        emails = [
            e.lower() for e in re.split(r'[\s,;]+', self.emails or '')
            if e]
        if not emails:
            return []
        mechanisms = Mechanism.search([
                ('type', '=', 'email'),
                ['OR'] + [('value', 'ilike', e) for e in emails],
                ])
        found = {m.value.lower(): m.party for m in mechanisms}
        missing = [e for e in emails if e not in found]
        if missing:
            raise CouponError(gettext(
                    'course_coupon.msg_grant_unknown_emails',
                    emails=', '.join(missing)))
        return list({found[e] for e in emails})


class GrantWizard(RPCInputMixin, CouponWizardMixin, Wizard):
    "Grant Coupon"
    __name__ = 'course.coupon.grant_wizard'
    start = StateView(
        'course.coupon.grant.start',
        'course_coupon.grant_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Grant", 'grant_', 'tryton-ok', default=True),
            ])
    grant_ = StateTransition()

    def transition_grant_(self):
        Grant = Pool().get('course.coupon.grant')
        return self.open_grants(Grant.issue(
                [self.start.coupon], self.start.students(), origin='staff',
                skip_limited=self.start.skip_limited))


class GenerateCodesStart(RPCInputMixin, ModelView):
    "Generate Coupon Codes"
    __name__ = 'course.coupon.generate_codes.start'
    coupon = fields.Many2One(
        'course.coupon', "Coupon", required=True,
        domain=[('active', '=', True)])
    number = fields.Integer(
        "Number", required=True, domain=[('number', '>', 0)])

    @classmethod
    def default_number(cls):
        return 10


class GenerateCodes(RPCInputMixin, CouponWizardMixin, Wizard):
    "Generate Coupon Codes"
    __name__ = 'course.coupon.generate_codes'
    start = StateView(
        'course.coupon.generate_codes.start',
        'course_coupon.generate_codes_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Generate", 'generate', 'tryton-ok', default=True),
            ])
    generate = StateTransition()

    def transition_generate(self):
        Grant = Pool().get('course.coupon.grant')
        return self.open_grants(Grant.create_codes(
                [self.start.coupon], self.start.number))
