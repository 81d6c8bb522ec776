#!/usr/bin/env python3
"""Grant a coupon to the students of a CSV file.

    python3 scripts/grant_coupon.py -d <db> [-c <conf>] [-u <login>] \\
        --coupon <id or name> students.csv
    python3 scripts/grant_coupon.py \\
        --url http://<login>:<pw>@<host>:8000/<db>/rpc/ \\
        --coupon <id or name> students.csv

The CSV has a header line with the column "student": a student's e-mail
(a contact mechanism of the party or the e-mail of its web user) or party
code, one a row.  Every row is checked first: the student exists and is
one only, is not listed twice, is not at the coupon's per-student limit
(unless --skip-limited), and the coupon has stock for all; any bad row is
reported (row, column, reason) and nothing is granted (exit 1).  Then the
grants are made by course.coupon.grant (origin "Script"), as the Grant
Coupon wizard does, by the user (Course Administration).

The grants are made in one call per 10,000 students: on a local database
all in one transaction; over a server each call is one transaction (a
failing call grants none of its students; the calls before it are kept
and reported).  Running the same file again grants again.
"""
import sys

import admin_common as common

GRANT_BATCH = 10000  # course.coupon.grant refuses more in one call


def arguments():
    parser = common.parser(__doc__)
    parser.add_argument('--coupon', required=True,
        help="the coupon: its id or its exact name")
    parser.add_argument('--skip-limited', action='store_true',
        help="leave out the students who hold as many grants of the "
        "coupon as it allows (instead of refusing the file)")
    parser.add_argument('--dry-run', action='store_true',
        help="check the file only")
    parser.add_argument('file', help="the CSV file ('-': standard input)")
    return parser


def find_coupon(target, text):
    "The coupon (a dict) of the id or name text; ScriptError otherwise"
    fields = ['rec_name', 'active', 'remaining', 'per_party_limit']
    if text.isdigit():
        domain = [('id', '=', int(text))]
    else:
        domain = [('name', '=', text)]
    coupons = target.search_read('course.coupon', domain, fields)
    if len(coupons) != 1:
        raise common.ScriptError(f"--coupon {text}: " + (
                "no such coupon" if not coupons else
                "several coupons have that name; give its id"))
    coupon, = coupons
    if not coupon['active']:
        raise common.ScriptError(
            f"--coupon {text}: the coupon {coupon['rec_name']} is inactive")
    return coupon


def held_counts(target, coupon, party_ids):
    "{party id: grants of coupon held}"
    counts = {}
    for start in range(0, len(party_ids), common.CHUNK):
        for grant in target.search_read('course.coupon.grant', [
                    ('coupon', '=', coupon['id']),
                    ('party', 'in', party_ids[start:start + common.CHUNK]),
                    ], ['party']):
            counts[grant['party']] = counts.get(grant['party'], 0) + 1
    return counts


def validate(target, coupon, rows, skip_limited, problems):
    """[(row number, party id)] to grant, the bad rows in problems (and
    the students left out at their limit, with skip_limited, not in it)"""
    rows = common.check_columns(rows, problems, ['student'])
    students = common.resolve_students(target, rows, problems)
    seen = {}
    for number, (party, name) in sorted(students.items()):
        if party in seen:
            problems.add(number, 'student',
                f"{name} is already on row {seen[party]}")
        else:
            seen[party] = number
    limit = coupon['per_party_limit']
    counts = held_counts(target, coupon, sorted(seen)) if limit else {}
    grants, skipped = [], []
    for party, number in sorted(seen.items(), key=lambda i: i[1]):
        if limit and counts.get(party, 0) >= limit:
            if skip_limited:
                skipped.append(number)
                continue
            problems.add(number, 'student', f"{students[number][1]} "
                f"already holds {counts[party]} grant(s) of "
                f"{coupon['rec_name']}, the most allowed")
        else:
            grants.append((number, party))
    remaining = coupon['remaining']
    if remaining is not None and remaining < len(grants):
        problems.add(None, None, f"the coupon {coupon['rec_name']} has "
            f"{remaining} left for {len(grants)} students")
    return grants, skipped


def grant(target, coupon, grants, skip_limited, out=None):
    """Grant coupon to the parties of grants, GRANT_BATCH a call; return
    the grant ids"""
    progress = common.Progress("Granting", len(grants), out=out)
    done = []

    def apply(target):
        del done[:]
        progress.done = 0
        for start in range(0, len(grants), GRANT_BATCH):
            batch = grants[start:start + GRANT_BATCH]
            try:
                done.extend(target.call('course.coupon', 'grant',
                        [coupon['id']], [p for _, p in batch], 'script',
                        skip_limited))
            except Exception as error:
                if not target.local and start:
                    print(f"Rows {grants[0][0]} to {grants[start - 1][0]} "
                        "were granted; the rows from "
                        f"{batch[0][0]} on were not.", file=out or sys.stderr)
                raise
            progress.step(len(batch))
        return list(done)
    return target.apply(apply)


@common.command
def main(argv=None, out=None):
    out = out or sys.stdout
    args = arguments().parse_args(argv)
    target = common.connect(args)
    rows = common.read_csv(args.file, ['student'])
    coupon = find_coupon(target, args.coupon)
    problems = common.Problems()
    grants, skipped = validate(
        target, coupon, rows, args.skip_limited, problems)
    if problems:
        return problems.report()
    for number in skipped:
        print(f"row {number}: left out, at the coupon's limit", file=out)
    if args.dry_run:
        print(f"{len(grants)} row(s) to grant; nothing changed (--dry-run).",
            file=out)
        return common.EXIT_OK
    try:
        made = grant(target, coupon, grants, args.skip_limited)
    except Exception as error:
        print(f"Refused: {common.error_text(error)}", file=sys.stderr)
        return common.EXIT_PROBLEMS
    print(f"Granted {coupon['rec_name']} to {len(made)} student(s).",
        file=out)
    return common.EXIT_OK


if __name__ == '__main__':
    common.run(main)
