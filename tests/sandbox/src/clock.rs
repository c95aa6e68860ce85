//! The sandboxes' "now": the system clock, or — when `SEATSCOPE_TODAY=YYYY-MM-DD` is set —
//! a clock that reads 12:00 UTC of that day at its first use in this process and runs
//! from there. Tests pin their date with it (`cargo xtask test` sets a fixed day, and
//! `--today` picks another), so no test's premise depends on the calendar; the local
//! stack hands the same offset to the code under test (`CLOCK_OFFSET_SECONDS`), so the
//! sandboxes and the core agree on what today is.

use std::sync::LazyLock;

use time::{Date, Duration, OffsetDateTime};

/// The variable that pins today's date for a process.
pub const TODAY_VAR: &str = "SEATSCOPE_TODAY";

/// The day named by `SEATSCOPE_TODAY`, if set; an unparsable value is a startup error
/// worth stopping on, so it panics with the variable's name.
pub fn pinned_today() -> Option<Date> {
    let value = std::env::var(TODAY_VAR).ok().filter(|v| !v.is_empty())?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    match Date::parse(&value, format) {
        Ok(date) => Some(date),
        Err(e) => panic!("{TODAY_VAR}={value:?} is not a YYYY-MM-DD date: {e}"),
    }
}

static OFFSET: LazyLock<Duration> = LazyLock::new(|| match pinned_today() {
    None => Duration::ZERO,
    Some(day) => day.with_time(time::macros::time!(12:00)).assume_utc() - OffsetDateTime::now_utc(),
});

/// What this process adds to the system clock (zero unless `SEATSCOPE_TODAY` is set).
pub fn offset() -> Duration {
    *OFFSET
}

/// Now, by this process's clock.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc() + offset()
}

/// Today (UTC), by this process's clock.
pub fn today() -> Date {
    now().date()
}

/// Yesterday (UTC): the last whole day, where the sandboxes' generated data ends by default.
pub fn yesterday() -> Date {
    let today = today();
    today.previous_day().unwrap_or(today)
}
