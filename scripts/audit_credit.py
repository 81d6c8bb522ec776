#!/usr/bin/env python3
"""Audit the credit and wallet ledgers of a course-commerce database.

    python3 scripts/audit_credit.py -d <db> [-c <trytond.conf>] [-u <login>]
    python3 scripts/audit_credit.py \\
        --url http://<login>:<pw>@<host>:8000/<db>/rpc/

Calls, through proteus and as the given user, the audit of the ledgers,
``course.credit.movement.audit``: every balance recorded on a movement
equals the sum of its ledger's movements (and is never below zero), every
movement is explained by its order or its staff adjustment, and the credit
and wallet movements of every order match its state and amounts.  When the
database offers it, the audit of the orders and enrollments,
``course.order.audit``, is run too, and so is the audit of the mentor-fee
ledger (``course.mentor.movement.audit``, where course_degree is
activated); the gifts are listed for review
(``course.order.audit_gifts``: a gift is no disagreement).

The audits are for the group "Course Administration" and cover the user's
companies: run the script as such a user (``-u``, default ``admin``, or the
user of the URL).

Prints one line per disagreement; exits 0 when everything agrees, 1 when
something disagrees, 2 when the database cannot be reached or the user may
not audit.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_common as common  # noqa: E402

# (model, what its audit checks, the line printed when all agrees)
AUDITS = [
    ('course.credit.movement', "the credit and wallet ledgers",
        "Credit and wallet ledgers agree."),
    ('course.order', "the orders and enrollments",
        "Orders and enrollments agree."),
    # Where course_degree is activated
    ('course.mentor.movement', "the mentor-fee ledger",
        "Mentor-fee ledger agrees."),
    ]
# (model, method, what its texts are): printed, no disagreement
REVIEWS = [
    ('course.order', 'audit_gifts', "gift(s) to review"),
    ]


def check(config=None):
    """Return [(what, agreed line, disagreements)] for each audit the
    database offers"""
    from proteus import Model
    from proteus.config import get_config
    config = config or get_config()
    results = []
    IrModel = Model.get('ir.model', config=config)
    present = {m.name for m in IrModel.find(
            [('name', 'in', [m for m, _, _ in AUDITS])])}
    for model, what, agreed in AUDITS:
        if model not in present:
            continue
        Audited = Model.get(model, config=config)
        if hasattr(Audited, 'audit'):  # an RPC method of the model
            print(f"Auditing {what}...", file=sys.stderr, flush=True)
            results.append((what, agreed, Audited.audit(config.context)))
    return results


def reviews(config=None):
    "Return [(what, texts)] for each list to review the database offers"
    from proteus import Model
    from proteus.config import get_config
    config = config or get_config()
    results = []
    for model, method, what in REVIEWS:
        Reviewed = Model.get(model, config=config)
        if hasattr(Reviewed, method):
            results.append(
                (what, getattr(Reviewed, method)(config.context)))
    return results


def run(config=None, out=None):
    """Print the disagreements, then the lists to review; return the exit
    code (the lists to review do not change it)"""
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
    for what, texts in reviews(config):
        for text in texts:
            print(text, file=out)
        if texts:
            print(f"{len(texts)} {what}", file=out)
    return code


def connect(args):
    "The proteus configuration of the arguments (see admin_common)"
    return common.connect(args).config


@common.command
def main(argv=None):
    args = common.parser(__doc__).parse_args(argv)
    return run(connect(args))


if __name__ == '__main__':
    common.run(main)
