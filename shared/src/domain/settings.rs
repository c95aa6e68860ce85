//! What an admin decides per app: the inactivity threshold, the grace period for new
//! seats, exemptions, prices (one per seat, or per license type), the billing period,
//! the renewal date and the currency, with their limits.

use std::collections::{BTreeMap, BTreeSet};

use time::Date;

use crate::domain::time::parse_day;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The inactivity threshold until an admin sets one (the page offers 30/60/90).
pub const DEFAULT_INACTIVE_DAYS: u32 = 30;
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
    /// What the org pays per seat per month for a license type (the vendor's name for
    /// it, as the seat list shows it); a license without one costs `seat_price`.
    #[serde(default)]
    pub license_prices: BTreeMap<String, f64>,
    /// How the contract is billed and renews: the prices above stay per month.
    #[serde(default)]
    pub billing_period: BillingPeriod,
    /// A renewal date of the contract (YYYY-MM-DD): the next one is this date moved
    /// forward by whole billing periods.
    #[serde(default)]
    pub renewal_date: Option<String>,
    /// The prices' currency (ISO 4217 code).
    #[serde(default = "default_currency")]
    pub currency: String,
}

/// How a contract is billed and renews.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingPeriod {
    #[default]
    Monthly,
    Annual,
}

impl BillingPeriod {
    /// Months one period pays for.
    pub fn months(self) -> u32 {
        match self {
            BillingPeriod::Monthly => 1,
            BillingPeriod::Annual => 12,
        }
    }
}

pub const DEFAULT_CURRENCY: &str = "USD";

fn default_currency() -> String {
    DEFAULT_CURRENCY.to_string()
}

/// Prices are at most this much per seat per month.
const MAX_PRICE: f64 = 1_000_000.0;
const MAX_LICENSE_PRICES: usize = 50;

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
            inactive_days: DEFAULT_INACTIVE_DAYS,
            grace_days: DEFAULT_GRACE_DAYS,
            exempt_seats: BTreeSet::new(),
            seat_price: None,
            license_prices: BTreeMap::new(),
            billing_period: BillingPeriod::Monthly,
            renewal_date: None,
            currency: default_currency(),
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
        let price_ok = |p: f64| p.is_finite() && (0.0..=MAX_PRICE).contains(&p);
        if self.seat_price.is_some_and(|p| !price_ok(p)) {
            return bad(
                "invalid_seat_price",
                "seat_price must be a number from 0 to 1000000 (per seat per month), or null",
            );
        }
        if self.license_prices.len() > MAX_LICENSE_PRICES
            || self
                .license_prices
                .iter()
                .any(|(l, p)| l.trim().is_empty() || l.len() > 128 || !price_ok(*p))
        {
            return bad(
                "invalid_license_prices",
                "license_prices maps up to 50 license names (1 to 128 characters) to a number \
                 from 0 to 1000000 (per seat per month)",
            );
        }
        if self
            .renewal_date
            .as_deref()
            .is_some_and(|d| parse_day(d).is_none())
        {
            return bad(
                "invalid_renewal_date",
                "renewal_date must be a date (YYYY-MM-DD), or null",
            );
        }
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return bad(
                "invalid_currency",
                "currency must be an ISO 4217 code of three capital letters, e.g. USD or EUR",
            );
        }
        Ok(())
    }

    /// The settings as stored: prices kept to a ten-thousandth of the currency unit
    /// (a price of 1e-224 is 0; DynamoDB's numbers end at 1e-130).
    pub fn normalized(mut self) -> AppSettings {
        let keep = |p: f64| (p * 10_000.0).round() / 10_000.0;
        self.seat_price = self.seat_price.map(keep);
        for price in self.license_prices.values_mut() {
            *price = keep(*price);
        }
        self
    }

    /// The price per month of a seat with `license`: its license's price, else the
    /// seat price; None when neither is set.
    pub fn price_of(&self, license: Option<&str>) -> Option<f64> {
        license
            .and_then(|l| self.license_prices.get(l).copied())
            .or(self.seat_price)
    }

    /// The first renewal on or after `today`: the renewal date moved forward by whole
    /// billing periods (None without a renewal date).
    pub fn next_renewal(&self, today: Date) -> Option<Date> {
        let first = parse_day(self.renewal_date.as_deref()?)?;
        let months = self.billing_period.months();
        let month_index = |d: Date| d.year() * 12 + i32::from(u8::from(d.month()));
        // Whole periods that fit before today's month, then at most two more.
        let behind = u32::try_from(month_index(today) - month_index(first)).unwrap_or(0);
        let from = behind / months;
        (from..from + 3)
            .filter_map(|periods| add_months(first, periods * months))
            .find(|date| *date >= today)
    }
}

