#!/usr/bin/env python3
"""Extract the translatable terms of the modules into their locale/*.po.

    python3 scripts/update_locales.py                  # every module
    python3 scripts/update_locales.py course_coupon    # only these modules
    python3 scripts/update_locales.py --check          # fail if not up to date

For each module (default: every folder under ``modules/`` with a
``tryton.cfg``) and each language (``zh_CN`` and ``en``) the script writes
``modules/<module>/locale/<lang>.po`` the way Tryton itself does it:

1. it creates a throw-away SQLite database in a temporary directory and
   activates the modules in it (their existing .po files are loaded, as on
   any database);
2. it makes ``zh_CN`` translatable (``ir.lang.load_translations``, the
   "Load translations" button), runs the "Set Translations" wizard
   (``ir.translation.set``: the terms of the views and reports) and the
   "Update Translations" wizard (``ir.translation.update``: one zh_CN row for
   every English term, pre-filled *fuzzy* with the translation of the same
   text found elsewhere, e.g. in the official modules);
3. it exports each module with ``ir.translation.translation_export(lang,
   module)``, the method behind the "Export Translations" wizard;
4. it merges the export into the existing file: a non-empty msgstr already
   in the file always wins (with its flags), so re-running after new fields
   are added keeps every earlier translation and only adds the new terms;
   when only the English source of a term changed (same msgctxt, new msgid)
   the old translation is kept but flagged ``fuzzy`` for review (Tryton
   ignores fuzzy translations at run time); terms that no longer exist are
   dropped.  The result is sorted like Tryton's export.

About ``en.po``: English is Tryton's source language, so the official
modules ship no en.po.  The project wants one anyway (a list of the terms to
translate); the script writes every msgstr EMPTY.  An empty msgstr means "not
translated" when Tryton loads the file: the English text comes from the code
and the XML, the file overrides nothing and never goes stale when a label is
reworded.  (A msgstr copied from the msgid would load too, but it would pin
the old wording over the code until the next run.)  A non-empty msgstr put in
en.po on purpose is kept, like in any other language.

The untranslated zh_CN terms are printed at the end (``--check`` makes them
and any out-of-date file an error, for CI).  Runs with the project's venv:
``ensure_venv()`` re-executes it there.
"""
import argparse
import logging
import os
import sys
import tempfile
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bootstrap import ROOT, ensure_venv  # noqa: E402

LANGUAGES = ['zh_CN', 'en']
SOURCE_LANGUAGE = 'en'


def module_names():
    modules = os.path.join(ROOT, 'modules')
    return sorted(
        n for n in os.listdir(modules)
        if os.path.exists(os.path.join(modules, n, 'tryton.cfg')))


def configure(tmpdir):
    "Point trytond at a SQLite database folder before the backend is imported"
    from trytond import config
    config.set('database', 'uri', 'sqlite://')
    config.set('database', 'path', tmpdir)
    os.environ['TRYTOND_DATABASE_URI'] = 'sqlite://'


def create_database(name):
    "Create and initialise the database with ir and res (like trytond-admin)"
    from sql import Table

    from trytond import backend
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    database = backend.Database()
    database.connect()
    connection = database.get_connection(autocommit=True)
    try:
        database.create(connection, name)
    finally:
        database.put_connection(connection)
        database.close()

    database = backend.Database(name)
    connection = database.get_connection()
    try:
        with connection.cursor() as cursor:
            database.init()
            ir_configuration = Table('ir_configuration')
            cursor.execute(*ir_configuration.insert(
                    [ir_configuration.language], [[SOURCE_LANGUAGE]]))
        connection.commit()
    finally:
        database.put_connection(connection)

    pool = Pool(name)
    pool.init(update=['res', 'ir'], lang=[SOURCE_LANGUAGE])
    with Transaction().start(name, 0) as transaction:
        pool.get('ir.module').update_list()
        transaction.commit()


