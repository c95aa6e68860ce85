//! Metric definitions (README.md § Metric definitions), as pure functions:
//! - active on day D = at least one activity event on D;
//! - DAU/WAU/MAU on D = distinct seats active on D / in the 7 / in the 30 days ending D;
//! - utilization = MAU ÷ seats; inactive = no activity in N days;
//! - cost per active user = seat price × seats ÷ MAU; savings = inactive seats × seat price;
//! - a day's numbers are complete once computed after its UTC midnight: headline
//!   figures are of the last complete day, today's are partial ("so far").

use std::collections::{BTreeMap, BTreeSet, HashMap};

use time::{Date, Duration, OffsetDateTime};

pub const WAU_DAYS: i64 = 7;
pub const MAU_DAYS: i64 = 30;

/// The numbers of one day, before they become a stored rollup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayMetrics {
    pub dau: u32,
    pub wau: u32,
    pub mau: u32,
    pub features: BTreeMap<String, u64>,
}

/// Computes DAU/WAU/MAU and feature totals for each day in `days` from per-seat
/// per-day feature counts. `activity` must cover the 29 days before the earliest
/// requested day for MAU to be complete.
pub fn daily_metrics<'a>(
    activity: impl IntoIterator<Item = (&'a str, Date, &'a BTreeMap<String, u32>)>,
    days: &[Date],
) -> BTreeMap<Date, DayMetrics> {
    let mut active: BTreeMap<Date, BTreeSet<&'a str>> = BTreeMap::new();
    let mut features: HashMap<Date, BTreeMap<String, u64>> = HashMap::new();
    for (seat, date, counts) in activity {
        if counts.values().any(|c| *c > 0) {
            active.entry(date).or_default().insert(seat);
        }
        let totals = features.entry(date).or_default();
        for (f, c) in counts {
            *totals.entry(f.clone()).or_default() += u64::from(*c);
        }
    }
    let distinct_in = |end: Date, len: i64| -> u32 {
        let start = end
            .checked_sub(Duration::days(len - 1))
            .unwrap_or(Date::MIN);
        let mut seen = BTreeSet::new();
        for (_, seats) in active.range(start..=end) {
            seen.extend(seats.iter().copied());
        }
        seen.len() as u32
    };
    days.iter()
        .map(|d| {
            (
                *d,
                DayMetrics {
                    dau: active.get(d).map_or(0, |s| s.len() as u32),
                    wau: distinct_in(*d, WAU_DAYS),
                    mau: distinct_in(*d, MAU_DAYS),
                    features: features.get(d).cloned().unwrap_or_default(),
                },
            )
        })
        .collect()
}

/// Whether the numbers of `day` computed at `as_of` cover the whole day: they were
/// computed after it ended (UTC). Today's numbers, and a day's numbers from a sync
/// that ran before its midnight, are partial.
pub fn day_complete(day: Date, as_of: OffsetDateTime) -> bool {
    as_of.to_offset(time::UtcOffset::UTC).date() > day
}

/// MAU ÷ seats as a percentage with one decimal, None without seats.
pub fn utilization_percent(mau: u32, seats: u32) -> Option<f64> {
    (seats > 0).then(|| (f64::from(mau) * 1000.0 / f64::from(seats)).round() / 10.0)
}

/// Seats with no activity in the `n_days` days ending `today` (never active counts as inactive).
pub fn is_inactive(last_activity_on: Option<Date>, today: Date, n_days: u32) -> bool {
    match last_activity_on {
        None => true,
        Some(d) => today
            .checked_sub(Duration::days(i64::from(n_days)))
            .is_some_and(|limit| d <= limit),
    }
}

/// Seat price × seats ÷ MAU, None when no one is active.
pub fn cost_per_active_user(seat_price: f64, seats: u32, mau: u32) -> Option<f64> {
    (mau > 0).then(|| seat_price * f64::from(seats) / f64::from(mau))
}

pub fn savings(seat_price: f64, inactive_seats: u32) -> f64 {
    seat_price * f64::from(inactive_seats)
}

