"""What this process learned of the rows a call will lock, so that the
dispatcher takes those locks when it starts the call's transaction instead
of restarting the call for them (trytond's Model.lock restarts the whole
call for a lock not taken at the start).

Hints, never rights: a wrong or stale hint only costs the restart the call
would have had anyway, and each call still checks whose rows it works on.
"""

# {(database, token): party id}: the token's student
PARTIES = {}
# {(database, party id, order number): order id}: the student's orders this
# process answered; keyed by party so that a student's hint can only lock
# that student's own orders
ORDERS = {}
MAX_ENTRIES = 10000


def remember(memo, key, value):
    if len(memo) >= MAX_ENTRIES:
        memo.clear()  # hints: forgetting them all costs restarts, no more
    memo[key] = value


def remember_party(database, token, party):
    remember(PARTIES, (database, token), party)


def remember_order(database, party, number, order):
    remember(ORDERS, (database, party, number), order)


def known_party(database, token):
    return PARTIES.get((database, token))


def known_order(database, party, number):
    return ORDERS.get((database, party, number))
