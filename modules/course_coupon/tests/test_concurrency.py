"Races on coupons, with real parallel transactions (PostgreSQL only)"
import unittest

from trytond import backend
from trytond.exceptions import UserError
from trytond.modules.course.tests.tools import (
    ConcurrencyTestMixin, create_catalog)
from trytond.modules.course_coupon.tests.tools import create_coupon
from trytond.pool import Pool


class CouponConcurrencyTestCase(ConcurrencyTestMixin, unittest.TestCase):
    "Parallel transactions on coupons"
    module = 'course_coupon'

    def new_catalog(self):
        "Commit a catalog of its own for one test"
        def create():
            Company = Pool().get('company.company')
            cat = create_catalog(Company(self.company_id))
            return {
                'student': cat.student.id,
                'other': cat.other_student.id,
                'courses': [cat.course_a.id, cat.course_b.id],
                }
        return self.run_transaction(create)

    def new_parties(self, count):
        def create():
            Party = Pool().get('party.party')
            return [p.id for p in Party.create(
                    [{'name': f"Student {i}"} for i in range(count)])]
        return self.run_transaction(create)

    def new_coupon(self, formula='-30', **values):
        def create():
            Company = Pool().get('company.company')
            return create_coupon(
                Company(self.company_id), formula, **values).id
        return self.run_transaction(create)

    def assertLosersClear(self, results, *texts):
        """Each loser got a clear refusal (one of texts), or gave up on a
        busy database after the retries (DatabaseOperationalError, which
        the storefront turns into "busy, try again")"""
        for kind, result in results:
            if kind != 'error':
                continue
            if isinstance(result, backend.DatabaseOperationalError):
                continue
            self.assertIsInstance(result, UserError, results)
            self.assertTrue(
                any(t in result.message for t in texts), result.message)

    def test_fifty_claims_one_left(self):
        "50 parallel claims of the last coupon: exactly one grant"
        parties = self.new_parties(50)
        coupon_id = self.new_coupon(
            issue_mode='claim', total=1, per_party_limit=1)

        def claim(i):
            Coupon = Pool().get('course.coupon')
            grant, = Coupon.claim([coupon_id], parties[i])
            return grant.id
        results = self.in_parallel(50, claim)
        wins = [r for kind, r in results if kind == 'ok']
        self.assertEqual(len(wins), 1, results)
        self.assertLosersClear(results, "is sold out")

        def check():
            pool = Pool()
            Coupon = pool.get('course.coupon')
            Grant = pool.get('course.coupon.grant')
            return (
                Grant.search([('coupon', '=', coupon_id)], count=True),
                Coupon(coupon_id).remaining)
        self.assertEqual(self.run_transaction(check), (1, 0))

    def test_claims_per_party_limit(self):
        "10 parallel claims by one student with a limit of 2: two grants"
        party, = self.new_parties(1)
        coupon_id = self.new_coupon(
            issue_mode='claim', total=100, per_party_limit=2)

        def claim(i):
            Coupon = Pool().get('course.coupon')
            grant, = Coupon.claim([coupon_id], party)
            return grant.id
        results = self.in_parallel(10, claim)
        wins = [r for kind, r in results if kind == 'ok']
        self.assertEqual(len(wins), 2, results)
        self.assertLosersClear(results, "already holds")

        def check():
            Coupon = Pool().get('course.coupon')
            return Coupon(coupon_id).remaining
        self.assertEqual(self.run_transaction(check), 98)

    def test_two_checkouts_one_grant(self):
        "Two parallel checkouts with one grant: one succeeds"
        data = self.new_catalog()
        coupon_id = self.new_coupon()

        def give():
            Coupon = Pool().get('course.coupon')
            grant, = Coupon.grant([coupon_id], [data['student']])
            return grant.id
        grant_id = self.run_transaction(give)

        def buy(i):
            Order = Pool().get('course.order')
            order = Order.checkout(
                data['student'], [{'course': data['courses'][i]}],
                'manual', {'grants': [grant_id]})
            return order.id
        results = self.in_parallel(2, buy)
        wins = [r for kind, r in results if kind == 'ok']
        self.assertEqual(len(wins), 1, results)
        self.assertLosersClear(results, "already reserved")

        def check():
            pool = Pool()
            Grant = pool.get('course.coupon.grant')
            Order = pool.get('course.order')
            grant = Grant(grant_id)
            return (grant.state, grant.order.id, Order.search(
                    [('party', '=', data['student'])], count=True))
        self.assertEqual(self.run_transaction(check), (
                'reserved', wins[0], 1))

    def test_race_for_one_code(self):
        "Students racing for one code: one gets it"
        parties = self.new_parties(10)
        coupon_id = self.new_coupon()

        def generate():
            Coupon = Pool().get('course.coupon')
            code, = Coupon.generate([coupon_id], 1)
            return code.code
        code = self.run_transaction(generate)

        def redeem(i):
            Coupon = Pool().get('course.coupon')
            return Coupon.redeem(parties[i], code).id
        results = self.in_parallel(10, redeem)
        wins = [r for kind, r in results if kind == 'ok']
        self.assertEqual(len(wins), 1, results)
        self.assertLosersClear(results, "has already been redeemed")

        def check():
            pool = Pool()
            Grant = pool.get('course.coupon.grant')
            Attempt = pool.get('course.coupon.redeem.attempt')
            grant, = Grant.search([('code', '=', code)])
            return grant.party.id, Attempt.search(
                [('party', 'in', parties)], count=True)
        party, attempts = self.run_transaction(check)
        self.assertIn(party, parties)
        self.assertEqual(attempts, len([
                    r for kind, r in results
                    if kind == 'error' and isinstance(r, UserError)]))

    def test_redeem_rate_limit(self):
        "10 wrong codes, each in its own transaction: the 11th is refused"
        guesser, other = self.new_parties(2)
        coupon_id = self.new_coupon()

        def generate():
            Coupon = Pool().get('course.coupon')
            code, = Coupon.generate([coupon_id], 1)
            return code.code
        code = self.run_transaction(generate)

        def redeem(party, text):
            Coupon = Pool().get('course.coupon')
            return Coupon.redeem(party, text).id
        for i in range(10):
            with self.assertRaises(UserError) as cm:
                self.run_transaction(redeem, guesser, f'WRONG{i}')
            self.assertIn("is not valid", cm.exception.message)
        with self.assertRaises(UserError) as cm:
            self.run_transaction(redeem, guesser, code)
        self.assertIn("Too many wrong codes", cm.exception.message)
        self.assertTrue(self.run_transaction(redeem, other, code))

    def test_revoke_while_checkout(self):
        "Revoke and checkout racing on one grant: one of them wins"
        data = self.new_catalog()
        coupon_id = self.new_coupon()

        def give():
            Coupon = Pool().get('course.coupon')
            grant, = Coupon.grant([coupon_id], [data['student']])
            return grant.id
        grant_id = self.run_transaction(give)

        def act(i):
            pool = Pool()
            Order = pool.get('course.order')
            Grant = pool.get('course.coupon.grant')
            if i == 0:
                Grant.revoke([Grant(grant_id)])
                return 'revoked'
            Order.checkout(
                data['student'], [{'course': data['courses'][0]}],
                'manual', {'grants': [grant_id]})
            return 'reserved'
        results = self.in_parallel(2, act)

        def check():
            Grant = Pool().get('course.coupon.grant')
            return Grant(grant_id).state
        state = self.run_transaction(check)
        wins = [r for kind, r in results if kind == 'ok']
        self.assertEqual(wins, [state], results)

    def run_stale(self, party, func, first=None):
        """Run func in a transaction whose snapshot predates another
        transaction running first (default func) for the same party and
        committing; then take the party's lock as a restarted call does (the
        lock statement comes after the snapshot) and run func there.  A
        serialization failure is retried like the dispatcher does, with a
        new snapshot."""
        import threading

        from trytond.modules.course.tests.tools import run_transaction
        from trytond.tests.test_tryton import DB_NAME
        from trytond.transaction import Transaction
        with Transaction().start(
                DB_NAME, 0, context=self.context) as transaction:
            Party = Pool().get('party.party')
            # The snapshot of this transaction is taken here
            Party.search([('id', '=', party)], count=True)
            thread = threading.Thread(
                target=run_transaction, args=(first or func,),
                kwargs={'context': self.context})
            thread.start()
            thread.join()
            try:
                cursor = transaction.connection.cursor()
                cursor.execute(
                    'SELECT id FROM party_party WHERE id = %s '
                    'FOR UPDATE NOWAIT', (party,))
                transaction._locked_records['party_party'].add(party)
                func()
                transaction.commit()
                return
            except backend.DatabaseOperationalError:
                transaction.rollback()
        self.run_transaction(func)

    def held(self, party, coupon_id):
        def count():
            Grant = Pool().get('course.coupon.grant')
            return Grant.search([
                    ('party', '=', party), ('coupon', '=', coupon_id)],
                count=True)
        return self.run_transaction(count)

    def test_stale_snapshot_claim(self):
        """A claim whose snapshot predates another claim of the student
        cannot take a second grant (per-student limit 1)"""
        party, = self.new_parties(1)
        # No stock (total): only the party's row orders the two claims
        coupon_id = self.new_coupon(issue_mode='claim', per_party_limit=1)

        def claim():
            Coupon = Pool().get('course.coupon')
            Coupon.claim([coupon_id], party)
        with self.assertRaises(UserError) as cm:
            self.run_stale(party, claim)
        self.assertIn("already holds", cm.exception.message)
        self.assertEqual(self.held(party, coupon_id), 1)

    def test_stale_snapshot_grant(self):
        "The same for a staff grant"
        party, = self.new_parties(1)
        coupon_id = self.new_coupon(per_party_limit=1)

        def grant():
            Coupon = Pool().get('course.coupon')
            Coupon.grant([coupon_id], [party], 'staff', False)
        with self.assertRaises(UserError) as cm:
            self.run_stale(party, grant)
        self.assertIn("already holds", cm.exception.message)
        self.assertEqual(self.held(party, coupon_id), 1)

    def test_stale_snapshot_redeem(self):
        """Two codes of one coupon (limit 1) redeemed by one student, the
        second with a snapshot older than the first redemption: one"""
        party, = self.new_parties(1)
        coupon_id = self.new_coupon(total=10, per_party_limit=1)

        def generate():
            Coupon = Pool().get('course.coupon')
            return [c.code for c in Coupon.generate([coupon_id], 2)]
        codes = self.run_transaction(generate)

        def redeem(code):
            Coupon = Pool().get('course.coupon')
            Coupon.redeem(party, code)
        with self.assertRaises(UserError) as cm:
            self.run_stale(
                party, lambda: redeem(codes[1]),
                first=lambda: redeem(codes[0]))
        self.assertIn("already holds", cm.exception.message)
        self.assertEqual(self.held(party, coupon_id), 1)


del ConcurrencyTestMixin