/// Every day from `from` to `to` inclusive.
pub fn days_between(from: Date, to: Date) -> Vec<Date> {
    let mut out = Vec::new();
    let mut d = from;
    while d <= to {
        out.push(d);
        match d.next_day() {
            Some(n) => d = n,
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn counts(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn dau_wau_mau_count_distinct_seats_in_trailing_windows() {
        let a = counts(&[("resolve", 2)]);
        let b = counts(&[("note", 1), ("resolve", 1)]);
        let activity = vec![
            ("u1", date!(2026 - 10 - 01), &a),
            ("u2", date!(2026 - 10 - 25), &b),
            ("u1", date!(2026 - 10 - 30), &a),
            ("u3", date!(2026 - 10 - 31), &b),
        ];
        let m = daily_metrics(activity, &[date!(2026 - 10 - 31), date!(2026 - 10 - 30)]);
        let oct31 = &m[&date!(2026 - 10 - 31)];
        assert_eq!((oct31.dau, oct31.wau, oct31.mau), (1, 3, 3));
        assert_eq!(oct31.features["note"], 1);
        let oct30 = &m[&date!(2026 - 10 - 30)];
        // Oct 1 is inside the 30 days ending Oct 30, outside the 7 days.
        assert_eq!((oct30.dau, oct30.wau, oct30.mau), (1, 2, 2));
        assert_eq!(oct30.features["resolve"], 2);
    }

    #[test]
    fn mau_window_is_exactly_thirty_days() {
        let a = counts(&[("resolve", 1)]);
        let m = daily_metrics(
            vec![("u1", date!(2026 - 10 - 01), &a)],
            &[date!(2026 - 10 - 30), date!(2026 - 10 - 31)],
        );
        assert_eq!(m[&date!(2026 - 10 - 30)].mau, 1);
        assert_eq!(m[&date!(2026 - 10 - 31)].mau, 0);
    }

    #[test]
    fn zero_counts_do_not_make_a_seat_active() {
        let z = counts(&[("resolve", 0)]);
        let m = daily_metrics(
            vec![("u1", date!(2026 - 10 - 01), &z)],
            &[date!(2026 - 10 - 01)],
        );
        assert_eq!(m[&date!(2026 - 10 - 01)].dau, 0);
    }

    #[test]
    fn utilization_cost_and_savings_follow_the_definitions() {
        assert_eq!(utilization_percent(3, 8), Some(37.5));
        assert_eq!(utilization_percent(0, 0), None);
        assert_eq!(cost_per_active_user(20.0, 10, 4), Some(50.0));
        assert_eq!(cost_per_active_user(20.0, 10, 0), None);
        assert_eq!(savings(20.0, 3), 60.0);
    }

    #[test]
    fn inactive_means_no_activity_in_the_last_n_days() {
        let today = date!(2026 - 11 - 23);
        assert!(is_inactive(None, today, 30));
        assert!(is_inactive(Some(date!(2026 - 10 - 24)), today, 30));
        assert!(!is_inactive(Some(date!(2026 - 10 - 25)), today, 30));
    }

    #[test]
    fn a_day_is_complete_only_when_computed_after_its_utc_midnight() {
        use time::macros::datetime;
        let day = date!(2026 - 12 - 01);
        assert!(!day_complete(day, datetime!(2026-12-01 12:00 UTC)));
        assert!(!day_complete(day, datetime!(2026-12-01 23:59:59 UTC)));
        assert!(day_complete(day, datetime!(2026-12-02 00:00 UTC)));
        assert!(day_complete(day, datetime!(2026-12-03 08:00 UTC)));
        // 00:30 in Berlin on Dec 2 is still Dec 1 in UTC.
        assert!(!day_complete(day, datetime!(2026-12-02 00:30 +01:00)));
        assert!(!day_complete(day, datetime!(2026-11-30 12:00 UTC)));
    }

    #[test]
    fn days_between_is_inclusive() {
        assert_eq!(
            days_between(date!(2026 - 02 - 27), date!(2026 - 03 - 01)).len(),
            3
        );
        assert!(days_between(date!(2026 - 03 - 02), date!(2026 - 03 - 01)).is_empty());
    }
}
