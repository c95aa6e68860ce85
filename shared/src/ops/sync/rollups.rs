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

/// The day counts of the last days written, kept in memory as a run writes its
/// windows in order, so each window's rollups (which need the 29 days before it) and
/// the seats' active days read the store once per run instead of once per window.
#[derive(Default)]
pub(super) struct RecentDays {
    /// Every day in `[from, until)` is held (a day without activity as no entry).
    covered: Option<(Date, Date)>,
    days: BTreeMap<Date, Vec<SeatDay>>,
}

impl RecentDays {
    /// The counts of the days in `[from, until)`: from memory when it holds them all,
    /// else from the store (and then held).
    pub(super) async fn between(
        &mut self,
        data: &AppData<'_>,
        from: Date,
        until: Date,
    ) -> Result<Vec<SeatDay>> {
        match self.covered {
            Some((f, u)) if f <= from && until <= u => {}
            _ => {
                let stored = data.seat_days(from, until).await?;
                self.days.clear();
                for d in stored {
                    if let Some(date) = parse_day(&d.date) {
                        self.days.entry(date).or_default().push(d);
                    }
                }
                self.covered = Some((from, until));
            }
        }
        Ok(self
            .days
            .range(from..until)
            .flat_map(|(_, v)| v.iter().cloned())
            .collect())
    }

    /// A window's days `days` (consecutive), just written with `counts`: held, and
    /// only the last [`metrics::MAU_DAYS`] days kept.
    pub(super) fn written(&mut self, days: &[Date], counts: &[SeatDay]) {
        let (Some(&first), Some(&last)) = (days.first(), days.last()) else {
            return;
        };
        let until = last + Duration::days(1);
        self.covered = match self.covered {
            // Contiguous with what is held: the held range grows.
            Some((f, u)) if u >= first && f <= first => Some((f, until.max(u))),
            _ => {
                self.days.clear();
                Some((first, until))
            }
        };
        for date in days {
            self.days.remove(date);
        }
        for c in counts {
            if let Some(date) = parse_day(&c.date).filter(|d| days.contains(d)) {
                self.days.entry(date).or_default().push(c.clone());
            }
        }
        let keep_from = until - Duration::days(metrics::MAU_DAYS);
        if let Some((f, u)) = self.covered {
            let f = f.max(keep_from);
            self.covered = Some((f, u));
            self.days = self.days.split_off(&f);
        }
    }
}

/// Each seat's last day with any activity, and with a responder action (the
/// provider's downgrade rule's features), as windows are written.
#[derive(Default)]
pub(super) struct LastDays {
    /// The features that count as responding (empty: none is tracked).
    pub(super) responder_features: Vec<String>,
    any: HashMap<String, Date>,
    response: HashMap<String, Date>,
}

impl LastDays {
    pub(super) fn responding_by(features: &[String]) -> LastDays {
        LastDays {
            responder_features: features.to_vec(),
            ..LastDays::default()
        }
    }

    /// Takes in a window's (or stored) day counts.
    pub(super) fn note(&mut self, days: &[SeatDay]) {
        for d in days.iter().filter(|d| d.total > 0) {
            let Some(date) = parse_day(&d.date) else {
                continue;
            };
            let e = self.any.entry(d.seat_id.clone()).or_insert(date);
            *e = (*e).max(date);
            let responded = self
                .responder_features
                .iter()
                .any(|f| d.features.get(f).is_some_and(|n| *n > 0));
            if responded {
                let e = self.response.entry(d.seat_id.clone()).or_insert(date);
                *e = (*e).max(date);
            }
        }
    }
}

/// At the end of a sync: each seat's last active day (`latest`, from the windows this
/// run wrote, plus the stored days from `pending_from` up to `written_from` that an
/// earlier part of the sync wrote) and its active days in the 30 days ending `today`,
/// in memory: the sync writes its seats once, when it finishes.
pub(super) async fn update_seat_activity(
    data: &AppData<'_>,
    recent: &mut RecentDays,
    seats: &mut [Seat],
    mut latest: LastDays,
    (pending_from, written_from): (Date, Date),
    today: Date,
) -> Result<()> {
    if pending_from < written_from {
        latest.note(&data.seat_days(pending_from, written_from).await?);
    }
    let from = today - Duration::days(metrics::MAU_DAYS - 1);
    let days = recent
        .between(data, from, today + Duration::days(1))
        .await?;
    let mut active: HashMap<&str, u32> = HashMap::new();
    for d in days.iter().filter(|d| d.total > 0) {
        *active.entry(d.seat_id.as_str()).or_default() += 1;
    }
    for seat in seats.iter_mut() {
        let later = |stored: &Option<String>, seen: Option<&Date>| match seen {
            Some(&date)
                if stored
                    .as_deref()
                    .and_then(parse_day)
                    .is_none_or(|b| b < date) =>
            {
                Some(day(date))
            }
            _ => stored.clone(),
        };
        seat.last_activity_on = later(&seat.last_activity_on, latest.any.get(&seat.seat_id));
        seat.last_response_on = later(&seat.last_response_on, latest.response.get(&seat.seat_id));
        if seat.status != SeatStatus::Removed {
            seat.active_days_30 = Some(active.get(seat.seat_id.as_str()).copied().unwrap_or(0));
        }
    }
    Ok(())
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
    recent: &mut RecentDays,
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
    let earlier: Vec<SeatDay> = recent.between(data, lookback_from, *first).await?;
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
