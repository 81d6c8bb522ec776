"""The Storefront API reference (modules/course_storefront/doc/api.rst)
documents every method as it is declared, and is what
scripts/storefront_examples.py generates.

A new method, param or error type without its documentation fails here:
run `python3 scripts/storefront_examples.py --write` (its walk must call
the new method).
"""
import os
import re
import subprocess
import sys
import unittest

from tests.demo_server import demo_env, sqlite_only

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, 'modules', 'course_storefront', 'doc')
SCRIPT = os.path.join(ROOT, 'scripts', 'storefront_examples.py')
HEADING = re.compile(r'^``([\w.]+)``\n-+\n', re.MULTILINE)


def sections(text):
    "{method name: its section's text} of api.rst"
    found = list(HEADING.finditer(text))
    return {
        m.group(1): text[m.end():(found[i + 1].start()
                if i + 1 < len(found) else len(text))]
        for i, m in enumerate(found)}


class StorefrontDocTestCase(unittest.TestCase):
    "doc/api.rst against the declarations of api/registry.py"

    @classmethod
    def setUpClass(cls):
        with open(os.path.join(DOC, 'api.rst'), encoding='utf-8') as fp:
            cls.sections = sections(fp.read())

    def methods(self):
        from trytond.modules.course_storefront.api import METHODS
        return METHODS

    def test_every_method(self):
        "Each registered method has a section, and only those"
        self.assertEqual(sorted(self.sections), sorted(self.methods()))

    def test_params_and_errors(self):
        "Each section lists the method's params, error types and examples"
        for name, declared in self.methods().items():
            with self.subTest(method=name):
                section = self.sections[name]
                for param in declared.params.model_fields:
                    self.assertIn(f'``{param}``', section)
                for type_ in declared.errors:
                    self.assertIn(f'``{type_}``', section)
                self.assertIn(f'"method": "{name}"', section)
                self.assertTrue(
                    '"result"' in section or '"error"' in section)

    def test_index_links(self):
        "The module's doc links the reference"
        with open(os.path.join(DOC, 'index.rst'), encoding='utf-8') as fp:
            self.assertIn(':doc:`api`', fp.read())


@sqlite_only
class StorefrontExamplesTestCase(unittest.TestCase):
    "The generated reference is up to date (a real walk, ~30 s)"

    def test_up_to_date(self):
        result = subprocess.run(
            [sys.executable, SCRIPT], env=demo_env(), cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=600)
        self.assertEqual(result.returncode, 0, result.stdout[-5000:])
        self.assertIn('is up to date', result.stdout)


if __name__ == '__main__':
    unittest.main()
