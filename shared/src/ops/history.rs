//! Sync history: a connection's recorded runs (`RUN#` items), newest first, each with
//! its parts (a tick's invocation and its continuations) summed: start, duration,
//! seats, events and days read, vendor requests, retries and 429s, the outcome and
//! the vendor's error. `GET /api/connections/{provider}/runs`; the card's history panel.

use serde::Serialize;
use time::OffsetDateTime;

use crate::config::Config;
use crate::domain::caller::Caller;
use crate::domain::run::{RunStatus, SyncRun};
use crate::error::{Error, Result};
use crate::store::cursor::Position;
use crate::store::DynamoDbStore;

pub const DEFAULT_RUNS: usize = 20;
pub const MAX_RUNS: usize = 100;

/// What `GET /api/connections/{provider}/runs` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunsQuery {
    /// Where the previous page ended.
    pub before: Option<Position>,
    pub limit: usize,
}

impl RunsQuery {
    pub fn parse(cursor: Option<&str>, limit: Option<&str>) -> Result<RunsQuery> {
        let before = cursor.map(Position::in_runs).transpose()?;
        let limit = match limit {
            None => DEFAULT_RUNS,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_RUNS).contains(l))
                .ok_or_else(|| {
                    Error::bad_request(
                        "invalid_limit",
                        format!("limit must be a whole number from 1 to {MAX_RUNS}"),
                    )
                })?,
        };
        Ok(RunsQuery { before, limit })
    }
}

/// One run as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunView {
    pub started_at: String,
    pub finished_at: String,
    /// From the first part's start to the last part's end.
    pub duration_seconds: Option<f64>,
    /// `succeeded` or `failed`.
    pub outcome: RunStatus,
    /// Invocations: 1, plus one per continuation after a Lambda deadline (null for runs
    /// recorded before parts were counted).
    pub parts: Option<u32>,
    pub seats: u32,
    pub activity_events: u64,
    pub days_written: u32,
    pub requests: u64,
    pub retries: u64,
    pub rate_limited: u64,
    /// The vendor's (or our) error, for a failed run.
    pub error: Option<String>,
}

impl From<SyncRun> for RunView {
    fn from(r: SyncRun) -> RunView {
        let parse =
            |t: &str| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok();
        let duration_seconds = match (parse(&r.started_at), parse(&r.finished_at)) {
            (Some(a), Some(b)) => Some((b - a).as_seconds_f64().max(0.0)),
            _ => None,
        };
        RunView {
            duration_seconds,
            outcome: r.status,
            parts: (r.parts > 0).then_some(r.parts),
            seats: r.summary.seats,
            activity_events: r.summary.activity_events,
            days_written: r.summary.days_written,
            requests: r.requests.requests,
            retries: r.requests.retries,
            rate_limited: r.requests.rate_limited,
            error: r.error,
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunList {
    pub provider: String,
    pub runs: Vec<RunView>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/connections/{provider}/runs`: the caller's org's runs of the app.
pub async fn runs(
    store: &DynamoDbStore,
    config: &Config,
    caller: &Caller,
    provider_id: &str,
    query: &RunsQuery,
) -> Result<RunList> {
    let provider = config.catalog.get(provider_id)?;
    let page = store
        .app_data(&caller.org, &provider.id)
        .runs(query.before.as_ref(), query.limit)
        .await?;
    Ok(RunList {
        provider: provider.id.clone(),
        runs: page.runs.into_iter().map(RunView::from).collect(),
        next_cursor: page.next.as_ref().map(Position::cursor),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::connection::SyncSummary;
    use crate::domain::run::RequestCounts;

    #[test]
    fn a_run_shows_its_parts_summed_and_its_length() {
        let run = SyncRun {
            run_id: "r".into(),
            started_at: "2026-11-23T10:00:00Z".into(),
            finished_at: "2026-11-23T10:02:30.5Z".into(),
            status: RunStatus::Succeeded,
            summary: SyncSummary {
                seats: 8,
                activity_events: 900,
                days_written: 24,
            },
            error: None,
            requests: RequestCounts {
                requests: 40,
                retries: 2,
                rate_limited: 1,
            },
            parts: 3,
            expires_at: 0,
        };
        let v = RunView::from(run);
        assert_eq!(v.duration_seconds, Some(150.5));
        assert_eq!(
            (v.parts, v.requests, v.retries, v.rate_limited),
            (Some(3), 40, 2, 1)
        );
        assert_eq!(
            RunsQuery::parse(None, Some("0")).unwrap_err().code(),
            "invalid_limit"
        );
        assert_eq!(RunsQuery::parse(None, None).unwrap().limit, DEFAULT_RUNS);
    }
}
