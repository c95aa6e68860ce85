"""PagerDuty feature usage per user and day into DynamoDB: the comparison baseline.

The script a data engineer would write in an afternoon from PagerDuty's and AWS's
documentation, which `cargo xtask bench` runs beside Seatscope's sync on the same
sandbox and data set: PagerDuty's official client lists the log entries one UTC day
per query, counts the five user actions Seatscope counts per (user, day, feature)
and writes one item per (user, day) with boto3's batch writer. Ends with one line:
`script events=N items=M fetch_ms=F write_ms=W`.

Environment: PAGERDUTY_API_KEY, PAGERDUTY_URL (default https://api.pagerduty.com),
and boto3's own (AWS_ENDPOINT_URL_DYNAMODB, AWS_DEFAULT_REGION, credentials).
"""
import argparse
import os
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import boto3
import pagerduty

FEATURES = {"acknowledge_log_entry": "acknowledge", "resolve_log_entry": "resolve",
            "annotate_log_entry": "note", "assign_log_entry": "reassign",
            "escalate_log_entry": "escalate"}

args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
args.add_argument("--days", type=int, default=90, help="history: this many days before today")
args.add_argument("--table", default="pagerduty-usage")
args = args.parse_args()

client = pagerduty.RestApiV2Client(os.environ["PAGERDUTY_API_KEY"])
# The url setter accepts https:// only; the bench's sandbox is plain http on loopback.
client._url = os.environ.get("PAGERDUTY_URL", "https://api.pagerduty.com")


def too_many(entry, n, total):
    """iter_all's item hook: PagerDuty lists 10,000 entries of a query at most."""
    if n == 1 and total > pagerduty.ITERATION_LIMIT:
        raise OverflowError(total)


def count_day(counts, day, since, until):
    """Counts the user actions in [since, until) of one day into counts[(user, day)]."""
    params = {"since": since.isoformat(), "until": until.isoformat(),
              "time_zone": "UTC", "is_overview": False}
    found = Counter()
    try:
        for entry in client.iter_all("log_entries", params=params, item_hook=too_many, total=True):
            feature = FEATURES.get(entry["type"])
            if feature and entry["agent"]["type"] == "user_reference":
                found[(entry["agent"]["id"], feature)] += 1
    except OverflowError:  # too many for one query: the two halves
        middle = since + (until - since) / 2
        return count_day(counts, day, since, middle) + count_day(counts, day, middle, until)
    for (user, feature), n in found.items():
        counts[(user, day)][feature] += n
    return sum(found.values())


start, now = time.monotonic(), datetime.now(timezone.utc)
day = datetime.combine((now - timedelta(days=args.days)).date(), datetime.min.time(), timezone.utc)
counts, events = defaultdict(Counter), 0
while day < now:
    events += count_day(counts, day.date().isoformat(), day, min(day + timedelta(days=1), now))
    day += timedelta(days=1)
fetched = time.monotonic()

dynamodb = boto3.resource("dynamodb")
table = dynamodb.create_table(
    TableName=args.table, BillingMode="PAY_PER_REQUEST",
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                          {"AttributeName": "sk", "AttributeType": "S"}])
table.wait_until_exists()
with table.batch_writer() as batch:
    for (user, day), features in counts.items():
        batch.put_item(Item={"pk": f"USER#{user}", "sk": f"DAY#{day}", **features})
print(f"script events={events} items={len(counts)} "
      f"fetch_ms={int((fetched - start) * 1000)} write_ms={int((time.monotonic() - fetched) * 1000)}")
