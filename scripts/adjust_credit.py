#!/usr/bin/env python3
"""Adjust the credit points or wallet of the students of a CSV file.

    python3 scripts/adjust_credit.py -d <db> [-c <conf>] [-u <login>] \\
        adjust.csv
    python3 scripts/adjust_credit.py \\
        --url http://<login>:<pw>@<host>:8000/<db>/rpc/ adjust.csv

The CSV has a header line with the columns "student" (an e-mail or a party
code), "ledger" ("credit" for points, "wallet" for money), "value" (points:
a whole number; wallet: an amount with at most the currency's decimals, a
dot as decimal mark) and "reason" (or --reason for the rows without one);
"kind" is optional: "adjust" (default, signed value), "grant" or "expire"
(points, positive) or "topup" (wallet, positive).  Every row is checked
first: the student, the ledger and kind, the value, the reason, and that
no balance goes below zero once the rows before it are applied; any bad
row is reported (row, column, reason) and nothing is changed (exit 1).

Each row is then recorded by the Adjust Credit or Wallet wizard, as staff
do in the client (Course Administration), with the reason followed by a
tag "[batch <name> <key>]" (--batch, default the file's name; the key
follows the row's values): a row whose tag is already recorded is skipped,
so running a file again changes nothing.  On a local database all rows are
applied in one transaction; over a server each row is one transaction: if
one fails the rows before it stay recorded (the script says which), and
running the same file again applies only the rest.
"""
import hashlib
import os
import re
import sys

import admin_common as common

KINDS = {
    'credit': {'adjust': 1, 'grant': 1, 'expire': -1},
    'wallet': {'adjust': 1, 'topup': 1},
    }
MAX_POINTS = 10 ** 9
REASON_SIZE = 1000


def arguments():
    parser = common.parser(__doc__)
    parser.add_argument('--reason',
        help="the reason of the rows with an empty reason column")
    parser.add_argument('--batch',
        help="the name that tags the adjustments of this file (default: "
        "the file's name without extension)")
    parser.add_argument('--dry-run', action='store_true',
        help="check the file only")
    parser.add_argument('file', help="the CSV file")
    return parser


def batch_name(args):
    name = args.batch or os.path.splitext(os.path.basename(args.file))[0]
    return re.sub(r'[\s\[\]]+', '-', name)[:60] or 'stdin'


def tag(batch, values, occurrence):
    "The tag of a row: the same row of the same batch has the same tag"
    digest = hashlib.sha256('\n'.join(
            [batch, values['student'].lower(), values['ledger'],
                values['kind'], values['value'], values['reason'],
                str(occurrence)]).encode()).hexdigest()[:12]
    return f"[batch {batch} {digest}]"


def check_value(values, ledger, kind, digits):
    "The points (int) or amount (Decimal) of the row; ValueError otherwise"
    text = values['value']
    if ledger == 'credit':
        if not re.fullmatch(r'[+-]?\d{1,10}', text):
            raise ValueError(f"{text!r} is not a whole number of points")
        value = int(text)
        if abs(value) > MAX_POINTS:
            raise ValueError(f"{text} is too large")
    else:
        value = common.parse_amount(text, digits)
    if not value:
        raise ValueError("zero changes nothing")
    if kind != 'adjust' and value < 0:
        raise ValueError(f"a {kind} is positive (not {text})")
    return value


def parse_row(number, values, default_reason, digits, problems):
    """{ledger, kind, value, reason} of a row (the student aside), or None
    with its problems reported"""
    ledger = values['ledger'].lower()
    kind = (values.get('kind') or 'adjust').lower()
    reason = values.get('reason') or default_reason or ''
    ok = True
    if ledger not in KINDS:
        problems.add(number, 'ledger',
            f"{values['ledger']!r}: credit or wallet expected")
        ok = False
    elif kind not in KINDS[ledger]:
        problems.add(number, 'kind', f"{kind!r}: one of "
            f"{', '.join(KINDS[ledger])} expected for the {ledger} ledger")
        ok = False
    if ok:
        try:
            value = check_value(values, ledger, kind, digits)
        except ValueError as error:
            problems.add(number, 'value', str(error))
            ok = False
    if not reason.strip():
        problems.add(number, 'reason', "empty: a reason is required "
            "(the column or --reason)")
        ok = False
    if not ok:
        return None
    return {'ledger': ledger, 'kind': kind, 'value': value,
        'reason': reason.strip()}


