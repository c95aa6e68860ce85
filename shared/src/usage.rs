//! What an admin decides per app (threshold, grace period, exemptions, seat price)
//! and the numbers that follow from it: which seats count as inactive, the app's
//! headline summary (stored, so the overview reads one item per app), the tier hint.
//! Pure functions here; `refresh_summary` is the one place that writes a summary.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime};

use crate::app::App;
use crate::audit::Admin;
use crate::catalog::{Pricing, Provider};
use crate::domain::{keys, parse_day, rfc3339, DailyRollup, Seat, SeatStatus};
use crate::error::{Error, Result};
use crate::metrics;

pub const DEFAULT_GRACE_DAYS: u32 = 14;
const MAX_EXEMPT_SEATS: usize = 1000;

/// The org's settings of one app. Stored as the app partition's SETTINGS item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSettings {
    /// A seat with no activity in this many days is inactive (the page offers 30/60/90).
    #[serde(deserialize_with = "whole_number")]
    pub inactive_days: u32,
    /// Seats added after the first import are not inactive for this many days.
    #[serde(deserialize_with = "whole_number")]
    pub grace_days: u32,
    /// Seat ids never counted as inactive (service accounts, executives …).
    pub exempt_seats: BTreeSet<String>,
    /// What the org pays per seat per month; costs stay unknown until it is set.
    pub seat_price: Option<f64>,
}

/// A whole number as JSON Schema's `integer` has it: `30` and `30.0` alike (the API
/// document promises that much); `30.5`, negatives and values past u32 are refused.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u32, D::Error> {
    struct Whole;
    impl serde::de::Visitor<'_> for Whole {
        type Value = u32;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<u32, E> {
            u32::try_from(v)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<u32, E> {
            u32::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<u32, E> {
            if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
                Ok(v as u32)
            } else {
                Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
            }
        }
    }
    d.deserialize_any(Whole)
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            inactive_days: crate::queries::DEFAULT_INACTIVE_DAYS,
            grace_days: DEFAULT_GRACE_DAYS,
            exempt_seats: BTreeSet::new(),
            seat_price: None,
        }
    }
}

