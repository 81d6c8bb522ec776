"""The translations of the project's modules can be used as they are.

A translated message that names other placeholders than its English text
fails at run time (gettext formats it with the English names): a user
reading Chinese would get a server error instead of the message.
"""
import glob
import os
import re
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLACEHOLDER = re.compile(r'%\((\w+)\)[sd]')


class LocalesTestCase(unittest.TestCase):
    "The locale/*.po files of the modules"

    def entries(self):
        import polib
        for path in sorted(glob.glob(
                    os.path.join(ROOT, 'modules', '*', 'locale', '*.po'))):
            for entry in polib.pofile(path):
                if entry.msgstr and 'fuzzy' not in entry.flags:
                    yield os.path.relpath(path, ROOT), entry

    def test_placeholders_match(self):
        "Each translation names the placeholders of its English text"
        wrong = [
            f'{path}: {entry.msgctxt}'
            for path, entry in self.entries()
            if set(PLACEHOLDER.findall(entry.msgid))
            != set(PLACEHOLDER.findall(entry.msgstr))]
        self.assertEqual(wrong, [])

    def test_no_fuzzy_translation(self):
        "No translation waits for review (Tryton ignores fuzzy ones)"
        import polib
        fuzzy = [
            f'{os.path.relpath(path, ROOT)}: {entry.msgctxt}'
            for path in sorted(glob.glob(
                    os.path.join(ROOT, 'modules', '*', 'locale', '*.po')))
            for entry in polib.pofile(path) if 'fuzzy' in entry.flags]
        self.assertEqual(fuzzy, [])
