"""A fake payment provider for the tests of course_payment and of modules
built on it: the method 'fake' plugged through the provider hooks, the way
a provider module (course_payment_alipay) implements them."""
from trytond.modules.course_order.tests.tools import plug
from trytond.pool import Pool


class FakeProvider:
    """What the fake provider answers and what it was asked.

    query: the dict _provider_query_fake answers; refund: the answer of a
    refund ('succeeded' or 'pending'); refund_query: the answer of a refund
    query; error: an exception every call raises when set."""

    def __init__(self):
        self.calls = []
        self.query = {'state': 'unpaid'}
        self.refund = 'succeeded'
        self.refund_query = 'succeeded'
        self.error = None

    def _call(self, action, record):
        self.calls.append((action, record.id))
        if self.error is not None:
            raise self.error

    def count(self, action):
        return sum(1 for a, _ in self.calls if a == action)

    def hooks(self):
        fake = self

        def start(cls, payment):
            fake._call('start', payment)
            return {'url': f'https://fake.test/pay/{payment.order.number}'}

        def query(cls, payment):
            fake._call('query', payment)
            return dict(fake.query)

        def close(cls, payment):
            fake._call('close', payment)

        def refund(cls, refund):
            fake._call('refund', refund)
            return fake.refund

        def refund_query(cls, refund):
            fake._call('refund_query', refund)
            return fake.refund_query
        return {
            '_provider_start_fake': classmethod(start),
            '_provider_query_fake': classmethod(query),
            '_provider_close_fake': classmethod(close),
            '_provider_refund_fake': classmethod(refund),
            '_provider_refund_query_fake': classmethod(refund_query),
            }


def plug_fake(test, provider=None):
    """Plug the method 'fake' for test (a TestCase): in the orders'
    payment methods and as a provider of course.payment; return its
    FakeProvider"""
    pool = Pool()
    Order = pool.get('course.order')
    Payment = pool.get('course.payment')
    provider = provider or FakeProvider()
    selection = [s for s in Order.pay_method.selection if s[0] != 'fake']
    plug(test, Order.pay_method, selection=selection + [('fake', "Fake")])
    plug(test, Payment, **provider.hooks())
    return provider
