//! Plan credits of a usage-priced app (SendGrid).

use serde::{Deserialize, Serialize};

/// Plan credits of a usage-priced app (SendGrid), as of the last sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanItem {
    pub plan: PlanUsage,
    pub as_of: String,
}

/// Plan credits: how much of what the plan includes is used this period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanUsage {
    pub total: i64,
    pub used: i64,
    pub remain: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_reset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_frequency: Option<String>,
}

/// Where the plan's credits go at the recent pace: run out before the reset, or last
/// with a share unused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditProjection {
    /// Credits spent per day over the measured days (the last 30 complete synced days).
    pub pace_per_day: f64,
    pub days_measured: u32,
    /// The day the credits left run out at that pace, when it comes before the reset.
    pub runs_out_on: Option<String>,
    /// The share of the plan's credits left unused at the reset, when they last.
    pub unused_at_reset_percent: Option<f64>,
}

impl PlanUsage {
    /// The projection from the credits spent on each of the last complete days
    /// (`spent`, newest or oldest first alike), as of `today`; None without a reset date
    /// or a measured day.
    pub fn project(&self, spent: &[u64], today: time::Date) -> Option<CreditProjection> {
        let next_reset = crate::domain::time::parse_day(self.next_reset.as_deref()?.get(..10)?)?;
        let days = u32::try_from(spent.len()).ok().filter(|d| *d > 0)?;
        let pace = spent.iter().sum::<u64>() as f64 / f64::from(days);
        let days_left = (next_reset - today).whole_days().max(0) as f64;
        let remain = self.remain.max(0) as f64;
        let lasts_days = if pace > 0.0 {
            remain / pace
        } else {
            f64::INFINITY
        };
        let (runs_out_on, unused) = if lasts_days < days_left {
            let day = today + time::Duration::days(lasts_days.floor() as i64);
            (Some(crate::domain::time::day(day)), None)
        } else {
            let unused = (remain - pace * days_left).max(0.0);
            let share =
                (self.total > 0).then(|| (unused * 1000.0 / self.total as f64).round() / 10.0);
            (None, share)
        };
        Some(CreditProjection {
            pace_per_day: (pace * 10.0).round() / 10.0,
            days_measured: days,
            runs_out_on,
            unused_at_reset_percent: unused,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn plan(total: i64, used: i64) -> PlanUsage {
        PlanUsage {
            total,
            used,
            remain: (total - used).max(0),
            last_reset: Some("2026-11-01".into()),
            next_reset: Some("2026-12-01".into()),
            reset_frequency: Some("monthly".into()),
        }
    }

    #[test]
    fn credits_run_out_at_the_pace_or_last_with_a_share_unused() {
        let today = date!(2026 - 11 - 21);
        // 1,000 left, 200 a day, 10 days to the reset: out in 5 days.
        let p = plan(10_000, 9_000).project(&[200; 30], today).unwrap();
        assert_eq!(p.runs_out_on.as_deref(), Some("2026-11-26"));
        assert_eq!(
            (p.pace_per_day, p.days_measured, p.unused_at_reset_percent),
            (200.0, 30, None)
        );
        // 9,000 left, 100 a day for 10 days: 8,000 unused of 10,000 = 80 %.
        let p = plan(10_000, 1_000).project(&[100; 12], today).unwrap();
        assert_eq!(
            (p.runs_out_on, p.unused_at_reset_percent),
            (None, Some(80.0))
        );
        // Nothing spent: everything left is unused.
        let p = plan(10_000, 1_000).project(&[0; 30], today).unwrap();
        assert_eq!(p.unused_at_reset_percent, Some(90.0));
        // No measured day, no reset: no projection.
        assert_eq!(plan(10_000, 1_000).project(&[], today), None);
        let no_reset = PlanUsage {
            next_reset: None,
            ..plan(1, 0)
        };
        assert_eq!(no_reset.project(&[1], today), None);
    }
}
