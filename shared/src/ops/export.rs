//! CSV exports of what the app page shows: seats, inactive seats, daily trends; and
//! of the audit trail (the Activity page).
//! Written with the `csv` crate (quoting, embedded commas and newlines). Text
//! that comes from a vendor (names, emails, roles, licenses, metric names) is
//! neutralized against formula injection the OWASP way; numbers, dates and our
//! own words go out unchanged.

use std::borrow::Cow;
use std::collections::BTreeSet;

use crate::domain::audit::ActorKind;
use crate::domain::settings::BillingPeriod;
use crate::domain::Role;
use crate::error::{Error, Result};
use crate::ops::audit_trail::AuditView;
use crate::ops::queries::{DailyPoint, RenewalView, SeatView};

pub const SEAT_COLUMNS: [&str; 14] = [
    "email",
    "name",
    "role",
    "license",
    "status",
    "last_activity_on",
    "active_days_30",
    "inactive",
    "exempt",
    "in_grace",
    "on_call",
    "on_call_schedule",
    "downgrade_to",
    "downgrade_monthly_saving",
];

/// The `on_call` cell: `on call, quiet` (on call, no activity in the threshold),
/// `on call`, or empty (not on call).
pub fn on_call_label(on_call: Option<&crate::ops::queries::OnCallView>) -> &'static str {
    match on_call {
        Some(o) if o.quiet => "on call, quiet",
        Some(_) => "on call",
        None => "",
    }
}

/// The `on_call_schedule` cell: the schedule's name, or the escalation policy's where
/// the seat is its direct target.
pub fn on_call_schedule(on_call: Option<&crate::ops::queries::OnCallView>) -> &str {
    on_call.map_or("", |o| {
        o.schedule.as_deref().unwrap_or(&o.escalation_policy)
    })
}

fn finish(w: csv::Writer<Vec<u8>>) -> Result<String> {
    let bytes = w
        .into_inner()
        .map_err(|e| Error::internal("writing a CSV", e.into_error()))?;
    String::from_utf8(bytes).map_err(|e| Error::internal("writing a CSV", e))
}

/// A text cell a spreadsheet must not read as a formula: one starting with
/// `=`, `+`, `-`, `@`, TAB or CR gets a leading `'` (OWASP CSV injection).
pub fn text_cell(s: &str) -> Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_default()
}

/// One row per seat, columns as `SEAT_COLUMNS`; an unknown value is an empty cell.
pub fn seats_csv(seats: &[SeatView]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::internal("writing a CSV", e);
    w.write_record(SEAT_COLUMNS).map_err(err)?;
    for s in seats {
        let status = match s.status {
            crate::domain::SeatStatus::Active => "active",
            crate::domain::SeatStatus::Invited => "invited",
            crate::domain::SeatStatus::Removed => "removed",
        };
        w.write_record([
            text_cell(&s.email).into_owned(),
            text_cell(&s.name).into_owned(),
            text_cell(&s.role).into_owned(),
            text_cell(&opt(&s.license)).into_owned(),
            status.to_string(),
            opt(&s.last_activity_on),
            opt(&s.active_days_30),
            opt(&s.inactive),
            s.exempt.to_string(),
            s.in_grace.to_string(),
            on_call_label(s.on_call.as_ref()).to_string(),
            text_cell(on_call_schedule(s.on_call.as_ref())).into_owned(),
            text_cell(s.downgrade.as_ref().map_or("", |d| d.to.as_str())).into_owned(),
            opt(&s.downgrade.as_ref().and_then(|d| d.monthly_saving)),
        ])
        .map_err(err)?;
    }
    finish(w)
}

pub const AUDIT_COLUMNS: [&str; 11] = [
    "at",
    "action",
    "app",
    "outcome",
    "actor_kind",
    "actor",
    "actor_email",
    "actor_role",
    "error_code",
    "request_id",
    "details",
];

/// One row per audit entry, newest first; `details` as compact JSON. Every text
/// cell is neutralized: subjects, emails and details come from tokens and vendors.
pub fn audit_csv(entries: &[AuditView]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::internal("writing a CSV", e);
    w.write_record(AUDIT_COLUMNS).map_err(err)?;
    for e in entries {
        let kind = match e.actor.kind {
            ActorKind::Member => "member",
            ActorKind::Invitee => "invitee",
        };
        let role = match e.actor.role {
            Some(Role::Admin) => "admin",
            Some(Role::Viewer) => "viewer",
            None => "",
        };
        let details =
            serde_json::to_string(&e.details).map_err(|x| Error::internal("writing a CSV", x))?;
        w.write_record([
            e.at.clone(),
            e.action.as_str().to_string(),
            opt(&e.app),
            e.outcome.as_str().to_string(),
            kind.to_string(),
            text_cell(&e.actor.subject).into_owned(),
            text_cell(&opt(&e.actor.email)).into_owned(),
            role.to_string(),
            opt(&e.error_code),
            text_cell(&e.request_id).into_owned(),
            text_cell(&details).into_owned(),
        ])
        .map_err(err)?;
    }
    finish(w)
}

