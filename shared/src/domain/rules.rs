//! The rules that turn synced data and an app's settings into what an admin acts on:
//! which seats count as inactive (threshold, grace period, exemptions, on call), the
//! app's headline summary, the tier hint. Pure functions.

use std::collections::BTreeMap;

use serde::Serialize;
use time::{Date, Duration, OffsetDateTime};

use crate::domain::catalog::{Downgrade, Pricing, Provider};
use crate::domain::metrics;
use crate::domain::rollup::DailyRollup;
use crate::domain::seat::{Seat, SeatStatus};
use crate::domain::settings::AppSettings;
use crate::domain::summary::{LicenseCost, Renewal, Summary};
use crate::domain::time::{day, parse_day, rfc3339};

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

/// A seat that could move to a cheaper license (the provider's [`Downgrade`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DowngradeHint {
    /// The cheaper license's name: the app's license containing the rule's `to`, or
    /// the rule's `to` where no seat holds one yet.
    pub to: String,
    /// The seat's price less the cheaper license's, per month; None unless both are
    /// priced (license prices, else the seat price) and the difference is positive.
    pub monthly_saving: Option<f64>,
}

/// The downgrade hint of a current, active seat: its license matches the rule's
/// `from`; it is not on call, exempt or in its grace period; and it has none of the
/// rule's responder features in the app's inactivity threshold (`last_response_on`).
/// An inactive seat gets none: it is reclaimable instead.
pub fn downgrade_hint(
    rule: &Downgrade,
    seat: &Seat,
    flags: &SeatFlags,
    settings: &AppSettings,
    today: Date,
    licenses: &[&str],
) -> Option<DowngradeHint> {
    let license = seat.license.as_deref()?;
    let fits = seat.status == SeatStatus::Active
        && license.contains(&rule.from)
        && seat.on_call.is_none()
        && flags.inactive == Some(false)
        && !flags.exempt
        && !flags.in_grace
        && metrics::is_inactive(
            seat.last_response_on.as_deref().and_then(parse_day),
            today,
            settings.inactive_days,
        );
    if !fits {
        return None;
    }
    let to = licenses
        .iter()
        .find(|l| l.contains(&rule.to))
        .map_or_else(|| rule.to.clone(), |l| (*l).to_string());
    let monthly_saving = settings
        .price_of(Some(license))
        .zip(settings.price_of(Some(&to)))
        .map(|(from, to)| cents(from - to))
        .filter(|s| *s > 0.0);
    Some(DowngradeHint { to, monthly_saving })
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
    let today = now.date();
    let by_license = if per_seat && provider.per_seat_activity {
        license_costs(&current, settings, today)
    } else {
        Vec::new()
    };
    // One price for every seat, or a price per license type: summed over the seats
    // (unknown as soon as one seat has no price).
    let (monthly_cost, potential_savings, cost_per_active_user) =
        if per_seat && !settings.license_prices.is_empty() {
            let sum = |f: fn(&LicenseCost) -> Option<f64>| {
                by_license.iter().map(f).sum::<Option<f64>>().map(cents)
            };
            let cost = sum(|l| l.monthly_cost);
            let per_active = cost
                .zip(active)
                .and_then(|(c, a)| (a > 0).then(|| cents(c / f64::from(a))));
            (cost, sum(|l| l.potential_savings), per_active)
        } else {
            (
                price.zip(seat_count).map(|(p, s)| cents(p * f64::from(s))),
                price.zip(inactive).map(|(p, i)| cents(p * f64::from(i))),
                price
                    .zip(seat_count)
                    .zip(active)
                    .and_then(|((p, s), a)| metrics::cost_per_active_user(p, s, a))
                    .map(cents),
            )
        };
    // The seats the provider's downgrade rule fits, and what moving them saves.
    let (downgradable_seats, downgrade_savings) = match &provider.downgrade {
        Some(rule) if provider.per_seat_activity => {
            let mut licenses: Vec<&str> = current
                .iter()
                .filter_map(|s| s.license.as_deref())
                .collect();
            licenses.sort_unstable();
            licenses.dedup();
            let hints: Vec<DowngradeHint> = current
                .iter()
                .filter_map(|s| {
                    let flags = seat_flags(s, settings, today, true);
                    downgrade_hint(rule, s, &flags, settings, today, &licenses)
                })
                .collect();
            let savings = hints.iter().map(|h| h.monthly_saving).sum::<Option<f64>>();
            (Some(hints.len() as u32), savings.map(cents))
        }
        _ => (None, None),
    };
    let months = f64::from(settings.billing_period.months());
    let renewal = settings.next_renewal(today).map(|date| Renewal {
        downgradable_seats,
        saving_if_downgraded: downgrade_savings.map(|s| cents(s * months)),
        date: day(date),
        billing_period: settings.billing_period,
        seats: seat_count,
        inactive_seats: inactive,
        monthly_cost,
        saving_if_reclaimed: potential_savings
            .map(|s| cents(s * f64::from(settings.billing_period.months()))),
    });
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
        monthly_cost,
        cost_per_active_user,
        potential_savings,
        computed_at: Some(rfc3339(now)),
        currency: Some(settings.currency.clone()),
        by_license,
        downgradable_seats,
        downgrade_savings,
        renewal,
    }
}

