"""Coupons over real RPC, as the users staff and scripts log in as: grants
are never made or changed by hand, the doors check who calls and every
parameter (nothing is written when they refuse)"""
import datetime as dt
import time
import tracemalloc
import unittest
from decimal import Decimal

from trytond.modules.course.tests.rpc import (
    BAD_IDS, BAD_INTS, BAD_LISTS, RPCTestMixin)
from trytond.modules.course.tests.tools import create_catalog
from trytond.modules.course_coupon.tests.tools import create_coupon
from trytond.pool import Pool
from trytond.pyson import PYSONDecoder
from trytond.transaction import Transaction

LOGINS = ['sales', 'manager', 'admin']


def rpc_datetime(value):
    "A datetime the way Tryton's JSON-RPC carries it"
    return {
        '__class__': 'datetime', 'year': value.year, 'month': value.month,
        'day': value.day, 'hour': value.hour, 'minute': value.minute,
        'second': value.second, 'microsecond': 0}


class CouponRPCTestCase(RPCTestMixin, unittest.TestCase):
    "Coupons and grants over JSON-RPC and XML-RPC"
    module = 'course_coupon'

    def new_data(self):
        """Commit a catalog, a staff coupon (10 in stock, one per student)
        granted to the student, a claim-only coupon, two codes; return ids"""
        def create():
            pool = Pool()
            Company = pool.get('company.company')
            Grant = pool.get('course.coupon.grant')
            company = Company(self.company_id)
            cat = create_catalog(company)
            third = pool.get('party.party')(name="Third")
            third.save()
            staff = create_coupon(
                company, '-30', total=10, per_party_limit=1)
            claim = create_coupon(
                company, '-10', issue_mode='claim', total=5,
                per_party_limit=1)
            fresh = create_coupon(company, '*0.9', name="Fresh")
            grant, = Grant.issue([staff], [cat.student])
            codes = Grant.create_codes([staff], 2)
            return {
                'student': cat.student.id, 'other': cat.other_student.id,
                'third': third.id,
                'course': cat.course_a.id, 'course_b': cat.course_b.id,
                'option': cat.option_a_month.id,
                'staff': staff.id, 'claim': claim.id, 'fresh': fresh.id,
                'grant': grant.id, 'codes': [c.code for c in codes],
                }
        return self.run_transaction(create)

    def snapshot(self):
        "What the module has written: grants, coupons, attempts, scopes"
        def read():
            pool = Pool()
            Grant = pool.get('course.coupon.grant')
            Coupon = pool.get('course.coupon')
            Attempt = pool.get('course.coupon.redeem.attempt')
            CouponCourse = pool.get('course.coupon-course.course')
            with Transaction().set_context(active_test=False):
                grants = [
                    (g.id, g.coupon.id, g.party and g.party.id, g.code,
                        g.state, g.origin, g.valid_from, g.valid_to,
                        g.order and g.order.id, g.discount_amount)
                    for g in Grant.search([], order=[('id', 'ASC')])]
                coupons = [
                    (c.id, c.name, c.formula, c.condition, c.total,
                        c.remaining, c.active, c.company.id)
                    for c in Coupon.search([], order=[('id', 'ASC')])]
            return (grants, coupons, Attempt.search([], count=True),
                CouponCourse.search([], count=True))
        return self.run_transaction(read)

    def assertRefusedUnchanged(self, client, model, method, *args,
            text=None):
        "The call is refused with a user error and writes nothing"
        before = self.snapshot()
        error = self.assertRPCError(
            client.model, model, method, *args, text=text)
        self.assertEqual(self.snapshot(), before, (method, args))
        return error

    # ---- Grants are made and moved by the workflow only --------------------

    def test_grant_create_refused(self):
        "Nobody creates grants by hand: any code, 2099, claim-only, used"
        data = self.new_data()
        far = rpc_datetime(dt.datetime(2099, 1, 1))
        cases = [
            {'coupon': data['staff'], 'party': data['other'],
                'code': 'MYOWNCODE'},
            {'coupon': data['staff'], 'party': data['other'],
                'valid_to': far},
            {'coupon': data['claim'], 'party': data['other']},
            {'coupon': data['staff'], 'party': data['other'],
                'state': 'used', 'discount_amount': Decimal('9999')},
            ]
        for login in LOGINS:
            client = self.login(login)
            for values in cases:
                with self.subTest(login=login, values=values):
                    error = self.assertRefusedUnchanged(
                        client, 'course.coupon.grant', 'create', [values])
                    if login != 'sales':  # sales lack the create access
                        self.assertIn("not created by hand", error.message)

    def test_grant_write_delete_copy_refused(self):
        "Nobody changes, deletes or copies a grant by hand"
        data = self.new_data()
        far = rpc_datetime(dt.datetime(2099, 1, 1))
        changes = [
            {'state': 'used'}, {'state': 'available'},
            {'discount_amount': Decimal('9999')}, {'valid_to': far},
            {'party': data['other']}, {'code': 'MYOWNCODE'},
            {'coupon': data['claim']},
            ]
        for login in LOGINS:
            client = self.login(login)
            for values in changes:
                with self.subTest(login=login, values=values):
                    error = self.assertRefusedUnchanged(
                        client, 'course.coupon.grant', 'write',
                        [data['grant']], values)
                    if login != 'sales':
                        self.assertIn("not changed by hand", error.message)
            with self.subTest(login=login, method='delete'):
                error = self.assertRefusedUnchanged(
                    client, 'course.coupon.grant', 'delete', [data['grant']])
                if login != 'sales':
                    self.assertIn("revoke", error.message)
            with self.subTest(login=login, method='copy'):
                self.assertRefusedUnchanged(
                    client, 'course.coupon.grant', 'copy', [data['grant']],
                    {})

    def test_revoke_button(self):
        "Revoke stays the staff's way to take a grant back"
        data = self.new_data()
        self.assertRefusedUnchanged(
            self.login('sales'), 'course.coupon.grant', 'revoke',
            [data['grant']])
        self.login('manager').model(
            'course.coupon.grant', 'revoke', [data['grant']])
        grant = [g for g in self.snapshot()[0] if g[0] == data['grant']][0]
        self.assertEqual(grant[4], 'revoked')

    def test_revoke_selection(self):
        """Revoke works on a selection (the list's button under it): all
        the grants or, when one is not available any more, none, with a
        message naming it and its state in the user's language"""
        data = self.new_data()

        def more_grants():
            pool = Pool()
            Coupon = pool.get('course.coupon')
            Grant = pool.get('course.coupon.grant')
            Party = pool.get('party.party')
            grants = Grant.issue([Coupon(data['fresh'])],
                Party.browse([data['student'], data['other']]))
            return [g.id for g in grants]
        selection = [data['grant']] + self.run_transaction(more_grants)
        manager = self.login('manager')
        manager.model('course.coupon.grant', 'revoke', selection[:1])
        code = [g[3] for g in self.snapshot()[0] if g[0] == selection[0]][0]
        chinese = self.login_chinese(
            'manager_zh', ['course.group_course_admin'])
        error = self.assertRefusedUnchanged(
            chinese, 'course.coupon.grant', 'revoke', selection,
            text='已作废')
        self.assertIn(f'“{code}', error.message)
        manager.model('course.coupon.grant', 'revoke', selection[1:])
        states = {g[0]: g[4] for g in self.snapshot()[0]}
        self.assertEqual(
            [states[i] for i in selection], ['revoked'] * 3)

    def test_revoke_button_multiple(self):
        "The grant list's Revoke button is the one under the list"
        from lxml import etree
        view = self.login('manager').model(
            'course.coupon.grant', 'fields_view_get', None, 'tree')
        button, = etree.fromstring(view['arch']).xpath(
            '//button[@name="revoke"]')
        self.assertEqual(button.get('multiple'), '1')

    def test_tabs_codes_apart(self):
        """The Available tab lists the grants students hold; the codes
        nobody redeemed are in their own tab"""
        data = self.new_data()

        def tab_domains():
            pool = Pool()
            Domain = pool.get('ir.action.act_window.domain')
            ModelData = pool.get('ir.model.data')
            return {name: Domain(ModelData.get_id(
                        'course_coupon', f'act_grant_domain_{name}')).domain
                for name in ['available', 'codes']}
        domains = self.run_transaction(tab_domains)
        manager = self.login('manager')
        tabs = {name: set(manager.model(
                    'course.coupon.grant', 'search',
                    PYSONDecoder(manager.context).decode(domain), 0, None,
                    None))
            for name, domain in domains.items()}
        grants = {g[0]: g for g in self.snapshot()[0]}
        codes = {i for i, g in grants.items() if g[3] in data['codes']}
        self.assertEqual(len(codes), 2)
        self.assertIn(data['grant'], tabs['available'])
        self.assertFalse(codes & tabs['available'])
        self.assertLessEqual(codes, tabs['codes'])
        # (other tests' grants are there too)
        self.assertTrue(all(grants[i][2] for i in tabs['available']))
        self.assertFalse(any(grants[i][2] for i in tabs['codes']))

    # ---- The coupon form: formula and validity ------------------------------

    def test_formula_said_on_change(self):
        """A bad formula is said at once in its own words (the form's
        notifications), not as a missing amount"""
        for login in ['manager', 'manager_zh']:
            client = (self.login(login) if login == 'manager'
                else self.login_chinese(
                    login, ['course.group_course_admin']))
            for formula in ['*1.5', 'abc']:
                with self.subTest(login=login, formula=formula):
                    notes = client.model(
                        'course.coupon', 'on_change_notify',
                        {'formula': formula, 'method': 'reduction',
                            'amount': None})
                    (kind, message), = notes
                    self.assertEqual(kind, 'error')
                    if login == 'manager_zh':
                        self.assertIn(f'优惠公式“{formula}”无效', message)
                    else:
                        self.assertIn(
                            f'The formula "{formula}" is not valid', message)
            for formula in ['-30', '*0.88', '', None]:
                with self.subTest(login=login, formula=formula):
                    self.assertEqual(client.model(
                            'course.coupon', 'on_change_notify',
                            {'formula': formula}), [])

    def test_validity_mode(self):
        """The validity choice is required and says which fields count;
        choosing one clears the other's"""
        from lxml import etree
        manager = self.login('manager')
        view = manager.model(
            'course.coupon', 'fields_view_get', None, 'form')
        self.assertTrue(view['fields']['validity_mode']['required'])
        first_page = etree.fromstring(view['arch']).xpath(
            '//notebook/page')[0]
        self.assertTrue(first_page.xpath('.//field[@name="validity_mode"]'))
        self.assertRPCError(
            manager.model, 'course.coupon', 'create', [{
                    'name': "No validity", 'formula': '-5',
                    'validity_mode': 'days', 'valid_days': None,
                    'condition': Decimal(0), 'per_party_limit': 1,
                    'company': self.company_id}])
        changed = manager.model(
            'course.coupon', 'on_change', {
                'validity_mode': 'days', 'valid_days': None,
                'valid_start': rpc_datetime(dt.datetime(2026, 1, 1)),
                'valid_end': rpc_datetime(dt.datetime(2026, 2, 1))},
            ['validity_mode'])
        self.assertEqual(
            (changed.get('valid_start'), changed.get('valid_end')),
            (None, None))
        coupon, = manager.model('course.coupon', 'create', [{
                    'name': "Ten days", 'formula': '-5',
                    'validity_mode': 'days', 'valid_days': 10,
                    'condition': Decimal(0), 'per_party_limit': 1,
                    'company': self.company_id}])
        self.assertRPCError(
            manager.model, 'course.coupon', 'write', [coupon], {
                'validity_mode': 'window'},
            text='A value is required for field "Valid')

    # ---- What staff may edit on a coupon -----------------------------------

    def test_coupon_edits(self):
        "Name, dates, total: yes; remaining never; terms once granted: no"
        data = self.new_data()
        manager = self.login('manager')
        later = rpc_datetime(dt.datetime.now() + dt.timedelta(days=400))
        manager.model('course.coupon', 'write', [data['staff']], {
                'name': "Renamed", 'description': "New text",
                'claim_end': later, 'total': 20, 'per_party_limit': 2,
                'issue_mode': 'claim', 'active': True})
        coupon = [c for c in self.snapshot()[1] if c[0] == data['staff']][0]
        # 3 issued (one grant, two codes): 20 - 3 left
        self.assertEqual((coupon[1], coupon[4], coupon[5]), (
                "Renamed", 20, 17))
        for login in ['manager', 'admin']:
            client = self.login(login)
            for values in [
                    {'remaining': 999}, {'remaining': 999, 'total': 999}]:
                with self.subTest(login=login, values=values):
                    self.assertRefusedUnchanged(
                        client, 'course.coupon', 'write', [data['staff']],
                        values, text="change the total instead")
            self.assertRefusedUnchanged(
                client, 'course.coupon', 'write', [data['staff']],
                {'total': 2}, text="cannot be below the 3 grants")
            for values in [
                    {'formula': '-3000'}, {'amount': Decimal('3000')},
                    {'condition': Decimal(0)}, {'scope': 'course'},
                    {'courses': [('add', [data['course']])]},
                    {'target': 'all'}]:
                with self.subTest(login=login, values=values):
                    self.assertRefusedUnchanged(
                        client, 'course.coupon', 'write', [data['staff']],
                        values, text="3 grants already hold them")
            self.assertRefusedUnchanged(
                client, 'course.coupon', 'delete', [data['staff']],
                text="deactivate it instead")
        # A coupon nobody holds yet: its terms may change
        manager.model('course.coupon', 'write', [data['fresh']], {
                'formula': '-50', 'scope': 'course',
                'courses': [('add', [data['course']])]})
        fresh = [c for c in self.snapshot()[1] if c[0] == data['fresh']][0]
        self.assertEqual(fresh[2], '-50')
        # Sales only read coupons
        self.assertRefusedUnchanged(
            self.login('sales'), 'course.coupon', 'write', [data['fresh']],
            {'name': "Sales"})

    def test_coupon_copy(self):
        "A copy is a new coupon with its whole total and no grant"
        data = self.new_data()
        new, = self.login('manager').model(
            'course.coupon', 'copy', [data['staff']], {})
        coupon = [c for c in self.snapshot()[1] if c[0] == new][0]
        self.assertEqual((coupon[4], coupon[5]), (10, 10))
        self.assertFalse(
            [g for g in self.snapshot()[0] if g[1] == new])

    # ---- The doors: who may call them --------------------------------------

    def test_doors_rights(self):
        "generate/grant: Course Administration; claim/redeem/usable: staff"
        data = self.new_data()
        calls = {
            'generate': ([data['staff']], 1),
            'grant': ([data['staff']], [data['other']], 'staff', False),
            'claim': ([data['claim']], data['other']),
            'redeem': (data['other'], data['codes'][0]),
            'usable_grants': (data['student'], [{'course': data['course']}]),
            }
        allowed = {
            'generate': {'manager', 'admin'},
            'grant': {'manager', 'admin'},
            'claim': {'sales', 'manager', 'admin'},
            'redeem': {'sales', 'manager', 'admin'},
            'usable_grants': {'sales', 'manager', 'admin'},
            }
        for method, args in calls.items():
            for login in ['nobody', 'sales', 'manager']:
                if login in allowed[method]:
                    continue
                with self.subTest(method=method, login=login):
                    self.assertRefusedUnchanged(
                        self.login(login), 'course.coupon', method, *args,
                        text="Only the users of the groups")
        manager = self.login('manager', 'xml')
        codes = manager.model('course.coupon', 'generate', [data['staff']], 1)
        self.assertEqual(len(codes), 1)
        grants = manager.model(
            'course.coupon', 'grant', [data['staff']], [data['other']],
            'staff', False)
        self.assertEqual(len(grants), 1)
        sales = self.login('sales')
        claimed = sales.model(
            'course.coupon', 'claim', [data['claim']], data['other'])
        self.assertEqual(len(claimed), 1)
        usable = sales.model(
            'course.coupon', 'usable_grants', data['student'],
            [{'course': data['course']}, {'course': data['course_b']}])
        self.assertEqual([u['grant'] for u in usable], [data['grant']])
        self.assertEqual(usable[0]['discount'], Decimal('30'))
        redeemed = sales.model(
            'course.coupon', 'redeem', data['third'], data['codes'][0])
        self.assertIsInstance(redeemed, int)

    # ---- The doors: every parameter ----------------------------------------

    def bad_calls(self, data):
        "(method, args) pairs that must each be refused"
        staff, party = data['staff'], data['other']
        bad_id_lists = BAD_LISTS + [[b] for b in BAD_IDS] + [[99999999]]
        calls = []
        for coupons in bad_id_lists:
            calls += [
                ('claim', (coupons, party)),
                ('grant', (coupons, [party], 'staff', False)),
                ('generate', (coupons, 1)),
                ]
        for bad in BAD_IDS + [99999999]:
            calls += [
                ('claim', ([data['claim']], bad)),
                ('redeem', (bad, data['codes'][0])),
                ('usable_grants', (bad, [{'course': data['course']}])),
                ('usable_grants', (party, [{'course': bad}])),
                ]
            if bad is not None:
                calls.append(('usable_grants', (party, [
                                {'course': data['course'], 'option': bad}])))
        for parties in bad_id_lists:
            calls.append(('grant', ([staff], parties, 'staff', False)))
        for code in [None, 7, ['x'], {'code': 'x'}, 'X' * 65]:
            calls.append(('redeem', (party, code)))
        for items in BAD_LISTS + [[None], [7], [{}], [{'option': 1}],
                [{'course': data['course_b'], 'option': data['option']}],
                [{'course': data['course']}] * 101]:
            calls.append(('usable_grants', (party, items)))
        for origin in ['claim', 'code', None, 7]:
            calls.append(('grant', ([staff], [party], origin, False)))
        for skip in [None, 'yes', 1]:
            calls.append(('grant', ([staff], [party], 'staff', skip)))
        for number in BAD_INTS + [0, 10 ** 6, 10 ** 8]:
            calls.append(('generate', ([staff], number)))
        # the same student or coupon twice: over the limit of one
        calls += [
            ('grant', ([staff], [party, party], 'staff', False)),
            ('claim', ([data['claim'], data['claim']], party)),
            ]
        # 10001 grants: over the per-call maximum, refused before the ids
        # are looked up
        calls.append(('grant', ([staff], [party] * 10001, 'staff', False)))
        return calls

    def test_doors_bad_input(self):
        "Each door × bad values: a user error, nothing written"
        data = self.new_data()
        admin = self.login('admin')
        for method, args in self.bad_calls(data):
            with self.subTest(method=method, args=repr(args)[:80]):
                self.assertRefusedUnchanged(
                    admin, 'course.coupon', method, *args)

    def test_generate_huge_refused_fast(self):
        "A huge number of codes is refused before any code is built"
        data = self.new_data()
        manager = self.login('manager')
        for number in [10 ** 6, 10 ** 8, 2 ** 40]:
            tracemalloc.start()
            start = time.monotonic()
            self.assertRPCError(
                manager.model, 'course.coupon', 'generate', [data['staff']],
                number, text="At most 10000")
            elapsed = time.monotonic() - start
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"\ngenerate({number}) refused in {elapsed * 1000:.0f} ms, "
                f"peak {peak / 2 ** 20:.1f} MiB", end=' ')
        # and the stock bounds it before anything is built: 7 left
        self.assertRefusedUnchanged(
            manager, 'course.coupon', 'generate', [data['staff']], 8,
            text="has only 7 left")

    # ---- The wizards of Course Administration ------------------------------

    def wizard_grants(self, result):
        "The ids of the grants the wizard opened at its end"
        action, _ = result['actions'][0]
        (_, _, ids), = PYSONDecoder().decode(action['pyson_domain'])
        return ids

    def test_wizards(self):
        "The grant and generate wizards work for Course Administration"
        data = self.new_data()
        manager = self.login('manager')
        result = manager.execute_wizard(
            'course.coupon.grant_wizard', {'start': {
                    'coupon': data['staff'], 'mode': 'parties',
                    'parties': [data['other']], 'emails': None,
                    'skip_limited': False}},
            'grant_', model='course.coupon', record=data['staff'])
        grant, = self.wizard_grants(result)
        granted = [g for g in self.snapshot()[0] if g[0] == grant][0]
        self.assertEqual(
            (granted[2], granted[4], granted[5]),
            (data['other'], 'available', 'staff'))
        result = manager.execute_wizard(
            'course.coupon.generate_codes', {'start': {
                    'coupon': data['staff'], 'number': 3}},
            'generate', model='course.coupon', record=data['staff'])
        self.assertEqual(len(self.wizard_grants(result)), 3)
        for number in [0, -5, 10 ** 8]:
            with self.subTest(number=number):
                before = self.snapshot()
                self.assertRPCError(
                    manager.execute_wizard, 'course.coupon.generate_codes',
                    {'start': {'coupon': data['staff'], 'number': number}},
                    'generate', model='course.coupon', record=data['staff'])
                self.assertEqual(self.snapshot(), before)
        # Sales may run neither
        sales = self.login('sales')
        for wizard in [
                'course.coupon.grant_wizard', 'course.coupon.generate_codes']:
            with self.subTest(wizard=wizard):
                before = self.snapshot()
                self.assertRPCError(
                    sales.execute_wizard, wizard, {}, 'end',
                    model='course.coupon', record=data['staff'])
                self.assertEqual(self.snapshot(), before)