def applied_tags(target, batch):
    "The tags of batch already recorded on adjustments"
    found = set()
    for adjustment in target.search_read('course.credit.adjustment',
            [('reason', 'ilike', f'%[batch {batch} %')], ['reason']):
        found.update(re.findall(
                rf'\[batch {re.escape(batch)} [0-9a-f]{{12}}\]',
                adjustment['reason']))
    return found


def balances(target, party_ids):
    "{(party id, ledger): balance} in the user's company"
    result = {}
    for party in target.read('party.party', party_ids,
            ['credit_balance', 'wallet_balance']):
        result[(party['id'], 'credit')] = party['credit_balance'] or 0
        result[(party['id'], 'wallet')] = common.Decimal(
            str(party['wallet_balance'] or 0))
    return result


def validate(target, company, rows, args, problems):
    """([entry], [skipped row numbers]): an entry is a dict of a row to
    apply (number, party, ledger, kind, value, reason with its tag)"""
    columns = ['student', 'ledger', 'value', 'reason', 'kind']
    rows = common.check_columns(rows, problems, columns)
    students = common.resolve_students(target, rows, problems)
    batch = batch_name(args)
    done = applied_tags(target, batch)
    entries, skipped, occurrences = [], [], {}
    for number, values in rows:
        entry = parse_row(
            number, values, args.reason, company['digits'], problems)
        if entry is None or number not in students:
            continue
        key = tuple(values.get(c, '') for c in columns)
        occurrences[key] = occurrences.get(key, 0) + 1
        entry['tag'] = tag(batch, dict(entry, student=values['student'],
                value=values['value']), occurrences[key])
        if entry['tag'] in done:
            skipped.append(number)
            continue
        entry['reason'] = f"{entry['reason']} {entry['tag']}"
        if len(entry['reason']) > REASON_SIZE:
            problems.add(number, 'reason', "too long: at most "
                f"{REASON_SIZE - len(entry['tag']) - 1} characters")
            continue
        entry.update(number=number, party=students[number][0],
            name=students[number][1])
        entries.append(entry)
    check_balances(target, entries, problems)
    return entries, skipped


def check_balances(target, entries, problems):
    "Report the rows that take a balance below zero, in the file's order"
    current = balances(target, sorted({e['party'] for e in entries}))
    for entry in entries:
        key = (entry['party'], entry['ledger'])
        sign = KINDS[entry['ledger']][entry['kind']]
        current[key] += sign * entry['value']
        if current[key] < 0:
            what = "points" if entry['ledger'] == 'credit' else "wallet"
            problems.add(entry['number'], 'value', f"takes the {what} "
                f"balance of {entry['name']} to {current[key]}")


def apply(target, company, entries, out=None):
    "Record entries with the adjust wizard, one row a call"
    progress = common.Progress("Adjusting", len(entries), out=out)
    done = []

    def record(target):
        del done[:]
        progress.done = 0
        for entry in entries:
            value_field = 'points' if entry['ledger'] == 'credit' else 'amount'
            target.wizard('course.credit.adjust', 'adjust_', {'start': {
                        'party': entry['party'], 'company': company['id'],
                        'ledger': entry['ledger'], 'kind': entry['kind'],
                        value_field: entry['value'],
                        'reason': entry['reason'],
                        }})
            done.append(entry['number'])
            progress.step()
    try:
        target.apply(record)
    except Exception:
        if done and not target.local:
            print(f"Rows {', '.join(map(str, done))} were recorded; the "
                f"others were not. Running the same file again applies "
                "only those.", file=out or sys.stderr)
        raise
    return list(done)


@common.command
def main(argv=None, out=None):
    out = out or sys.stdout
    args = arguments().parse_args(argv)
    target = common.connect(args)
    rows = common.read_csv(args.file, ['student', 'ledger', 'value'],
        ['reason', 'kind'])
    company = target.company()
    for number, values in rows:
        if values is not None:
            values.setdefault('reason', '')
            values.setdefault('kind', '')
    problems = common.Problems()
    entries, skipped = validate(target, company, rows, args, problems)
    if problems:
        return problems.report()
    for number in skipped:
        print(f"row {number}: already recorded (batch {batch_name(args)}), "
            "skipped", file=out)
    if args.dry_run:
        print(f"{len(entries)} row(s) to record; nothing changed "
            "(--dry-run).", file=out)
        return common.EXIT_OK
    try:
        apply(target, company, entries)
    except Exception as error:
        print(f"Refused: {common.error_text(error)}", file=sys.stderr)
        return common.EXIT_PROBLEMS
    print(f"Recorded {len(entries)} adjustment(s) in {company['name']}.",
        file=out)
    return common.EXIT_OK


if __name__ == '__main__':
    common.run(main)