/// The current seats by license type, with what each type costs (license order;
/// seats without a license last).
fn license_costs(current: &[&Seat], settings: &AppSettings, today: Date) -> Vec<LicenseCost> {
    let mut by: BTreeMap<Option<&str>, LicenseCost> = BTreeMap::new();
    for seat in current {
        let license = seat.license.as_deref();
        let entry = by.entry(license).or_insert_with(|| LicenseCost {
            license: license.map(str::to_string),
            price: settings.price_of(license),
            ..LicenseCost::default()
        });
        entry.seats += 1;
        let last = seat.last_activity_on.as_deref().and_then(parse_day);
        if !metrics::is_inactive(last, today, metrics::MAU_DAYS as u32) {
            entry.active_30d += 1;
        }
        if seat_flags(seat, settings, today, true).inactive == Some(true) {
            entry.inactive_seats += 1;
        }
    }
    let mut out: Vec<LicenseCost> = by
        .into_values()
        .map(|mut l| {
            l.monthly_cost = l.price.map(|p| cents(p * f64::from(l.seats)));
            l.potential_savings = l.price.map(|p| cents(p * f64::from(l.inactive_seats)));
            l.cost_per_active_user = l
                .monthly_cost
                .and_then(|c| (l.active_30d > 0).then(|| cents(c / f64::from(l.active_30d))));
            l
        })
        .collect();
    // Seats without a license after the named ones.
    out.sort_by_key(|l| (l.license.is_none(), l.license.clone()));
    out
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
    use crate::domain::catalog::Catalog;
    use time::macros::{date, datetime};

    fn seat(id: &str, last: Option<&str>, first_seen: &str, added: bool) -> Seat {
        Seat::sample(id, last, first_seen, added)
    }

    #[test]
    fn a_full_seat_without_responder_actions_and_off_call_could_be_a_stakeholder() {
        let today = date!(2026 - 11 - 23);
        let rule = Catalog::load(|_| None)
            .unwrap()
            .get("pagerduty")
            .unwrap()
            .downgrade
            .clone()
            .expect("PagerDuty has a downgrade rule");
        let settings = AppSettings {
            license_prices: [
                ("Business (Full User)".to_string(), 41.0),
                ("Business (Stakeholder)".to_string(), 10.0),
            ]
            .into(),
            ..AppSettings::default()
        };
        let licenses = ["Business (Full User)", "Business (Stakeholder)"];
        let hint_under = |s: &Seat, settings: &AppSettings| {
            let flags = seat_flags(s, settings, today, true);
            downgrade_hint(&rule, s, &flags, settings, today, &licenses)
        };
        let hint = |s: &Seat| hint_under(s, &settings);
        let mut notes_only = seat("P1", Some("2026-11-20"), "2026-01-01T00:00:00Z", false);
        notes_only.license = Some("Business (Full User)".into());
        notes_only.last_response_on = Some("2026-09-01".into());
        assert_eq!(
            hint(&notes_only),
            Some(DowngradeHint {
                to: "Business (Stakeholder)".into(),
                monthly_saving: Some(31.0)
            })
        );
        // Responded inside the threshold (the 30 days ending today): no hint.
        let mut responder = notes_only.clone();
        responder.last_response_on = Some("2026-10-25".into());
        assert_eq!(hint(&responder), None);
        // Never responded at all: a hint.
        let mut never = notes_only.clone();
        never.last_response_on = None;
        assert!(hint(&never).is_some());
        // Inactive: reclaimable instead, no hint.
        let mut idle = notes_only.clone();
        idle.last_activity_on = Some("2026-09-01".into());
        assert_eq!(hint(&idle), None);
        // On call, whatever its activity: no hint.
        let mut on_call = notes_only.clone();
        on_call.on_call = Some(crate::domain::seat::OnCall {
            now: false,
            schedule: Some("Nights".into()),
            escalation_policy: "Ops".into(),
        });
        assert_eq!(hint(&on_call), None);
        // Already a stakeholder: no hint.
        let mut stakeholder = notes_only.clone();
        stakeholder.license = Some("Business (Stakeholder)".into());
        assert_eq!(hint(&stakeholder), None);
        // Unpriced: the hint without a saving.
        let unpriced = AppSettings::default();
        assert_eq!(
            hint_under(&notes_only, &unpriced).unwrap().monthly_saving,
            None
        );
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
    fn license_prices_cost_each_seat_and_a_renewal_saves_a_period_of_inactive_seats() {
        let c = Catalog::load(|_| None).unwrap();
        let pandadoc = c.get("pandadoc").unwrap();
        let now = datetime!(2026-11-23 12:00 UTC);
        let old = "2026-01-01T00:00:00Z";
        let licensed = |id: &str, last: Option<&str>, license: Option<&str>| Seat {
            license: license.map(str::to_string),
            ..seat(id, last, old, false)
        };
        let seats = vec![
            licensed("a", Some("2026-11-22"), Some("Creator")),
            licensed("b", None, Some("Creator")),
            licensed("c", Some("2026-11-20"), Some("Read-only")),
            licensed("d", Some("2026-08-01"), None),
        ];
        let settings = AppSettings {
            seat_price: Some(10.0),
            license_prices: [
                ("Creator".to_string(), 35.0),
                ("Read-only".to_string(), 0.0),
            ]
            .into(),
            billing_period: crate::domain::settings::BillingPeriod::Annual,
            renewal_date: Some("2025-12-31".into()),
            currency: "EUR".into(),
            ..AppSettings::default()
        };
        let s = summarize(pandadoc, None, None, &seats, &settings, now);
        // Creator 2 × 35 + Read-only 1 × 0 + no license 1 × the seat price 10.
        assert_eq!(s.monthly_cost, Some(80.0));
        // Inactive: b (Creator, never active) and d (no license, idle since August).
        assert_eq!(s.inactive_seats, Some(2));
        assert_eq!(s.potential_savings, Some(45.0));
        assert_eq!(s.currency.as_deref(), Some("EUR"));
        let names: Vec<Option<&str>> = s.by_license.iter().map(|l| l.license.as_deref()).collect();
        assert_eq!(names, [Some("Creator"), Some("Read-only"), None]);
        let creator = &s.by_license[0];
        assert_eq!(
            (creator.seats, creator.active_30d, creator.inactive_seats),
            (2, 1, 1)
        );
        assert_eq!(
            (
                creator.monthly_cost,
                creator.cost_per_active_user,
                creator.potential_savings
            ),
            (Some(70.0), Some(70.0), Some(35.0))
        );
        let renewal = s.renewal.unwrap();
        // 2025-12-31 moved forward by a year; a year of the inactive seats.
        assert_eq!(renewal.date, "2026-12-31");
        assert_eq!(renewal.saving_if_reclaimed, Some(45.0 * 12.0));
        // A license without a price and no seat price: the cost is unknown, not 0.
        let partial = AppSettings {
            seat_price: None,
            ..settings
        };
        let s = summarize(pandadoc, None, None, &seats, &partial, now);
        assert_eq!((s.monthly_cost, s.potential_savings), (None, None));
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
                ..AppSettings::default()
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
