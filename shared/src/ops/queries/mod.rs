//! The dashboard's reads, always scoped to the caller's org. Every number says
//! what it is (see `domain::metrics` for definitions) and carries its as-of time:
//! the overview of every app, one app's page and trends, its seats.

mod app_page;
mod overview;
pub mod people;
mod seats;

pub use app_page::{app_detail, range_days, trends, AppDetail, DailyPoint, FeatureTotal, Trends};
pub use overview::{overview, AppSummary, ConnectionView, Overview, PlanView, RenewalView, Totals};
pub use seats::{seats, OnCallView, SeatFilter, SeatView, SeatsList};

use std::collections::BTreeMap;

use time::{Date, Duration};

use crate::config::Config;
use crate::domain::catalog::{AuthMode, Pricing, Provider};
use crate::domain::time::parse_day;
use crate::error::{Error, Result};

pub use crate::domain::settings::DEFAULT_INACTIVE_DAYS;
const MAX_RANGE_DAYS: i64 = 366;

/// What the dashboard must say instead of inventing per-seat numbers.
pub fn activity_note(provider: &Provider) -> Option<String> {
    (!provider.per_seat_activity).then(|| {
        format!(
            "{} reports no per-seat activity: active users (DAU/WAU/MAU), utilization and \
             inactive seats cannot be known. Usage shown is account-level ({}).",
            provider.name,
            provider.features.join(", ")
        )
    })
}

/// What Connect can offer for an app now: OAuth only where a client is configured.
pub(crate) fn auth_modes(config: &Config, provider: &Provider) -> Vec<AuthMode> {
    provider
        .auth_modes
        .iter()
        .copied()
        .filter(|m| *m != AuthMode::Oauth2 || config.oauth_clients.contains_key(&provider.id))
        .collect()
}

/// Which vendor data each number comes from.
pub fn sources(provider: &Provider) -> BTreeMap<&'static str, String> {
    let mut s = BTreeMap::from([("seats", provider.seat_source.clone())]);
    let features = provider
        .features
        .iter()
        .map(|f| match provider.feature_sources.get(f) {
            Some(src) => format!("{f}: {src}"),
            None => f.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ");
    s.insert(
        if provider.per_seat_activity {
            "activity"
        } else {
            "account_usage"
        },
        features,
    );
    if provider.pricing == Pricing::Usage {
        s.insert("plan", PlanView::SOURCE.to_string());
    }
    s
}

/// Query parameters of the app pages, validated.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub from: Date,
    pub to: Date,
}

/// The earliest day a range may start: long before any data Seatscope can hold.
pub const MIN_DAY: Date = time::macros::date!(2000 - 01 - 01);
/// How far past today a range may end (a page that looks a little ahead).
const MAX_DAYS_AHEAD: i64 = 366;

impl Range {
    /// `from`/`to` as YYYY-MM-DD between 2000-01-01 and a year after `today`;
    /// defaults to the 30 days ending today (UTC). Every failure is a 400.
    pub fn parse(from: Option<&str>, to: Option<&str>, today: Date) -> Result<Range> {
        let latest = today
            .checked_add(Duration::days(MAX_DAYS_AHEAD))
            .unwrap_or(Date::MAX);
        let parse = |name: &str, v: &str| {
            let shown: String = v.chars().take(40).collect();
            let day = parse_day(v).ok_or_else(|| {
                Error::bad_request(
                    "invalid_date",
                    format!("{name} must be a date like 2026-10-31, got '{shown}'"),
                )
            })?;
            if day < MIN_DAY || day > latest {
                return Err(Error::bad_request(
                    "date_out_of_range",
                    format!("{name} must be a day from {MIN_DAY} to {latest}, got '{shown}'"),
                ));
            }
            Ok(day)
        };
        let to = to.map(|v| parse("to", v)).transpose()?.unwrap_or(today);
        let from = match from {
            Some(v) => parse("from", v)?,
            None => to
                .checked_sub(Duration::days(29))
                .map_or(MIN_DAY, |d| d.max(MIN_DAY)),
        };
        if from > to {
            return Err(Error::bad_request(
                "invalid_range",
                "from must not be after to",
            ));
        }
        if (to - from).whole_days() >= MAX_RANGE_DAYS {
            return Err(Error::bad_request(
                "invalid_range",
                format!("a range covers at most {MAX_RANGE_DAYS} days"),
            ));
        }
        Ok(Range { from, to })
    }
}

pub fn parse_inactive_days(v: Option<&str>) -> Result<Option<u32>> {
    match v {
        None => Ok(None),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=365).contains(d))
            .ok_or_else(|| {
                Error::bad_request(
                    "invalid_inactive_days",
                    "inactive_days must be a number from 1 to 365",
                )
            })
            .map(Some),
    }
}