impl AppSettings {
    /// Refuses values the page could not have meant, with a message saying which.
    pub fn validate(&self) -> Result<()> {
        let bad = |code: &'static str, m: &str| Err(Error::bad_request(code, m.to_string()));
        if !(1..=365).contains(&self.inactive_days) {
            return bad(
                "invalid_inactive_days",
                "inactive_days must be a number from 1 to 365",
            );
        }
        if self.grace_days > 365 {
            return bad(
                "invalid_grace_days",
                "grace_days must be a number from 0 to 365",
            );
        }
        if self.exempt_seats.len() > MAX_EXEMPT_SEATS {
            return bad("too_many_exemptions", "at most 1000 seats can be exempt");
        }
        if self
            .exempt_seats
            .iter()
            .any(|s| s.is_empty() || s.len() > 256)
        {
            return bad(
                "invalid_exempt_seat",
                "exempt_seats must hold seat ids (1 to 256 characters)",
            );
        }
        if let Some(p) = self.seat_price {
            if !p.is_finite() || !(0.0..=1_000_000.0).contains(&p) {
                return bad(
                    "invalid_seat_price",
                    "seat_price must be a number from 0 to 1000000 (per seat per month), or null",
                );
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SettingsItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    settings: AppSettings,
    updated_by: String,
    updated_at: String,
}

/// The stored settings of (org, provider), or the defaults.
pub async fn settings(app: &App, org: &str, provider: &str) -> Result<AppSettings> {
    Ok(app
        .store
        .get::<SettingsItem>(&keys::app(org, provider), keys::SETTINGS_SK)
        .await?
        .map(|i| i.settings)
        .unwrap_or_default())
}

/// Validates and stores the settings, then recomputes the app's summary with them.
pub async fn save_settings(
    app: &App,
    admin: &Admin,
    provider: &Provider,
    settings: AppSettings,
) -> Result<AppSettings> {
    let (org, user) = (admin.org.as_str(), admin.user.as_str());
    settings.validate()?;
    let old = self::settings(app, org, &provider.id).await?;
    let item = SettingsItem {
        pk: keys::app(org, &provider.id),
        sk: keys::SETTINGS_SK.to_string(),
        settings: settings.clone(),
        updated_by: user.to_string(),
        updated_at: rfc3339(app.config.clock.now()),
    };
    let value = |s: &AppSettings| {
        serde_json::to_value(s).map_err(|e| Error::internal("serializing settings", e))
    };
    let mut details = crate::audit::Details::new();
    details.insert("old".into(), value(&old)?);
    details.insert("new".into(), value(&settings)?);
    let write = app.store.put_write(&item).await?;
    app.store
        .commit(vec![write], &admin.audit().done(details))
        .await?;
    refresh_summary(app, org, provider, None, app.config.clock.now()).await?;
    Ok(settings)
}

/// How one seat counts under the settings on `today`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatFlags {
    /// None where the vendor reports no per-seat activity (unknown, not "active").
    /// Never true for a seat on call: whatever its activity, it is not reclaimable.
    pub inactive: Option<bool>,
    pub exempt: bool,
    pub in_grace: bool,
    /// On call (now, or on a schedule or escalation policy in the on-call window) with
    /// no activity in the threshold: "on call, quiet", shown instead of inactive.
    pub on_call_quiet: bool,
}

pub fn seat_flags(
    seat: &Seat,
    settings: &AppSettings,
    today: Date,
    per_seat_activity: bool,
) -> SeatFlags {
    let exempt = settings.exempt_seats.contains(&seat.seat_id);
    let in_grace = seat.added_after_import
        && parse_day(seat.first_seen_at.get(..10).unwrap_or_default()).is_some_and(|d| {
            today
                .checked_sub(Duration::days(i64::from(settings.grace_days)))
                .is_none_or(|since| d > since)
        });
    let last = seat.last_activity_on.as_deref().and_then(parse_day);
    let quiet = per_seat_activity && metrics::is_inactive(last, today, settings.inactive_days);
    let on_call = seat.on_call.is_some();
    SeatFlags {
        inactive: per_seat_activity.then_some(quiet && !exempt && !in_grace && !on_call),
        exempt,
        in_grace,
        on_call_quiet: on_call && quiet,
    }
}

/// The headline numbers of one app, as stored (SUMMARY item) and served.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The latest synced day (today's when the app synced today: its numbers are
    /// partial); seats are counted as of the sync that wrote it.
    pub as_of_date: Option<String>,
    /// The last complete UTC day (yesterday when the app synced today): the day
    /// `dau`, `active_30d`, `utilization_percent` and `cost_per_active_user` are
    /// for. None until a synced day is complete.
    #[serde(default)]
    pub headline_day: Option<String>,
    pub seats: Option<u32>,
    /// DAU of `headline_day`.
    pub dau: Option<u32>,
    /// MAU of `headline_day`: distinct seats active in the 30 days ending it.
    pub active_30d: Option<u32>,
    pub utilization_percent: Option<f64>,
    pub inactive_days: u32,
    /// Inactive under the settings (threshold, grace period, exemptions).
    pub inactive_seats: Option<u32>,
    pub seat_price: Option<f64>,
    /// seat_price × seats, per month.
    pub monthly_cost: Option<f64>,
    pub cost_per_active_user: Option<f64>,
    /// inactive_seats × seat_price, per month.
    pub potential_savings: Option<f64>,
    /// When these were computed.
    pub computed_at: Option<String>,
}

fn cents(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Whether a stored rollup covers its whole day (computed after its UTC midnight).
pub fn rollup_complete(r: &DailyRollup) -> bool {
    let as_of = OffsetDateTime::parse(&r.as_of, &time::format_description::well_known::Rfc3339);
    parse_day(&r.date)
        .zip(as_of.ok())
        .is_some_and(|(d, t)| metrics::day_complete(d, t))
}

/// The rollup the headline is of: the latest complete one among `newest_first`.
pub fn headline_rollup(newest_first: &[DailyRollup]) -> Option<&DailyRollup> {
    newest_first.iter().find(|r| rollup_complete(r))
}

/// The summary from the latest rollup (seats, as-of day), the headline rollup (the
/// last complete day: activity), the current seats and the settings.
pub fn summarize(
    provider: &Provider,
    latest: Option<&DailyRollup>,
    headline: Option<&DailyRollup>,
    seats: &[Seat],
    settings: &AppSettings,
    now: OffsetDateTime,
) -> Summary {
    let current: Vec<&Seat> = seats
        .iter()
        .filter(|s| s.status != SeatStatus::Removed)
        .collect();
    let seat_count = latest
        .map(|r| r.seats)
        .or_else(|| (!current.is_empty()).then_some(current.len() as u32));
    let active = headline.and_then(|r| r.mau);
    let inactive = provider.per_seat_activity.then(|| {
        current
            .iter()
            .filter(|s| seat_flags(s, settings, now.date(), true).inactive == Some(true))
            .count() as u32
    });
    let per_seat = provider.pricing == Pricing::PerSeat;
    let price = settings.seat_price.filter(|_| per_seat);
    Summary {
        as_of_date: latest.map(|r| r.date.clone()),
        headline_day: headline.map(|r| r.date.clone()),
        seats: seat_count,
        dau: headline.and_then(|r| r.dau),
        active_30d: active,
        utilization_percent: active
            .zip(seat_count)
            .and_then(|(a, s)| metrics::utilization_percent(a, s)),
        inactive_days: settings.inactive_days,
        inactive_seats: inactive,
        seat_price: price,
        monthly_cost: price.zip(seat_count).map(|(p, s)| cents(p * f64::from(s))),
        cost_per_active_user: price
            .zip(seat_count)
            .zip(active)
            .and_then(|((p, s), a)| metrics::cost_per_active_user(p, s, a))
            .map(cents),
        potential_savings: price.zip(inactive).map(|(p, i)| cents(p * f64::from(i))),
        computed_at: Some(rfc3339(now)),
    }
}

/// Seats per snapshot part: ~150 bytes of JSON each before gzip, far below
/// DynamoDB's 400 KB item limit even for long names.
const SEATS_PER_PART: usize = 1000;

/// One part of the seat-list snapshot: the app's current seats as gzipped JSON
/// (base64), written with the summary. Reading 10 of these is what makes the seat
/// list of a 10k-seat app fast; `version` (the summary's `computed_at`) keeps a
/// reader from mixing parts of two snapshots.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeatSnapshotPart {
    pub pk: String,
    pub sk: String,
    pub version: String,
    pub seats_gz: String,
}

pub fn snapshot_part_sk(part: u32) -> String {
    format!("{}{part:04}", keys::SEAT_SNAPSHOT_PREFIX)
}

fn encode_seats(seats: &[&Seat]) -> Result<String> {
    use base64::Engine as _;
    use std::io::Write as _;
    let json = serde_json::to_vec(seats).map_err(|e| Error::internal("encoding seats", e))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&json)
        .map_err(|e| Error::internal("compressing seats", e))?;
    let bytes = gz
        .finish()
        .map_err(|e| Error::internal("compressing seats", e))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn decode_seats(text: &str) -> Result<Vec<Seat>> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| Error::internal("reading a seat snapshot", e))?;
    serde_json::from_reader(flate2::read::GzDecoder::new(bytes.as_slice()))
        .map_err(|e| Error::internal("reading a seat snapshot", e))
}

