#!/usr/bin/env python3
"""Audit the credit and wallet ledgers of a course-commerce database.

    python3 scripts/audit_credit.py -d <database> [-c <trytond.conf>]
    python3 scripts/audit_credit.py --url http://<user>:<pw>@<host>:<port>/<db>/rpc/

Checks, through proteus and the classmethod ``course.credit.movement.audit``,
that every balance recorded on a movement equals the sum of its ledger's
movements (and is never below zero), and that the credit and wallet
movements of every order match its state (points spent and not refunded on
a cancelled order, a wallet payment missing on a paid wallet order, ...).

Prints one line per disagreement; exits 0 when everything agrees, 1 when
something disagrees, 2 when the database cannot be reached.
"""
import argparse
import sys


def check(config=None):
    "Return the disagreements found by the audit (a list of texts)"
    from proteus import Model
    from proteus.config import get_config
    config = config or get_config()
    Movement = Model.get('course.credit.movement', config=config)
    return Movement.audit(config.context)


def run(config=None, out=None):
    "Print the disagreements and return the exit code"
    out = out or sys.stdout
    problems = check(config)
    for problem in problems:
        print(problem, file=out)
    if problems:
        print(f"{len(problems)} disagreement(s) in the credit and wallet "
            "ledgers", file=out)
        return 1
    print("Credit and wallet ledgers agree.", file=out)
    return 0


def connect(args):
    from proteus import config
    if args.url:
        return config.set_xmlrpc(args.url)
    return config.set_trytond(
        database=args.database, user=args.user, config_file=args.config)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument('-d', '--database', help="database name (trytond "
        "mode, in this process)")
    target.add_argument('--url', help="XML-RPC URL of a running server, "
        "with user and password: http://user:pw@host:8000/<db>/rpc/")
    parser.add_argument('-c', '--config', help="trytond configuration file")
    parser.add_argument('-u', '--user', default='admin',
        help="user in trytond mode (default admin)")
    args = parser.parse_args(argv)
    try:
        config = connect(args)
    except Exception as error:
        print(f"Cannot connect: {error}", file=sys.stderr)
        return 2
    return run(config)


if __name__ == '__main__':
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bootstrap import ensure_venv
    ensure_venv()  # re-runs this script with the project's venv
    sys.exit(main())
