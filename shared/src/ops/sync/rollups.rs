//! Rollups (an app's numbers per day) and the seats' active days, from the day counts.

use std::collections::{BTreeMap, HashMap};

use time::{Date, Duration, OffsetDateTime};

use crate::connectors::AccountDay;
use crate::domain::metrics;
use crate::domain::rollup::DailyRollup;
use crate::domain::seat::{Seat, SeatDay, SeatStatus};
use crate::domain::time::{day, parse_day, rfc3339};
use crate::error::Result;
use crate::store::AppData;

/// Each seat's active days in the 30 days ending `today`, from the stored day
/// counts; only seats whose number changed are written.
pub(super) async fn update_active_days(
    data: &AppData<'_>,
    seats: &mut [Seat],
    today: Date,
) -> Result<()> {
    let from = today - Duration::days(metrics::MAU_DAYS - 1);
    let days: Vec<SeatDay> = data.seat_days(from, today + Duration::days(1)).await?;
    let mut active: HashMap<&str, u32> = HashMap::new();
    for d in days.iter().filter(|d| d.total > 0) {
        *active.entry(d.seat_id.as_str()).or_default() += 1;
    }
    let mut changed = Vec::new();
    for seat in seats.iter_mut().filter(|s| s.status != SeatStatus::Removed) {
        let n = Some(active.get(seat.seat_id.as_str()).copied().unwrap_or(0));
        if seat.active_days_30 != n {
            seat.active_days_30 = n;
            changed.push(seat.clone());
        }
    }
    data.put_seats(&changed).await
}

/// Rollups of a vendor without per-seat activity: seats and the account-level
/// metrics of each day; DAU/WAU/MAU stay absent.
pub(super) fn account_rollups(
    touched: &[Date],
    days: Vec<AccountDay>,
    seat_count: u32,
    now: OffsetDateTime,
) -> Vec<DailyRollup> {
    let mut by_day: HashMap<Date, BTreeMap<String, u64>> =
        days.into_iter().map(|d| (d.date, d.metrics)).collect();
    let as_of = rfc3339(now);
    touched
        .iter()
        .map(|date| DailyRollup {
            date: day(*date),
            seats: seat_count,
            dau: None,
            wau: None,
            mau: None,
            features: by_day.remove(date).unwrap_or_default(),
            as_of: as_of.clone(),
        })
        .collect()
}

/// Rollups for the touched days, from this window's day counts plus the stored
/// ones of the 29 days before (for WAU/MAU).
pub(super) async fn rebuild_rollups(
    data: &AppData<'_>,
    touched: &[Date],
    fresh: &[SeatDay],
    seat_count: u32,
    now: OffsetDateTime,
) -> Result<Vec<DailyRollup>> {
    let (Some(first), Some(_)) = (touched.first(), touched.last()) else {
        return Ok(Vec::new());
    };
    let lookback_from = first
        .checked_sub(Duration::days(metrics::MAU_DAYS - 1))
        .unwrap_or(Date::MIN);
    let earlier: Vec<SeatDay> = data.seat_days(lookback_from, *first).await?;
    let activity = earlier
        .iter()
        .chain(fresh.iter())
        .filter_map(|d| parse_day(&d.date).map(|date| (d.seat_id.as_str(), date, &d.features)));
    let computed = metrics::daily_metrics(activity, touched);
    let as_of = rfc3339(now);
    Ok(computed
        .into_iter()
        .map(|(date, m)| DailyRollup {
            date: day(date),
            seats: seat_count,
            dau: Some(m.dau),
            wau: Some(m.wau),
            mau: Some(m.mau),
            features: m.features,
            as_of: as_of.clone(),
        })
        .collect())
}
