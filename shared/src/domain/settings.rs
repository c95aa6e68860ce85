//! What an admin decides per app: the inactivity threshold, the grace period for new
//! seats, exemptions and the seat price, with their limits.

use std::collections::BTreeSet;

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
            inactive_days: DEFAULT_INACTIVE_DAYS,
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
}