/// The snapshot parts of `seats` (current ones only) at `version`.
pub fn snapshot_parts(pk: &str, seats: &[Seat], version: &str) -> Result<Vec<SeatSnapshotPart>> {
    let current: Vec<&Seat> = seats
        .iter()
        .filter(|s| s.status != SeatStatus::Removed)
        .collect();
    current
        .chunks(SEATS_PER_PART)
        .enumerate()
        .map(|(i, chunk)| {
            Ok(SeatSnapshotPart {
                pk: pk.to_string(),
                sk: snapshot_part_sk(i as u32),
                version: version.to_string(),
                seats_gz: encode_seats(chunk)?,
            })
        })
        .collect()
}

/// The seats of a snapshot, if all `parts` parts are there at `version`; None
/// (read the seat items instead) when a part is missing or from another snapshot.
pub fn seats_from_snapshot(
    mut parts: Vec<SeatSnapshotPart>,
    expected: u32,
    version: &str,
) -> Result<Option<Vec<Seat>>> {
    if parts.len() != expected as usize || parts.iter().any(|p| p.version != version) {
        return Ok(None);
    }
    parts.sort_by(|a, b| a.sk.cmp(&b.sk));
    let mut seats = Vec::new();
    for p in parts {
        seats.extend(decode_seats(&p.seats_gz)?);
    }
    Ok(Some(seats))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SummaryItem {
    pub pk: String,
    pub sk: String,
    #[serde(flatten)]
    pub summary: Summary,
    /// How many parts the seat-list snapshot written with this summary has (None
    /// before the first one): the seat list reads them instead of every seat item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat_snapshot_parts: Option<u32>,
}

/// Rollups read for the headline: a sync rewrites every day from its checkpoint's
/// day on, so only the latest one or two can be partial; a few more cost nothing.
const HEADLINE_LOOKBACK: i32 = 4;

/// Recomputes and stores the app's summary (after a sync and when settings change).
/// `seats`: the app's seats where the caller holds them already (a sync that just
/// wrote them); None reads them.
pub async fn refresh_summary(
    app: &App,
    org: &str,
    provider: &Provider,
    seats: Option<&[Seat]>,
    now: OffsetDateTime,
) -> Result<Summary> {
    let pk = keys::app(org, &provider.id);
    let read_seats = async {
        match seats {
            Some(_) => Ok(Vec::new()),
            None => app.store.query_prefix::<Seat>(&pk, keys::SEAT_PREFIX).await,
        }
    };
    // The latest rollups: today's (partial) and the last complete day's before it.
    let (latest, read, settings, before) = tokio::try_join!(
        app.store
            .last_n_with_prefix::<DailyRollup>(&pk, keys::ROLLUP_PREFIX, HEADLINE_LOOKBACK),
        read_seats,
        settings(app, org, &provider.id),
        app.store.get::<SummaryItem>(&pk, keys::SUMMARY_SK),
    )?;
    let seats = seats.unwrap_or(&read);
    let summary = summarize(
        provider,
        latest.first(),
        headline_rollup(&latest),
        seats,
        &settings,
        now,
    );
    // The snapshot first, then the summary that points at it: a reader sees the old
    // summary with the old parts, or parts that do not match it and reads the items.
    let version = summary.computed_at.clone().unwrap_or_default();
    let parts = snapshot_parts(&pk, seats, &version)?;
    app.store.put_all(&parts).await?;
    app.store
        .put(&SummaryItem {
            pk: pk.clone(),
            sk: keys::SUMMARY_SK.to_string(),
            summary: summary.clone(),
            seat_snapshot_parts: Some(parts.len() as u32),
        })
        .await?;
    // Parts the previous snapshot had beyond this one's.
    let old_parts = before.and_then(|b| b.seat_snapshot_parts).unwrap_or(0);
    for part in parts.len() as u32..old_parts {
        app.store.delete(&pk, &snapshot_part_sk(part)).await?;
    }
    Ok(summary)
}

/// A cheaper plan that covers every feature used, and the user count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierHint {
    pub tier: String,
    pub features_used: Vec<String>,
    pub message: String,
    pub source: String,
}