/// The renewals CSV's columns.
pub const RENEWAL_COLUMNS: [&str; 12] = [
    "app",
    "renewal_date",
    "days_until",
    "billing_period",
    "seats",
    "inactive_seats",
    "monthly_cost",
    "saving_if_reclaimed",
    "currency",
    "provider",
    "downgradable_seats",
    "saving_if_downgraded",
];

/// The overview's renewals (the next 90 days), soonest first.
pub fn renewals_csv(renewals: &[RenewalView]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let failed = |e| Error::internal("writing CSV", e);
    w.write_record(RENEWAL_COLUMNS).map_err(failed)?;
    for r in renewals {
        let period = match r.renewal.billing_period {
            BillingPeriod::Monthly => "monthly",
            BillingPeriod::Annual => "annual",
        };
        w.write_record([
            text_cell(&r.name).into_owned(),
            r.renewal.date.clone(),
            r.days_until.to_string(),
            period.to_string(),
            opt(&r.renewal.seats),
            opt(&r.renewal.inactive_seats),
            opt(&r.renewal.monthly_cost),
            opt(&r.renewal.saving_if_reclaimed),
            opt(&r.currency),
            r.provider.clone(),
            opt(&r.renewal.downgradable_seats),
            opt(&r.renewal.saving_if_downgraded),
        ])
        .map_err(failed)?;
    }
    finish(w)
}

/// The trends CSV's columns before the account metrics.
pub const TREND_COLUMNS: [&str; 6] = ["date", "seats", "dau", "wau", "mau", "partial"];

