//! CSV exports of what the app page shows: seats, inactive seats, daily trends.
//! Written with the `csv` crate (quoting, embedded commas and newlines).

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::queries::{DailyPoint, SeatView};

pub const SEAT_COLUMNS: [&str; 10] = [
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
];

fn finish(w: csv::Writer<Vec<u8>>) -> Result<String> {
    let bytes = w
        .into_inner()
        .map_err(|e| Error::internal("writing a CSV", e.into_error()))?;
    String::from_utf8(bytes).map_err(|e| Error::internal("writing a CSV", e))
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
            s.email.clone(),
            s.name.clone(),
            s.role.clone(),
            opt(&s.license),
            status.to_string(),
            opt(&s.last_activity_on),
            opt(&s.active_days_30),
            opt(&s.inactive),
            s.exempt.to_string(),
            s.in_grace.to_string(),
        ])
        .map_err(err)?;
    }
    finish(w)
}

/// One row per day: date, seats, dau, wau, mau, then each account metric by name.
pub fn trends_csv(daily: &[DailyPoint]) -> Result<String> {
    let metrics: BTreeSet<&str> = daily
        .iter()
        .flat_map(|d| d.account.keys().map(String::as_str))
        .collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::internal("writing a CSV", e);
    let mut header = vec!["date", "seats", "dau", "wau", "mau"];
    header.extend(metrics.iter().copied());
    w.write_record(&header).map_err(err)?;
    for d in daily {
        let mut row = vec![
            d.date.clone(),
            d.seats.to_string(),
            opt(&d.dau),
            opt(&d.wau),
            opt(&d.mau),
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
        };
        let csv = seats_csv(&[seat]).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next().unwrap(), SEAT_COLUMNS.join(","));
        assert_eq!(
            lines.next().unwrap(),
            r#"a@x.example,"Doe, Jane ""JD""",admin,,active,2026-11-20,3,,false,true"#
        );
    }

    #[test]
    fn trends_csv_adds_a_column_per_account_metric() {
        let point = |date: &str, account: &[(&str, u64)]| DailyPoint {
            date: date.into(),
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
        let csv = trends_csv(&[
            point("2026-11-01", &[("emails_requested", 5)]),
            point("2026-11-02", &[("emails_delivered", 2)]),
        ])
        .unwrap();
        assert_eq!(
            csv,
            "date,seats,dau,wau,mau,emails_delivered,emails_requested\n\
             2026-11-01,4,,,,,5\n2026-11-02,4,,,,2,\n"
        );
    }
}