pub fn definitions() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        (
            "dau",
            "distinct seats with at least one activity event on the day (UTC); the headline DAU is of the headline day",
        ),
        (
            "headline_day",
            "the last complete UTC day (yesterday when the app synced today): the day the headline DAU, \
             active (30 d), utilization and cost per active user are for; today's unfinished day never is",
        ),
        (
            "partial",
            "a day that was not over when its numbers were computed (today, \"so far\"): its counts \
             still grow; drawn apart in the charts",
        ),
        (
            "no_data",
            "a day without synced data (before the first synced day, or after today): a gap in the \
             charts, absent from the API's daily points, an empty cell in the trends CSV; never 0",
        ),
        (
            "wau",
            "distinct seats active in the 7 days ending on the day",
        ),
        (
            "mau",
            "distinct seats active in the 30 days ending on the day",
        ),
        (
            "active_30d",
            "distinct seats with at least one activity event in the 30 days ending on the headline day (the MAU of that day)",
        ),
        ("utilization_percent", "active (30 d) ÷ seats × 100"),
        (
            "plan_utilization_percent",
            "plan credits used ÷ credits included in the period × 100 (usage-priced apps)",
        ),
        (
            "inactive",
            "a seat with no activity in the app's threshold (30/60/90 days; never active counts), \
             unless it is exempt, was added less than the grace period ago, or is on call",
        ),
        (
            "inactive_seats",
            "seats counted inactive under the app's threshold, grace period and exemptions",
        ),
        (
            "seats",
            "seats the vendor reports now, including pending invitations (removed seats excluded)",
        ),
        (
            "active_days_30",
            "days on which the seat had at least one activity event, in the 30 days ending the last sync's day",
        ),
        (
            "in_grace",
            "added after the app's first import, less than the grace period ago: not counted inactive yet",
        ),
        (
            "on_call",
            "on call at the last sync, or on an on-call schedule or escalation policy from 30 days before \
             it to 30 days after (PagerDuty /oncalls): never reclaimable, whatever its activity; \
             \"on call, quiet\" when it has no activity in the threshold",
        ),
        (
            "downgrade",
            "PagerDuty: a Full User seat active in the threshold but with no acknowledge, resolve, \
             reassign or escalate in it, on no schedule or escalation policy, not exempt or in its \
             grace period, could be a Stakeholder seat (stakeholders take no action on incidents, \
             notes included); the saving is the two license prices' difference per month",
        ),
        (
            "seat_price",
            "what the org pays per seat per month, entered on the app page (never guessed)",
        ),
        (
            "license_price",
            "what the org pays per seat per month for a license type, entered on the app page; a \
             license without one costs the seat price",
        ),
        (
            "monthly_cost",
            "seat price × seats; with license prices, the sum of each seat's license price (unknown \
             while a seat has no price)",
        ),
        (
            "cost_per_active_user",
            "monthly cost ÷ active (30 d); per license type, its monthly cost ÷ its seats active in \
             the 30 days ending today",
        ),
        (
            "potential_savings",
            "inactive seats × their price, per month",
        ),
        (
            "renewal",
            "the app's renewal date moved forward by whole billing periods to the first one on or \
             after today; listed when it is at most 90 days away",
        ),
        (
            "saving_if_reclaimed",
            "potential savings × the months one billing period pays for (1 monthly, 12 annual): what \
             the inactive seats cost in the period the renewal starts",
        ),
        (
            "credits_projection",
            "usage-priced apps: the credits spent per day over the last 30 complete synced days (the \
             plan's metric, e.g. emails requested); at that pace the credits left run out on a day \
             before the reset, or a share of the plan's credits is left unused at the reset",
        ),
        (
            "feature_total",
            "activity events of the feature in the selected range, summed over seats",
        ),
    ])
}

/// Days per rollup query: a year is read as four queries at once, which the table
/// serves in parallel (one query would page through it alone).
const ROLLUP_DAYS_PER_QUERY: i64 = 92;