/// One row per day of `days`: date, seats, dau, wau, mau, partial (true for a day
/// not over when computed: today so far), then each account metric by name. A day
/// without a point in `daily` (no synced data) is a row of empty cells, never 0s.
pub fn trends_csv(days: &[time::Date], daily: &[DailyPoint]) -> Result<String> {
    let metrics: BTreeSet<&str> = daily
        .iter()
        .flat_map(|d| d.account.keys().map(String::as_str))
        .collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::internal("writing a CSV", e);
    let mut header: Vec<Cow<'_, str>> = TREND_COLUMNS.into_iter().map(Cow::Borrowed).collect();
    header.extend(metrics.iter().map(|m| text_cell(m)));
    w.write_record(header.iter().map(|h| h.as_bytes()))
        .map_err(err)?;
    let by_date: std::collections::HashMap<&str, &DailyPoint> =
        daily.iter().map(|d| (d.date.as_str(), d)).collect();
    for date in days {
        let date = crate::domain::day(*date);
        let Some(d) = by_date.get(date.as_str()) else {
            let mut row = vec![date];
            row.resize(TREND_COLUMNS.len() + metrics.len(), String::new());
            w.write_record(&row).map_err(err)?;
            continue;
        };
        let mut row = vec![
            date,
            d.seats.to_string(),
            opt(&d.dau),
            opt(&d.wau),
            opt(&d.mau),
            d.partial.to_string(),
        ];
        row.extend(
            metrics
                .iter()
                .map(|m| d.account.get(*m).map(u64::to_string).unwrap_or_default()),
        );
        w.write_record(&row).map_err(err)?;
    }
    finish(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SeatStatus;
    use std::collections::BTreeMap;
    use time::macros::date;

    #[test]
    fn seats_csv_quotes_and_leaves_unknowns_empty() {
        let seat = SeatView {
            id: "P1".into(),
            email: "a@x.example".into(),
            name: "Doe, Jane \"JD\"".into(),
            role: "admin".into(),
            license: None,
            status: SeatStatus::Active,
            first_seen_at: "2026-01-01T00:00:00Z".into(),
            last_activity_on: Some("2026-11-20".into()),
            active_days_30: Some(3),
            inactive: None,
            exempt: false,
            in_grace: true,
            on_call: None,
            downgrade: None,
        };
        let mut quiet = seat.clone();
        quiet.inactive = Some(false);
        quiet.on_call = Some(crate::ops::queries::OnCallView {
            now: false,
            schedule: None,
            escalation_policy: "=Platform, Escalation".into(),
            quiet: true,
        });
        let csv = seats_csv(&[seat, quiet]).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next().unwrap(), SEAT_COLUMNS.join(","));
        assert_eq!(
            lines.next().unwrap(),
            r#"a@x.example,"Doe, Jane ""JD""",admin,,active,2026-11-20,3,,false,true,,,,"#
        );
        assert_eq!(
            lines.next().unwrap(),
            r#"a@x.example,"Doe, Jane ""JD""",admin,,active,2026-11-20,3,false,false,true,"on call, quiet","'=Platform, Escalation",,"#
        );
    }

    fn seat(email: &str, name: &str, role: &str, license: Option<&str>) -> SeatView {
        SeatView {
            id: "P1".into(),
            email: email.into(),
            name: name.into(),
            role: role.into(),
            license: license.map(str::to_string),
            status: SeatStatus::Active,
            first_seen_at: "2026-01-01T00:00:00Z".into(),
            last_activity_on: Some("2026-11-20".into()),
            active_days_30: Some(3),
            inactive: Some(false),
            exempt: false,
            in_grace: false,
            on_call: None,
            downgrade: None,
        }
    }

    #[test]
    fn every_formula_lead_character_is_neutralized_in_text_cells() {
        for lead in ['=', '+', '-', '@', '\t', '\r'] {
            let hostile = format!("{lead}HYPERLINK(\"http://evil.example\",\"x\")");
            let csv = seats_csv(&[seat(&hostile, &hostile, &hostile, Some(&hostile))]).unwrap();
            let mut r = csv::Reader::from_reader(csv.as_bytes());
            let row = r.records().next().unwrap().unwrap();
            for col in 0..4 {
                assert_eq!(row[col], format!("'{hostile}"), "{lead:?} in column {col}");
            }
            // Our own cells are left alone.
            assert_eq!(&row[4], "active");
            assert_eq!(&row[5], "2026-11-20");
            assert_eq!(&row[6], "3");
        }
        assert_eq!(text_cell("Jane Doe"), "Jane Doe");
        assert_eq!(text_cell("a=b"), "a=b");
        assert_eq!(text_cell(""), "");
        assert_eq!(text_cell("=1+1"), "'=1+1");
        assert_eq!(text_cell("-1"), "'-1");
        assert_eq!(text_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(text_cell("+1"), "'+1");
        assert_eq!(text_cell("\t=1"), "'\t=1");
        assert_eq!(text_cell("\r=1"), "'\r=1");
    }

    #[test]
    fn metric_names_are_text_cells_and_counts_stay_numbers() {
        let csv = trends_csv(
            &[date!(2026 - 11 - 01)],
            &[DailyPoint {
                date: "2026-11-01".into(),
                partial: false,
                seats: 4,
                dau: Some(0),
                wau: None,
                mau: None,
                account: BTreeMap::from([("=cmd".to_string(), 7)]),
                as_of: "t".into(),
            }],
        )
        .unwrap();
        assert_eq!(
            csv,
            "date,seats,dau,wau,mau,partial,'=cmd\n2026-11-01,4,0,,,false,7\n"
        );
    }

    #[test]
    fn trends_csv_adds_a_column_per_account_metric() {
        let point = |date: &str, account: &[(&str, u64)]| DailyPoint {
            date: date.into(),
            partial: date == "2026-11-03",
            seats: 4,
            dau: None,
            wau: None,
            mau: None,
            account: account
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<BTreeMap<_, _>>(),
            as_of: "t".into(),
        };
        // Oct 31 has no synced data: a row of empty cells. Nov 3 is today, partial.
        let days =
            crate::domain::metrics::days_between(date!(2026 - 10 - 31), date!(2026 - 11 - 03));
        let csv = trends_csv(
            &days,
            &[
                point("2026-11-01", &[("emails_requested", 5)]),
                point("2026-11-02", &[("emails_delivered", 2)]),
                point("2026-11-03", &[("emails_requested", 0)]),
            ],
        )
        .unwrap();
        assert_eq!(
            csv,
            "date,seats,dau,wau,mau,partial,emails_delivered,emails_requested\n\
             2026-10-31,,,,,,,\n\
             2026-11-01,4,,,,false,,5\n2026-11-02,4,,,,false,2,\n2026-11-03,4,,,,true,,0\n"
        );
    }
}
