#!/usr/bin/env python3
"""Export the orders of a period to a CSV file.

    python3 scripts/export_orders.py -d <db> [-c <conf>] [-u <login>] \\
        --from 2026-12-01 --to 2026-12-31 [-o orders.csv]
    python3 scripts/export_orders.py \\
        --url http://<login>:<pw>@<host>:8000/<db>/rpc/ \\
        --from 2026-12-01 --to 2026-12-31 [--state paid] [-o orders.csv]

Writes one row per order of the user's company made from the first day
(--from) to the last day (--to, included), days of the company's time
zone, oldest first: number, date (in that time zone, ISO 8601), student
code and name, state, payment method, currency, total, discount, payable
(with the currency's decimals), paid at, title.  --state (repeatable) keeps
the orders in those states only.  Without -o the CSV goes to the standard
output.  Read only; the user needs to read orders (Course Sales or Course
Administration).
"""
import csv
import datetime as dt
import os
import sys
from decimal import Decimal

import admin_common as common

STATES = ['unpaid', 'paid', 'cancelled', 'expired', 'refunding', 'refunded']
COLUMNS = ['number', 'date', 'student_code', 'student', 'state',
    'pay_method', 'currency', 'total', 'discount', 'payable', 'paid_at',
    'title']
FIELDS = ['number', 'order_date', 'party.code', 'party.rec_name', 'state',
    'pay_method', 'currency.code', 'total_amount', 'discount_amount',
    'payable_amount', 'paid_at', 'title']


def day(text):
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD")


def arguments():
    parser = common.parser(__doc__)
    parser.add_argument('--from', dest='start', type=day, required=True,
        help="first day, YYYY-MM-DD")
    parser.add_argument('--to', dest='end', type=day, required=True,
        help="last day (included), YYYY-MM-DD")
    parser.add_argument('--state', action='append', choices=STATES,
        help="only the orders in this state (repeatable)")
    parser.add_argument('-o', '--output', help="the CSV file to write")
    return parser


def zone(company):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        return ZoneInfo(company['timezone'] or 'UTC')
    except ZoneInfoNotFoundError:
        return dt.timezone.utc


def period(start, end, tz):
    "The UTC bounds (naive, as Tryton stores them) of the days start..end"
    def utc(date):
        local = dt.datetime.combine(date, dt.time(), tzinfo=tz)
        return local.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return utc(start), utc(end + dt.timedelta(days=1))


def local_text(value, tz):
    "The ISO text of a stored (UTC) datetime in tz"
    if not value:
        return ''
    return value.replace(tzinfo=dt.timezone.utc).astimezone(tz).isoformat()


def money(value, digits):
    return str(Decimal(str(value)).quantize(Decimal(1).scaleb(-digits)))


def order_ids(target, start, end, states):
    domain = [('order_date', '>=', start), ('order_date', '<', end)]
    if states:
        domain.append(('state', 'in', states))
    return target.call('course.order', 'search', domain, 0, None,
        [('order_date', 'ASC'), ('id', 'ASC')])


def rows(target, ids, company, tz, progress):
    "The CSV rows of the orders ids, read in chunks"
    digits = company['digits']
    for start in range(0, len(ids), common.CHUNK):
        chunk = ids[start:start + common.CHUNK]
        for order in target.read('course.order', chunk, FIELDS):
            party = order['party.'] or {}
            yield [order['number'], local_text(order['order_date'], tz),
                party.get('code') or '', party.get('rec_name') or '',
                order['state'], order['pay_method'],
                (order['currency.'] or {}).get('code', ''),
                money(order['total_amount'], digits),
                money(order['discount_amount'], digits),
                money(order['payable_amount'], digits),
                local_text(order['paid_at'], tz), order['title'] or '']
        progress.step(len(chunk))


def export(target, args, out):
    "Write the CSV to out; return the number of orders"
    company = target.company()
    tz = zone(company)
    start, end = period(args.start, args.end, tz)
    ids = order_ids(target, start, end, args.state)
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow(COLUMNS)
    progress = common.Progress("Exporting", len(ids))
    for row in rows(target, ids, company, tz, progress):
        writer.writerow(row)
    return len(ids)


@common.command
def main(argv=None, out=None):
    parser = arguments()
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error("--to is before --from")
    target = common.connect(args)
    if not args.output:
        try:
            count = export(target, args, out or sys.stdout)
        except BrokenPipeError:  # the reader had enough (| head)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return common.EXIT_OK
    else:
        try:
            with open(args.output, 'w', newline='', encoding='utf-8') as fp:
                count = export(target, args, fp)
        except OSError as error:
            raise common.ScriptError(
                f"Cannot write {args.output}: {error.strerror}")
    print(f"{count} order(s) from {args.start} to {args.end}.",
        file=sys.stderr)
    return common.EXIT_OK


if __name__ == '__main__':
    common.run(main)