/// The first catalog tier whose features include every feature used (total > 0)
/// and whose user limit (if any) fits the active users. None when nothing was used.
pub fn tier_hint(
    provider: &Provider,
    feature_totals: &BTreeMap<String, u64>,
    active_users: Option<u32>,
    (from, to): (&str, &str),
) -> Option<TierHint> {
    let used: Vec<String> = feature_totals
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(f, _)| f.clone())
        .collect();
    if used.is_empty() {
        return None;
    }
    let tier = provider.tiers.iter().find(|t| {
        used.iter().all(|f| t.features.contains(f))
            && t.max_seats
                .is_none_or(|max| active_users.is_some_and(|a| a <= max))
    })?;
    let limit = tier
        .max_seats
        .map(|m| {
            format!(
                ", and its limit of {m} users fits your {} active users",
                active_users.unwrap_or(0)
            )
        })
        .unwrap_or_default();
    Some(TierHint {
        message: format!(
            "Every feature used from {from} to {to} ({}) is included in {}'s {} plan{limit}. \
             A cheaper plan may do; check the vendor's current plan terms.",
            used.join(", "),
            provider.name,
            tier.name
        ),
        tier: tier.name.clone(),
        features_used: used,
        source: tier.source.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use time::macros::{date, datetime};

    #[test]
    fn settings_take_whole_numbers_written_either_way_and_nothing_else() {
        let parse = |days: &str| {
            serde_json::from_str::<AppSettings>(&format!(
                r#"{{"inactive_days": {days}, "grace_days": 0.0, "exempt_seats": []}}"#
            ))
        };
        let s = parse("30.0").unwrap();
        assert_eq!((s.inactive_days, s.grace_days, s.seat_price), (30, 0, None));
        assert_eq!(parse("30").unwrap().inactive_days, 30);
        for bad in ["30.5", "-1", "4294967296", "1e10", "\"30\"", "null"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    fn seat(id: &str, last: Option<&str>, first_seen: &str, added: bool) -> Seat {
        Seat {
            pk: "p".into(),
            sk: format!("SEAT#{id}"),
            seat_id: id.into(),
            email: format!("{id}@x.example"),
            name: id.into(),
            role: "user".into(),
            license: None,
            status: SeatStatus::Active,
            first_seen_at: first_seen.into(),
            last_seen_at: first_seen.into(),
            last_activity_on: last.map(str::to_string),
            active_days_30: None,
            added_after_import: added,
            on_call: None,
        }
    }

    #[test]
    fn inactive_honours_threshold_grace_period_and_exemptions() {
        let today = date!(2026 - 11 - 23);
        let mut s = AppSettings::default();
        let old = "2026-01-01T00:00:00Z";
        let idle = seat("a", Some("2026-10-01"), old, false);
        let recent = seat("b", Some("2026-11-20"), old, false);
        let never = seat("c", None, old, false);
        let new_seat = seat("d", None, "2026-11-20T10:00:00Z", true);
        let imported_today = seat("e", None, "2026-11-20T10:00:00Z", false);
        let flag = |s: &Seat, set: &AppSettings| seat_flags(s, set, today, true).inactive;
        assert_eq!(flag(&idle, &s), Some(true));
        assert_eq!(flag(&recent, &s), Some(false));
        assert_eq!(flag(&never, &s), Some(true));
        assert_eq!(flag(&new_seat, &s), Some(false), "in its grace period");
        assert!(seat_flags(&new_seat, &s, today, true).in_grace);
        assert_eq!(
            flag(&imported_today, &s),
            Some(true),
            "first import: no grace"
        );
        s.inactive_days = 60;
        assert_eq!(flag(&idle, &s), Some(false), "53 days idle < 60");
        s.exempt_seats.insert("c".into());
        assert_eq!(flag(&never, &s), Some(false));
        assert!(seat_flags(&never, &s, today, true).exempt);
        s.grace_days = 0;
        assert_eq!(flag(&new_seat, &s), Some(true));
        assert_eq!(seat_flags(&idle, &s, today, false).inactive, None);
    }

    #[test]
    fn a_seat_on_call_is_never_inactive_and_shows_as_on_call_quiet_when_idle() {
        let today = date!(2026 - 11 - 23);
        let s = AppSettings::default();
        let old = "2026-01-01T00:00:00Z";
        let on_call = |mut seat: Seat, now: bool| {
            seat.on_call = Some(crate::domain::OnCall {
                now,
                schedule: Some("Payments Primary".into()),
                escalation_policy: "Checkout Escalation".into(),
            });
            seat
        };
        let flags = |seat: &Seat| seat_flags(seat, &s, today, true);
        // Never active, idle for 53 days, active 3 days ago: on call, none is inactive.
        for (seat, quiet) in [
            (seat("a", None, old, false), true),
            (seat("b", Some("2026-10-01"), old, false), true),
            (seat("c", Some("2026-11-20"), old, false), false),
        ] {
            assert_eq!(flags(&seat).inactive, Some(quiet), "off call");
            assert!(!flags(&seat).on_call_quiet);
            for now in [true, false] {
                let f = flags(&on_call(seat.clone(), now));
                assert_eq!(f.inactive, Some(false), "on call: never reclaimable");
                assert_eq!(f.on_call_quiet, quiet);
            }
        }
        // Exempt and on call: not inactive either way; still quiet.
        let mut exempt = s.clone();
        exempt.exempt_seats.insert("a".into());
        let f = seat_flags(
            &on_call(seat("a", None, old, false), false),
            &exempt,
            today,
            true,
        );
        assert_eq!(
            (f.inactive, f.exempt, f.on_call_quiet),
            (Some(false), true, true)
        );
        // Without per-seat activity nothing is known: neither inactive nor quiet.
        let f = seat_flags(
            &on_call(seat("a", None, old, false), true),
            &s,
            today,
            false,
        );
        assert_eq!((f.inactive, f.on_call_quiet), (None, false));
    }

    #[test]
    fn settings_out_of_range_are_client_errors() {
        let ok = AppSettings::default();
        assert!(ok.validate().is_ok());
        for bad in [
            AppSettings {
                inactive_days: 0,
                ..ok.clone()
            },
            AppSettings {
                grace_days: 400,
                ..ok.clone()
            },
            AppSettings {
                seat_price: Some(-1.0),
                ..ok.clone()
            },
            AppSettings {
                seat_price: Some(f64::NAN),
                ..ok.clone()
            },
            AppSettings {
                exempt_seats: [String::new()].into(),
                ..ok.clone()
            },
        ] {
            assert_eq!(bad.validate().unwrap_err().status(), 400, "{bad:?}");
        }
    }

    #[test]
    fn summary_costs_follow_the_definitions() {
        let c = Catalog::load(|_| None).unwrap();
        let pd = c.get("pagerduty").unwrap();
        let now = datetime!(2026-11-23 12:00 UTC);
        let old = "2026-01-01T00:00:00Z";
        let seats = vec![
            seat("a", Some("2026-11-22"), old, false),
            seat("b", Some("2026-11-01"), old, false),
            seat("c", None, old, false),
            seat("d", Some("2026-09-01"), old, false),
        ];
        let rollup = DailyRollup {
            pk: "p".into(),
            sk: "ROLLUP#2026-11-22".into(),
            date: "2026-11-22".into(),
            seats: 4,
            dau: Some(1),
            wau: Some(1),
            mau: Some(2),
            features: BTreeMap::new(),
            as_of: "2026-11-23T12:00:00Z".into(),
        };
        // Today's, partial: 0 so far.
        let today = DailyRollup {
            sk: "ROLLUP#2026-11-23".into(),
            date: "2026-11-23".into(),
            dau: Some(0),
            mau: Some(1),
            ..rollup.clone()
        };
        let newest_first = [today.clone(), rollup.clone()];
        assert!(!rollup_complete(&today) && rollup_complete(&rollup));
        let headline = headline_rollup(&newest_first);
        assert_eq!(headline.map(|r| r.date.as_str()), Some("2026-11-22"));
        let settings = AppSettings {
            seat_price: Some(21.0),
            ..AppSettings::default()
        };
        let s = summarize(pd, Some(&today), headline, &seats, &settings, now);
        assert_eq!(s.as_of_date.as_deref(), Some("2026-11-23"));
        assert_eq!(s.headline_day.as_deref(), Some("2026-11-22"));
        assert_eq!(s.dau, Some(1), "the last complete day's, not today's 0");
        assert_eq!(s.seats, Some(4));
        assert_eq!(s.active_30d, Some(2));
        assert_eq!(s.utilization_percent, Some(50.0));
        assert_eq!(s.inactive_seats, Some(2));
        assert_eq!(s.monthly_cost, Some(84.0));
        assert_eq!(s.cost_per_active_user, Some(42.0));
        assert_eq!(s.potential_savings, Some(42.0));
        let unpriced = summarize(
            pd,
            Some(&rollup),
            Some(&rollup),
            &seats,
            &AppSettings::default(),
            now,
        );
        assert_eq!(
            (
                unpriced.monthly_cost,
                unpriced.cost_per_active_user,
                unpriced.potential_savings
            ),
            (None, None, None)
        );
        // Usage-priced apps never get seat costs, and inactive stays unknown.
        let sg = c.get("sendgrid").unwrap();
        let s = summarize(sg, None, None, &seats, &settings, now);
        assert_eq!(
            (s.seat_price, s.inactive_seats, s.seats),
            (None, None, Some(4))
        );
        // Only today synced so far: no complete day, no headline activity.
        let first = [today.clone()];
        let s = summarize(
            pd,
            Some(&today),
            headline_rollup(&first),
            &seats,
            &settings,
            now,
        );
        assert_eq!((s.headline_day, s.dau, s.active_30d), (None, None, None));
        assert_eq!(s.as_of_date.as_deref(), Some("2026-11-23"));
    }

    #[test]
    fn seat_snapshots_round_trip_in_parts_and_refuse_mixed_versions() {
        let old = "2026-01-01T00:00:00Z";
        let mut seats: Vec<Seat> = (0..2500)
            .map(|i| seat(&format!("P{i:05}"), Some("2026-11-20"), old, false))
            .collect();
        seats[7].status = SeatStatus::Removed;
        let parts = snapshot_parts("pk", &seats, "v1").unwrap();
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.seats_gz.len() < 100_000));
        let mut shuffled = parts.clone();
        shuffled.reverse();
        let back = seats_from_snapshot(shuffled, 3, "v1").unwrap().unwrap();
        let current: Vec<Seat> = seats
            .iter()
            .filter(|s| s.status != SeatStatus::Removed)
            .cloned()
            .collect();
        assert_eq!(back, current);
        assert!(seats_from_snapshot(parts.clone(), 4, "v1")
            .unwrap()
            .is_none());
        assert!(seats_from_snapshot(parts.clone(), 3, "v2")
            .unwrap()
            .is_none());
        let mut mixed = parts;
        mixed[1].version = "v0".into();
        assert!(seats_from_snapshot(mixed, 3, "v1").unwrap().is_none());
    }

    #[test]
    fn tier_hint_needs_every_used_feature_and_the_user_limit() {
        let c = Catalog::load(|_| None).unwrap();
        let pd = c.get("pagerduty").unwrap();
        let range = ("2026-08-25", "2026-11-23");
        let used = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
            pairs.iter().map(|(f, n)| (f.to_string(), *n)).collect()
        };
        let hint = tier_hint(
            pd,
            &used(&[("acknowledge", 4), ("note", 0)]),
            Some(3),
            range,
        )
        .unwrap();
        assert_eq!(hint.tier, "Free");
        assert_eq!(hint.features_used, vec!["acknowledge".to_string()]);
        assert!(hint.message.contains("acknowledge"), "{}", hint.message);
        assert!(tier_hint(pd, &used(&[("acknowledge", 4)]), Some(25), range).is_none());
        assert!(tier_hint(pd, &used(&[("note", 1)]), Some(2), range).is_none());
        assert!(tier_hint(pd, &used(&[]), Some(2), range).is_none());
        let pandadoc = c.get("pandadoc").unwrap();
        assert!(tier_hint(pandadoc, &used(&[("document_sent", 1)]), Some(1), range).is_none());
    }

    proptest::proptest! {
        #[test]
        fn any_settings_are_valid_or_a_client_error_and_never_panic_later(
            inactive_days in proptest::prelude::any::<u32>(),
            grace_days in proptest::prelude::any::<u32>(),
            seat_price in proptest::option::of(proptest::prelude::any::<f64>()),
            exempt in proptest::collection::btree_set(".{0,300}", 0..4),
            today_julian in proptest::prelude::any::<i32>(),
        ) {
            let settings = AppSettings {
                inactive_days,
                grace_days,
                exempt_seats: exempt,
                seat_price,
            };
            match settings.validate() {
                Ok(()) => {
                    proptest::prop_assert!((1..=365).contains(&settings.inactive_days));
                    proptest::prop_assert!(settings.grace_days <= 365);
                    proptest::prop_assert!(settings.seat_price.is_none_or(|p| p.is_finite() && p >= 0.0));
                }
                Err(e) => proptest::prop_assert_eq!(e.status(), 400),
            }
            // The flags are computed from stored settings too: no day arithmetic panics.
            let today = Date::from_julian_day(today_julian).unwrap_or(Date::MIN);
            let s = seat("P1", Some("2026-11-01"), "2026-11-01T00:00:00Z", true);
            let _ = seat_flags(&s, &settings, today, true);
        }

        #[test]
        fn any_settings_body_parses_or_is_refused(body in proptest::prelude::any::<String>(), n in proptest::prelude::any::<i128>(), x in proptest::prelude::any::<f64>()) {
            let _ = serde_json::from_str::<AppSettings>(&body);
            let json = format!(r#"{{"inactive_days": {n}, "grace_days": {n}, "exempt_seats": [], "seat_price": {x}}}"#);
            if let Ok(settings) = serde_json::from_str::<AppSettings>(&json) {
                if let Err(e) = settings.validate() {
                    proptest::prop_assert_eq!(e.status(), 400);
                }
            }
        }
    }
}
