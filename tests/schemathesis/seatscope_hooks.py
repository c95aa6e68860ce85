"""Schemathesis hooks for tests/tests/schemathesis.rs (loaded with SCHEMATHESIS_HOOKS).

Positive cases (data the document calls valid) only; negative cases are left as
generated, so the API must still refuse them. Two things, nothing else:

- What openapi.json states in prose because JSON Schema cannot: a date range's bounds
  move with today (2000-01-01 to today + 366 days), `from` must not be after `to`,
  and a range covers at most 366 days. Such cases are brought inside those rules.
- Which API key is valid is the vendor's to say (the document: 422 otherwise). A
  well-formed key gets replaced by one the vendor's sandbox accepts
  (SEATSCOPE_VENDOR_KEYS, JSON by provider), as one would supply an existing id.
"""

import json

import datetime
import os

import schemathesis

TODAY = datetime.date.fromisoformat(os.environ["SEATSCOPE_API_TODAY"])
EARLIEST = datetime.date(2000, 1, 1)
LATEST = TODAY + datetime.timedelta(days=366)
# A range of at most 366 days: `to` at most 365 days after `from`.
MAX_SPAN = datetime.timedelta(days=365)
VENDOR_KEYS = json.loads(os.environ.get("SEATSCOPE_VENDOR_KEYS", "{}"))
API_KEY_PATH = "/api/connections/{provider}/api-key"


def _day(value):
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        return None


def _clamp(day):
    return min(max(day, EARLIEST), LATEST)


@schemathesis.hook
def map_case(ctx, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    if case.operation.path == API_KEY_PATH and isinstance(case.body, dict) and "api_key" in case.body:
        key = VENDOR_KEYS.get((case.path_parameters or {}).get("provider"))
        if key is not None:
            # A new dict: the generator may share one body among cases.
            case.body = {**case.body, "api_key": key}
    if not isinstance(case.query, dict):
        return case
    query = dict(case.query)
    if "from" not in query and "to" not in query:
        return case
    start = _day(query["from"]) if "from" in query else None
    end = _day(query["to"]) if "to" in query else None
    if ("from" in query and start is None) or ("to" in query and end is None):
        return case
    if start is not None:
        start = _clamp(start)
    if end is not None:
        end = _clamp(end)
    # Without `to`, the range ends today; without `from`, it is the 30 days ending
    # at `to` (always valid).
    last = end if end is not None else TODAY
    if start is not None:
        if start > last:
            if end is None:
                start = last
            else:
                start, end = end, start
                last = end
        if last - start > MAX_SPAN:
            start = last - MAX_SPAN
        query["from"] = start.isoformat()
    if end is not None:
        query["to"] = end.isoformat()
    case.query = query
    return case