/// `date` plus `months` calendar months, the day clamped to the month's length
/// (31 January + 1 month = 28 or 29 February).
fn add_months(date: Date, months: u32) -> Option<Date> {
    let total = date.year() * 12 + i32::from(u8::from(date.month())) - 1 + months as i32;
    let (year, month) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u8);
    let month = time::Month::try_from(month).ok()?;
    let day = date.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_renewal_moves_forward_by_whole_periods_and_month_ends_clamp() {
        use time::macros::date;
        let mut s = AppSettings {
            renewal_date: Some("2025-01-31".into()),
            billing_period: BillingPeriod::Monthly,
            ..AppSettings::default()
        };
        assert_eq!(
            s.next_renewal(date!(2025 - 02 - 01)),
            Some(date!(2025 - 02 - 28))
        );
        assert_eq!(
            s.next_renewal(date!(2024 - 02 - 10)),
            Some(date!(2025 - 01 - 31))
        );
        s.billing_period = BillingPeriod::Annual;
        s.renewal_date = Some("2024-02-29".into());
        assert_eq!(
            s.next_renewal(date!(2024 - 03 - 01)),
            Some(date!(2025 - 02 - 28))
        );
        assert_eq!(
            s.next_renewal(date!(2024 - 02 - 29)),
            Some(date!(2024 - 02 - 29))
        );
        s.renewal_date = Some("0001-01-01".into());
        assert_eq!(
            s.next_renewal(date!(2026 - 11 - 23)),
            Some(date!(2027 - 01 - 01))
        );
        s.renewal_date = None;
        assert_eq!(s.next_renewal(date!(2024 - 03 - 01)), None);
    }

    #[test]
    fn a_seat_costs_its_license_price_or_the_seat_price() {
        let s = AppSettings {
            seat_price: Some(10.0),
            license_prices: [("Creator".to_string(), 35.0)].into(),
            ..AppSettings::default()
        };
        assert_eq!(s.price_of(Some("Creator")), Some(35.0));
        assert_eq!(s.price_of(Some("Guest")), Some(10.0));
        assert_eq!(s.price_of(None), Some(10.0));
        let unpriced = AppSettings::default();
        assert_eq!(unpriced.price_of(Some("Creator")), None);
        for (field, value, code) in [
            (
                "license_prices",
                serde_json::json!({"": 1}),
                "invalid_license_prices",
            ),
            (
                "license_prices",
                serde_json::json!({"Creator": -1}),
                "invalid_license_prices",
            ),
            (
                "renewal_date",
                serde_json::json!("2026-02-30"),
                "invalid_renewal_date",
            ),
            ("currency", serde_json::json!("usd"), "invalid_currency"),
            ("currency", serde_json::json!("EURO"), "invalid_currency"),
        ] {
            let mut body = serde_json::to_value(AppSettings::default()).unwrap();
            body[field] = value;
            let s: AppSettings = serde_json::from_value(body).unwrap();
            assert_eq!(s.validate().unwrap_err().code(), code, "{field}");
        }
        let old: AppSettings = serde_json::from_str(
            r#"{"inactive_days": 30, "grace_days": 14, "exempt_seats": [], "seat_price": 5}"#,
        )
        .unwrap();
        assert_eq!(
            (old.currency.as_str(), old.billing_period),
            ("USD", BillingPeriod::Monthly)
        );
    }
}
