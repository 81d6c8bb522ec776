#!/usr/bin/env python3
"""Run every test of the project: on SQLite, and on PostgreSQL when reachable.

    python3 scripts/test.py                 # everything
    python3 scripts/test.py --backend sqlite
    python3 scripts/test.py course_order    # only the tests of these modules
    python3 scripts/test.py -k checkout     # only tests whose id has 'checkout'

The module tests (``modules/*/tests/test_*.py``, with their proteus
``scenario_*.rst`` doctests) and the cross-module tests (``tests/test_*.py``)
run once per backend, each backend in its own process (one process talks to
one backend).  With ``CI=true`` an unreachable PostgreSQL or Redis is a
failure, not a skip.  The last line is ``N passed, N failed, N skipped``.
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bootstrap import ROOT, ensure_venv  # noqa: E402

PG_URI = os.environ.get(
    'COURSE_TEST_POSTGRESQL', 'postgresql://postgres@127.0.0.1:5432/')
REDIS_URL = os.environ.get('COURSE_TEST_REDIS', 'redis://127.0.0.1:6379/15')
CI = os.environ.get('CI', '').lower() == 'true'


def module_names():
    modules = os.path.join(ROOT, 'modules')
    return sorted(
        n for n in os.listdir(modules)
        if os.path.exists(os.path.join(modules, n, 'tryton.cfg')))


def test_names(selected):
    "Unittest names of the module tests and cross-module tests"
    names = []
    for module in module_names():
        if selected and module not in selected:
            continue
        folder = os.path.join(ROOT, 'modules', module, 'tests')
        if not os.path.isdir(folder):
            continue
        for filename in sorted(os.listdir(folder)):
            if filename.startswith('test_') and filename.endswith('.py'):
                names.append(
                    f'trytond.modules.{module}.tests.{filename[:-3]}')
    folder = os.path.join(ROOT, 'tests')
    if not selected and os.path.isdir(folder):
        for filename in sorted(os.listdir(folder)):
            if filename.startswith('test_') and filename.endswith('.py'):
                names.append(f'tests.{filename[:-3]}')
    return names


def source_hash():
    "Hash of the module sources: cached test databases follow them"
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(
            os.walk(os.path.join(ROOT, 'modules'))):
        dirnames.sort()
        for filename in sorted(filenames):
            if filename.endswith(('.py', '.xml', '.cfg', '.po')):
                path = os.path.join(dirpath, filename)
                digest.update(path.encode())
                with open(path, 'rb') as fp:
                    digest.update(fp.read())
    return digest.hexdigest()[:16]


def postgresql_reachable():
    import psycopg
    try:
        psycopg.connect(PG_URI.rstrip('/') + '/postgres', connect_timeout=3
            ).close()
    except psycopg.Error as error:
        return str(error)


def redis_reachable():
    import redis
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping()
    except redis.RedisError as error:
        return str(error)


def prune_db_cache(keep, max_age=6 * 60 * 60):
    """Remove the cached test databases of older sources, once unused for
    max_age seconds (another run may still be using a recent one)"""
    import shutil
    folder = os.path.join(ROOT, 'var', 'test-db-cache')
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if name != keep and time.time() - os.path.getmtime(path) > max_age:
                shutil.rmtree(path, ignore_errors=True)


def backend_env(backend):
    env = dict(os.environ)
    cache = os.path.join(ROOT, 'var', 'test-db-cache', source_hash())
    env['PYTHONPATH'] = os.pathsep.join(
        filter(None, [ROOT, env.get('PYTHONPATH')]))
    env['COURSE_TEST_REDIS'] = REDIS_URL
    env.setdefault('TRYTOND_DATABASE__RETRY', '20')
    if backend == 'sqlite':
        env['TRYTOND_DATABASE_URI'] = 'sqlite://'
        env['DB_NAME'] = ':memory:'
        env['DB_CACHE'] = os.path.join(cache, 'sqlite')
    else:
        env['TRYTOND_DATABASE_URI'] = PG_URI
        env['DB_NAME'] = f'test_course_{os.getpid()}_{int(time.time())}'
        env['DB_CACHE'] = os.path.join(cache, 'postgresql')
    os.makedirs(env['DB_CACHE'], exist_ok=True)
    os.utime(cache)  # in use: not pruned by a parallel run
    return env


def start_pass(backend, names, pattern, log):
    cmd = [sys.executable, os.path.join(ROOT, 'scripts', 'run_tests.py'),
        '--label', backend]
    if pattern:
        cmd += ['-k', pattern]
    return subprocess.Popen(
        cmd + names, env=backend_env(backend), cwd=ROOT,
        stdout=log, stderr=subprocess.STDOUT)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--backend', choices=['sqlite', 'postgresql'],
        action='append', help="run on this backend only (repeatable)")
    parser.add_argument('-k', dest='pattern',
        help="only the tests whose id contains this text")
    parser.add_argument('--serial', action='store_true',
        help="run the backends one after the other")
    parser.add_argument('modules', nargs='*',
        help="only the tests of these modules")
    args = parser.parse_args()
    ensure_venv()

    problems = []
    backends = args.backend or ['sqlite', 'postgresql']
    if 'postgresql' in backends and (error := postgresql_reachable()):
        backends.remove('postgresql')
        problems.append(f"PostgreSQL unreachable at {PG_URI}: {error}")
    if error := redis_reachable():
        problems.append(f"Redis unreachable at {REDIS_URL}: {error}")
        os.environ['COURSE_TEST_REDIS'] = ''
    for problem in problems:
        print(("ERROR: " if CI else "SKIP: ") + problem, flush=True)

    names = test_names(set(args.modules))
    prune_db_cache(source_hash())
    logs, procs = {}, {}
    os.makedirs(os.path.join(ROOT, 'var'), exist_ok=True)
    for backend in backends:
        # A private file while running (parallel runs must not mix), copied
        # to var/test-<backend>.log at the end
        logs[backend] = tempfile.TemporaryFile('w+')
        procs[backend] = start_pass(
            backend, names, args.pattern, logs[backend])
        if args.serial:
            procs[backend].wait()
    totals = [0, 0, 0]
    failed = False
    for backend in backends:
        code = procs[backend].wait()
        log = logs[backend]
        log.seek(0)
        output = log.read()
        with open(os.path.join(ROOT, 'var', f'test-{backend}.log'), 'w') as fp:
            fp.write(output)
        print(f"===== {backend} =====")
        print(output, end='', flush=True)
        counts = parse_counts(output)
        if counts is None or code:
            failed = True
        for i, n in enumerate(counts or (0, 0, 0)):
            totals[i] += n
    if problems and CI:
        failed = True
    print(f"{totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    sys.exit(1 if failed or totals[1] else 0)


def parse_counts(output):
    "Read the 'RESULT: N passed, N failed, N skipped' line of a pass"
    for line in reversed(output.splitlines()):
        if line.startswith('RESULT: '):
            numbers = [int(part.split()[0]) for part in
                line[len('RESULT: '):].split(', ')]
            return tuple(numbers)
    return None


if __name__ == '__main__':
    main()
