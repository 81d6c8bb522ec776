"""rpc.discover validates against the OpenRPC 1.x meta-schema (npm
@open-rpc/meta-schema, fetched once into var/openrpc), and its schemas
describe what the methods declare"""
import glob
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import unittest

from .tools import StorefrontTestMixin

META_SCHEMA_VERSION = '1.14.9'
ROOT = os.path.abspath(os.path.join(
        os.path.dirname(__file__), '..', '..', '..'))


def meta_schema():
    """The OpenRPC meta-schema as a dict, from var/openrpc (npm pack of
    @open-rpc/meta-schema on first use)"""
    folder = os.path.join(ROOT, 'var', 'openrpc')
    path = os.path.join(folder, f'meta-schema-{META_SCHEMA_VERSION}.json')
    if not os.path.exists(path):
        if not shutil.which('npm'):
            if os.environ.get('CI') == 'true':
                raise RuntimeError("npm is needed for the OpenRPC meta-schema")
            raise unittest.SkipTest("npm is not installed")
        os.makedirs(folder, exist_ok=True)
        work = tempfile.mkdtemp(dir=folder)
        try:
            subprocess.check_call([
                    'npm', 'pack', '--silent',
                    f'@open-rpc/meta-schema@{META_SCHEMA_VERSION}'],
                cwd=work, stdout=subprocess.DEVNULL)
            tarball, = glob.glob(os.path.join(work, '*.tgz'))
            with tarfile.open(tarball) as tar:
                source = tar.extractfile('package/index.js').read().decode()
            # index.js assigns one JSON object literal
            start = source.index('{', source.index('openrpcDocument = '))
            document = json.loads(source[start:source.rindex('}') + 1])
            with open(path + '.tmp', 'w') as file:
                json.dump(document, file)
            os.replace(path + '.tmp', path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    with open(path) as file:
        return json.load(file)


class OpenRPCTestCase(StorefrontTestMixin, unittest.TestCase):
    # With the optional module whose methods the storefront serves: the
    # document lists every registered method
    module = ['course_storefront', 'course_degree']

    def test_discover_validates(self):
        "rpc.discover is a valid OpenRPC document listing every method"
        import jsonschema

        from trytond.modules.course_storefront.api import METHODS
        document = self.client().call('rpc.discover')
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT7

        # The meta-schema refers to JSON Schema's own for schema objects
        draft7 = Resource.from_contents(
            jsonschema.Draft7Validator.META_SCHEMA, default_specification=DRAFT7)
        registry = Registry().with_resources([
                ('https://meta.json-schema.tools', draft7),
                ('https://meta.json-schema.tools/', draft7)])
        validator = jsonschema.Draft7Validator(
            meta_schema(), registry=registry)
        problems = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)]
        self.assertEqual(problems, [])
        # The validator does refuse what is not a document
        self.assertTrue(list(validator.iter_errors(
                    dict(document, methods=[{'name': 1}]))))
        self.assertEqual(
            sorted(m['name'] for m in document['methods']), sorted(METHODS))

    def test_schemas_are_json_schema(self):
        "Every param and result schema is a valid JSON schema"
        import jsonschema
        document = self.client().call('rpc.discover')
        for method in document['methods']:
            for param in method['params']:
                jsonschema.Draft202012Validator.check_schema(param['schema'])
            jsonschema.Draft202012Validator.check_schema(
                method['result']['schema'])

    def test_contract_methods(self):
        "The methods the issue names are all there with their params"
        document = self.client().call('rpc.discover')
        params = {m['name']: {p['name'] for p in m['params']}
            for m in document['methods']}
        expected = {
            'auth.register': {'email', 'password', 'name'},
            'auth.login': {'email', 'password'},
            'auth.logout': set(), 'account.me': set(),
            'catalog.directions': set(), 'catalog.categories': {'direction'},
            'catalog.courses': {
                'direction', 'category', 'search', 'page', 'size'},
            'catalog.course': {'id'},
            'cart.get': set(), 'cart.add': {'course', 'option'},
            'cart.remove': {'course'}, 'cart.select': {'course', 'selected'},
            'cart.select_all': {'selected'},
            'cart.set_option': {'course', 'option'},
            'coupon.mine': {'state'}, 'coupon.claimable': set(),
            'coupon.claim': {'coupon'}, 'coupon.redeem': {'code'},
            'checkout.preview': {
                'coupons', 'credit', 'degree', 'degree_option'},
            'order.create': {
                'coupons', 'credit', 'pay_method', 'expect_payable',
                'degree', 'degree_option'},
            'order.list': {'state', 'page', 'size'},
            'order.get': {'number'}, 'order.cancel': {'number'},
            'order.pay': {'number'}, 'order.sync': {'number'},
            'order.refund_request': {'number', 'reason'},
            'enrollment.list': set(), 'rpc.discover': set(),
            'degree.programs': set(), 'degree.mine': set(),
            'degree.form.submit': {
                'enrollment', 'company_name', 'position', 'salary',
                'experience', 'study_plan', 'why_course', 'why_us',
                'expectations', 'open_first_module', 'preferred_mentor',
                'memo'},
            'degree.homework.list': {'enrollment'},
            'degree.homework.submit': {'homework', 'text', 'attachment'},
            }
        self.assertEqual(params, expected)

    def test_errors(self):
        """Each method's errors have unique codes (OpenRPC's rule), and
        every documented slug of the business modules is declared by some
        method"""
        from trytond.modules.course_storefront.slugs import SLUGS
        document = self.client().call('rpc.discover')
        declared = set()
        for method in document['methods']:
            codes = [e['code'] for e in method['errors']]
            self.assertEqual(len(codes), len(set(codes)), method['name'])
            for error in method['errors']:
                declared.update(error['data']['types'])
        self.assertEqual(set(SLUGS.values()) - declared, set())
        by_name = {m['name']: m for m in document['methods']}
        types = {t for e in by_name['order.create']['errors']
            for t in e['data']['types']}
        self.assertTrue({'busy', 'order.payable_changed'} <= types)
        types = {t for e in by_name['cart.get']['errors']
            for t in e['data']['types']}
        self.assertNotIn('busy', types)
