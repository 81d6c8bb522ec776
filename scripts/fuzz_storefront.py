#!/usr/bin/env python3
"""The long fuzz of the storefront against a running trytond.

    python3 scripts/fuzz_storefront.py --examples 100000
    python3 scripts/fuzz_storefront.py --examples 5000 --postgresql --seed 7

Runs modules/course_storefront/tests/test_fuzz.py (a test database, a
trytond serving it over HTTP; SQLite with the cart in the database, or
PostgreSQL with the cart in Redis) with that many examples, about half
spread over every method with generated params and half in sequences of
cart, coupon, checkout and order calls of new students.  Prints the counts:
calls, answers by code and type, HTTP 500s, tracebacks, changes by refused
calls and every other violation; exits 1 on any violation.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bootstrap import ROOT, ensure_venv  # noqa: E402
from test import backend_env, postgresql_reachable, redis_reachable  # noqa: E402,E501

TEST = 'trytond.modules.course_storefront.tests.test_fuzz'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--examples', type=int, default=10000,
        help="about how many calls (default 10000)")
    parser.add_argument('--postgresql', action='store_true',
        help="PostgreSQL with the cart in Redis (default: SQLite)")
    parser.add_argument('--seed', type=int,
        help="hypothesis seed (default: derandomized, the same each run)")
    args = parser.parse_args()
    ensure_venv()
    backend = 'postgresql' if args.postgresql else 'sqlite'
    if args.postgresql:
        for problem in [postgresql_reachable(), redis_reachable()]:
            if problem:
                sys.exit(f"not reachable: {problem}")
    env = backend_env(backend)
    env['FUZZ_EXAMPLES'] = str(args.examples)
    if args.seed is not None:
        env['FUZZ_SEED'] = str(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        env['FUZZ_REPORT'] = report_path = os.path.join(folder, 'fuzz.json')
        code = subprocess.call([sys.executable,
                os.path.join(ROOT, 'scripts', 'run_tests.py'),
                '--label', backend, TEST], env=env, cwd=ROOT)
        if not os.path.exists(report_path):
            sys.exit(f"the fuzz did not run to its end (exit {code})")
        with open(report_path) as fp:
            report = json.load(fp)
    print(json.dumps({k: v for k, v in report.items() if k != 'examples'}))
    sys.exit(1 if code or report['violations']
        or report['server_log_tracebacks'] else 0)


if __name__ == '__main__':
    main()
