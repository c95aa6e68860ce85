//! The core's clock: every date and time the core decides by (today's UTC day, a range's
//! default end, leases, token expiry, invite and state lifetimes) comes from here, so a
//! deployment can be run at another date without touching the system clock.
//!
//! `CLOCK_OFFSET_SECONDS` (default 0) is added to the system clock. The local stack sets it
//! so the code under test and the vendor sandboxes agree on a pinned "today"
//! (`SEATSCOPE_TODAY`, see `tests/sandbox/src/clock.rs`); a deployment leaves it unset.
//! Deadlines that come from outside (the Lambda invocation's deadline, a vendor's
//! rate-limit reset) are real instants and stay on the system clock.

use time::{Date, Duration, OffsetDateTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clock {
    offset: Duration,
}

impl Clock {
    /// The system clock.
    pub const fn system() -> Clock {
        Clock {
            offset: Duration::ZERO,
        }
    }

    /// The system clock plus `offset`.
    pub const fn offset_by(offset: Duration) -> Clock {
        Clock { offset }
    }

    pub fn offset(&self) -> Duration {
        self.offset
    }

    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.offset
    }

    /// Today's UTC day.
    pub fn today(&self) -> Date {
        self.now().date()
    }
}

pub fn day(date: Date) -> String {
    let (y, m, d) = (date.year(), date.month() as u8, date.day());
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn parse_day(s: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &format).ok()
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_clock_runs_ahead_of_the_system_clock_by_exactly_its_offset() {
        let clock = Clock::offset_by(Duration::days(-400));
        let before = OffsetDateTime::now_utc();
        let shifted = clock.now();
        let after = OffsetDateTime::now_utc();
        assert!(shifted >= before - Duration::days(400) && shifted <= after - Duration::days(400));
        assert_eq!(Clock::system().offset(), Duration::ZERO);
    }
}