/// `range` cut into contiguous pieces of at most `ROLLUP_DAYS_PER_QUERY` days.
pub(super) fn rollup_query_bounds(range: Range) -> Vec<(Date, Date)> {
    let mut bounds = Vec::new();
    let mut from = range.from;
    while from <= range.to {
        let to = from
            .checked_add(Duration::days(ROLLUP_DAYS_PER_QUERY - 1))
            .map_or(range.to, |d| d.min(range.to));
        bounds.push((from, to));
        match to.next_day() {
            Some(next) => from = next,
            None => break,
        }
    }
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn range_defaults_to_thirty_days_ending_today() {
        let r = Range::parse(None, None, date!(2026 - 11 - 23)).unwrap();
        assert_eq!(
            (r.from, r.to),
            (date!(2026 - 10 - 25), date!(2026 - 11 - 23))
        );
    }

    #[test]
    fn a_year_of_rollups_is_read_in_four_contiguous_queries() {
        let r = Range::parse(
            Some("2025-11-24"),
            Some("2026-11-23"),
            date!(2026 - 11 - 23),
        )
        .unwrap();
        let b = rollup_query_bounds(r);
        assert_eq!(b.len(), 4);
        assert_eq!((b[0].0, b[3].1), (r.from, r.to));
        for w in b.windows(2) {
            assert_eq!(w[1].0, w[0].1 + Duration::days(1));
        }
        let one_day = Range::parse(
            Some("2026-11-23"),
            Some("2026-11-23"),
            date!(2026 - 11 - 23),
        )
        .unwrap();
        assert_eq!(rollup_query_bounds(one_day), vec![(r.to, r.to)]);
    }

    #[test]
    fn bad_ranges_are_client_errors() {
        let today = date!(2026 - 11 - 23);
        assert_eq!(
            Range::parse(Some("2026-13-01"), None, today)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            Range::parse(Some("2026-11-02"), Some("2026-11-01"), today)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            Range::parse(Some("2024-01-01"), Some("2026-01-01"), today)
                .unwrap_err()
                .status(),
            400
        );
        for (from, to) in [
            (None, Some("9999-12-31")),
            (Some("-9999-01-01"), None),
            (Some("-9999-01-01"), Some("-9999-01-01")),
            (Some("9999-12-31"), Some("9999-12-31")),
            (Some("1999-12-31"), Some("2000-01-05")),
            (Some("+10000-01-01"), None),
            (Some("2026-02-30"), None),
            (Some("2026-11-01T00:00:00Z"), None),
            (Some(""), None),
        ] {
            let e = Range::parse(from, to, today).unwrap_err();
            assert_eq!(e.status(), 400, "{from:?} {to:?}");
        }
        // The edges of the accepted span still parse, with checked defaults.
        let r = Range::parse(None, Some("2000-01-10"), today).unwrap();
        assert_eq!((r.from, r.to), (MIN_DAY, date!(2000 - 01 - 10)));
        let r = Range::parse(None, None, Date::MAX).unwrap();
        assert_eq!(rollup_query_bounds(r).last().unwrap().1, Date::MAX);
        assert_eq!(parse_inactive_days(Some("0")).unwrap_err().status(), 400);
        assert_eq!(parse_inactive_days(Some("x")).unwrap_err().status(), 400);
        assert_eq!(parse_inactive_days(None).unwrap(), None);
        assert_eq!(parse_inactive_days(Some("60")).unwrap(), Some(60));
        for bad in ["99999999999999999999", "-1", "366", "1e3", "NaN", " 30"] {
            assert_eq!(parse_inactive_days(Some(bad)).unwrap_err().status(), 400);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_range_query_is_a_range_or_a_client_error(
            from in proptest::option::of(proptest::prelude::any::<String>()),
            to in proptest::option::of(proptest::prelude::any::<String>()),
            today_offset in -800_000i32..=800_000,
        ) {
            let today = Date::from_julian_day(2_460_000 + today_offset).unwrap_or(Date::MAX);
            match Range::parse(from.as_deref(), to.as_deref(), today) {
                Ok(r) => {
                    proptest::prop_assert!(r.from <= r.to);
                    let bounds = rollup_query_bounds(r);
                    proptest::prop_assert_eq!(bounds.first().map(|b| b.0), Some(r.from));
                    proptest::prop_assert_eq!(bounds.last().map(|b| b.1), Some(r.to));
                }
                Err(e) => proptest::prop_assert_eq!(e.status(), 400),
            }
        }

        #[test]
        fn date_like_queries_near_the_edges_never_panic(
            y in -9999i32..=9999, m in 1u8..=12, d in 1u8..=31,
            y2 in -9999i32..=9999, m2 in 1u8..=12, d2 in 1u8..=31,
        ) {
            let from = format!("{y:04}-{m:02}-{d:02}");
            let to = format!("{y2:04}-{m2:02}-{d2:02}");
            let today = date!(2026 - 11 - 23);
            for (f, t) in [(Some(&from), Some(&to)), (Some(&from), None), (None, Some(&to))] {
                if let Err(e) = Range::parse(f.map(String::as_str), t.map(String::as_str), today) {
                    proptest::prop_assert_eq!(e.status(), 400);
                }
            }
        }

        #[test]
        fn any_inactive_days_query_is_a_number_or_a_client_error(v in proptest::prelude::any::<String>()) {
            if let Err(e) = parse_inactive_days(Some(&v)) {
                proptest::prop_assert_eq!(e.status(), 400);
            }
        }
    }
}
