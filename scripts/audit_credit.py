#!/usr/bin/env python3
"""Audit the credit and wallet ledgers of a course-commerce database.

    python3 scripts/audit_credit.py -d <db> [-c <trytond.conf>] [-u <user>]
    python3 scripts/audit_credit.py --url http://<user>:<pw>@<host>/<db>/rpc/

Calls, through proteus and as the given user, the audit of the ledgers,
``course.credit.movement.audit``: every balance recorded on a movement
equals the sum of its ledger's movements (and is never below zero), every
movement is explained by its order or its staff adjustment, and the credit
and wallet movements of every order match its state and amounts.  When the
database offers it, the audit of the orders and enrollments,
``course.order.audit``, is run too.

The audits are for the group "Course Administration" and cover the user's
companies: run the script as such a user (``-u``, default ``admin``, or the
user of the URL).

Prints one line per disagreement; exits 0 when everything agrees, 1 when
something disagrees, 2 when the database cannot be reached.
"""
import argparse
import sys

# (model, what its audit checks, the line printed when all agrees)
AUDITS = [
    ('course.credit.movement', "the credit and wallet ledgers",
        "Credit and wallet ledgers agree."),
    ('course.order', "the orders and enrollments",
        "Orders and enrollments agree."),
    ]


def check(config=None):
    """Return [(what, agreed line, disagreements)] for each audit the
    database offers"""
    from proteus import Model
    from proteus.config import get_config
    config = config or get_config()
    results = []
    for model, what, agreed in AUDITS:
        Audited = Model.get(model, config=config)
        if hasattr(Audited, 'audit'):  # an RPC method of the model
            results.append((what, agreed, Audited.audit(config.context)))
    return results


def run(config=None, out=None):
    "Print the disagreements and return the exit code"
    out = out or sys.stdout
    code = 0
    for what, agreed, problems in check(config):
        for problem in problems:
            print(problem, file=out)
        if problems:
            print(f"{len(problems)} disagreement(s) in {what}", file=out)
            code = 1
        else:
            print(agreed, file=out)
    return code


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
        help="user in trytond mode, of the group Course Administration "
        "(default admin)")
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