def activate(name, modules):
    "Activate modules (and their dependencies) as the Modules form does"
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    with Transaction().start(name, 0, close=True) as transaction:
        pool = Pool()
        Module = pool.get('ir.module')
        records = Module.search([('name', 'in', modules)])
        missing = set(modules) - {r.name for r in records}
        if missing:
            raise SystemExit(f"Unknown modules: {', '.join(sorted(missing))}")
        Module.activate(records)
        transaction.commit()

        ActivateUpgrade = pool.get('ir.module.activate_upgrade', type='wizard')
        session_id, _, _ = ActivateUpgrade.create()
        transaction.commit()
        ActivateUpgrade(session_id).transition_upgrade()
        ActivateUpgrade.delete(session_id)
        transaction.commit()


def activate_what_loads(tmpdir, modules):
    """Activate modules in a new database, leaving out the ones that fail

    Returns the database name and the modules activated.  Modules being
    written may not load yet: they are reported and skipped.
    """
    from trytond.pool import Pool

    def attempt(names, suffix):
        name = f'locales_{suffix}'
        create_database(name)
        try:
            activate(name, names)
        except SystemExit:
            raise
        except Exception as exception:
            Pool.stop(name)
            return None, exception
        return name, None

    name, error = attempt(modules, 'all')
    if not error:
        return name, modules
    print(f"Activating {' '.join(modules)} failed ({error!r}); "
        "trying the modules one by one", file=sys.stderr)
    loadable = []
    for i, module in enumerate(modules):
        _, error = attempt([module], f'probe{i}')
        if error:
            print(f"SKIPPED {module}: it does not activate: {error!r}",
                file=sys.stderr)
        else:
            loadable.append(module)
    if not loadable:
        raise SystemExit("No module could be activated")
    name, error = attempt(loadable, 'loadable')
    if error:
        raise error
    return name, loadable


def export(name, modules):
    "Return {(module, lang): po bytes or None} exported by Tryton"
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    result = {}
    with Transaction().start(name, 0, close=True) as transaction:
        pool = Pool()
        Lang = pool.get('ir.lang')
        Translation = pool.get('ir.translation')
        TranslationSet = pool.get('ir.translation.set', type='wizard')
        TranslationUpdate = pool.get('ir.translation.update', type='wizard')

        languages = Lang.search([('code', 'in', LANGUAGES)])
        assert len(languages) == len(LANGUAGES), languages
        # "Load translations": translatable=True and load the .po files.
        # Not for the source language: loading en.po there drops the rows
        # of terms the file does not have yet (e.g. a new message)
        Lang.load_translations(
            [l for l in languages if l.code != SOURCE_LANGUAGE])
        transaction.commit()

        session_id, _, _ = TranslationSet.create()
        TranslationSet(session_id).transition_set_()
        TranslationSet.delete(session_id)
        transaction.commit()

        for language in languages:
            if language.code == SOURCE_LANGUAGE:
                continue
            session_id, _, _ = TranslationUpdate.create()
            wizard = TranslationUpdate(session_id)
            wizard.start.language = language
            wizard.do_update({})
            TranslationUpdate.delete(session_id)
            transaction.commit()

        for module in modules:
            for code in LANGUAGES:
                result[module, code] = Translation.translation_export(
                    code, module)
    return result


def merge(exported, path, lang):
    """Merge the exported po (bytes) with the file at path

    Returns the new file content and counters of what changed.
    """
    import polib

    from trytond.ir.translation import TrytonPOFile

    stats = Counter()
    old_entries, old_by_ctxt = {}, {}
    if os.path.exists(path):
        for entry in polib.pofile(path):
            if entry.obsolete:
                continue
            old_entries[entry.msgctxt, entry.msgid] = entry
            old_by_ctxt.setdefault(entry.msgctxt, []).append(entry)
    new_entries = []
    if exported:
        new_entries = [
            e for e in polib.pofile(exported.decode('utf-8'))
            if not e.obsolete]
    new_ctxt_count = Counter(e.msgctxt for e in new_entries)

    pofile = TrytonPOFile(wrapwidth=78)
    pofile.metadata = {'Content-Type': 'text/plain; charset=utf-8'}
    seen = set()
    for entry in new_entries:
        key = entry.msgctxt, entry.msgid
        seen.add(key)
        old = old_entries.get(key)
        if lang == SOURCE_LANGUAGE:
            # See the docstring: no translation of the source language
            entry.msgstr = ''
            entry.flags = [f for f in entry.flags if f != 'fuzzy']
        if old is not None and (old.msgstr or any(old.msgstr_plural.values())):
            entry.msgstr = old.msgstr
            if old.msgstr_plural:
                entry.msgstr_plural = old.msgstr_plural
            entry.flags = list(old.flags)
            stats['kept'] += 1
        elif old is None:
            candidates = old_by_ctxt.get(entry.msgctxt, [])
            if (len(candidates) == 1 and new_ctxt_count[entry.msgctxt] == 1
                    and candidates[0].msgstr):
                # Only the English source changed: keep it for review
                entry.msgstr = candidates[0].msgstr
                if 'fuzzy' not in entry.flags:
                    entry.flags.append('fuzzy')
                stats['source changed (fuzzy)'] += 1
            else:
                stats['new'] += 1
        if lang != SOURCE_LANGUAGE and not entry.msgstr:
            stats['untranslated'] += 1
        elif 'fuzzy' in entry.flags:
            stats['fuzzy'] += 1
        pofile.append(entry)
    stats['dropped'] = len(set(old_entries) - seen)
    if not len(pofile):
        return None, stats
    pofile.sort()
    return str(pofile), stats


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('modules', nargs='*',
        help="only these modules (default: every module)")
    parser.add_argument('--check', action='store_true',
        help="write nothing; fail if a file is out of date or a zh_CN term "
        "is untranslated or fuzzy")
    parser.add_argument('-v', '--verbose', action='store_true',
        help="show trytond's log")
    args = parser.parse_args()
    ensure_venv()

    all_modules = module_names()
    modules = args.modules or all_modules
    unknown = set(modules) - set(all_modules)
    if unknown:
        parser.error(f"not modules: {', '.join(sorted(unknown))}")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        format='%(levelname)s %(name)s %(message)s')

    with tempfile.TemporaryDirectory(prefix='course-locales-') as tmpdir:
        configure(tmpdir)
        from trytond.pool import Pool
        Pool.start()
        name, modules = activate_what_loads(tmpdir, modules)
        exports = export(name, modules)

    problems = []
    for module in modules:
        folder = os.path.join(ROOT, 'modules', module, 'locale')
        for lang in LANGUAGES:
            path = os.path.join(folder, f'{lang}.po')
            content, stats = merge(exports[module, lang], path, lang)
            relpath = os.path.relpath(path, ROOT)
            summary = ', '.join(f'{v} {k}' for k, v in sorted(stats.items()))
            current = None
            if os.path.exists(path):
                with open(path, encoding='utf-8') as fp:
                    current = fp.read()
            if content is None:
                print(f"{relpath}: no terms")
                continue
            if args.check:
                if current != content:
                    problems.append(f"{relpath} is out of date")
            elif current != content:
                os.makedirs(folder, exist_ok=True)
                with open(path, 'w', encoding='utf-8') as fp:
                    fp.write(content)
                print(f"{relpath}: written ({summary})")
            else:
                print(f"{relpath}: up to date ({summary})")
            if lang != SOURCE_LANGUAGE and (
                    stats['untranslated'] or stats['fuzzy']):
                problems.append(
                    f"{relpath}: {stats['untranslated']} untranslated, "
                    f"{stats['fuzzy']} fuzzy")
    skipped = set(args.modules or all_modules) - set(modules)
    for module in sorted(skipped):
        problems.append(f"{module}: skipped, it does not activate yet")
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.check and problems:
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
