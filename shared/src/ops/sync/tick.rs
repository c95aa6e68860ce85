//! The two entry points of the sync function: the EventBridge tick claims every due
//! connection and sends one SQS message each; the worker runs one message's sync and
//! re-enqueues what a Lambda deadline left.

use time::OffsetDateTime;

use super::run::run_part;
use super::streams::lease_ttl;
use super::{RunResult, TickReport};
use crate::deps::Deps;
use crate::domain::audit::{Admin, Details};
use crate::error::{Error, Result};
use crate::queue::SyncRequest;

/// The EventBridge tick: every due connection (DueIndex, never a scan) is claimed
/// — its `next_sync_at` moved one lease time ahead, so a second tick before the
/// worker runs does not send it again — and sent to the queue, one message each.
pub async fn enqueue_due(deps: &Deps, now: OffsetDateTime) -> Result<TickReport> {
    let queue = deps.sync_queue()?;
    let hold = lease_ttl(deps);
    let due = deps.store.due_connections(now).await?;
    let mut report = TickReport {
        due: due.len(),
        ..TickReport::default()
    };
    let mut claimed = Vec::with_capacity(due.len());
    for (org, provider) in due {
        if deps.store.claim_due(&org, &provider, now, hold).await? {
            claimed.push(SyncRequest {
                org,
                provider,
                continuation: 0,
                due_at: Some(now.unix_timestamp()),
                so_far: None,
            });
        } else {
            report.skipped += 1;
        }
    }
    let unsent = queue.send_all(&claimed).await?;
    for request in &unsent {
        tracing::error!(org = %request.org, provider = %request.provider, "sync request not enqueued; due again");
        deps.store
            .release_claim(&request.org, &request.provider, now, hold)
            .await?;
    }
    report.enqueued = claimed.len() - unsent.len();
    report.failed = unsent.len();
    Ok(report)
}

/// One SQS message: syncs the connection until done or until shortly before
/// `deadline` (the Lambda context's), and re-enqueues the rest if the deadline came
/// first. An `Err` means the message should be delivered again (after N receives it
/// goes to the DLQ); a failed run is recorded on the connection and is not an `Err`.
pub async fn work(
    deps: &Deps,
    request: &SyncRequest,
    deadline: Option<OffsetDateTime>,
) -> Result<RunResult> {
    let now = deps.config.clock.now();
    let due_at = request
        .due_at
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
    // Boxed, here and below: a sync's nested state machines are large, and a debug
    // build polls them on a 2 MiB worker stack.
    let (result, so_far) = Box::pin(run_part(
        deps,
        (&request.org, &request.provider),
        now,
        deadline,
        due_at,
        request.so_far.as_ref(),
    ))
    .await?;
    if let RunResult::Paused(summary) = &result {
        if request.continuation > 0 && summary.days_written == 0 {
            // Not even one window fits between the start and the deadline margin:
            // re-enqueuing would loop. Delivered again, and after N receives in the DLQ.
            return Err(Error::Internal {
                context: "a continuation wrote nothing before the deadline".into(),
                source: None,
            });
        }
        let next = SyncRequest {
            continuation: request.continuation + 1,
            so_far,
            ..request.clone()
        };
        let unsent = deps
            .sync_queue()?
            .send_all(std::slice::from_ref(&next))
            .await?;
        if !unsent.is_empty() {
            // The message is delivered again and resumes from the checkpoints.
            return Err(Error::Internal {
                context: "the continuation of a paused sync could not be enqueued".into(),
                source: None,
            });
        }
        tracing::info!(
            org = %request.org,
            provider = %request.provider,
            continuation = next.continuation,
            events = summary.activity_events,
            "sync paused before the deadline; continuation enqueued"
        );
    }
    Ok(result)
}

/// "Sync now": the connection becomes due at once; the next tick runs it.
pub async fn request_sync(deps: &Deps, caller: &Admin, provider_id: &str) -> Result<()> {
    let provider = deps.config.catalog.get(provider_id)?;
    deps.store
        .make_due(
            &caller.org,
            &provider.id,
            deps.config.clock.now(),
            &caller.audit().done(Details::new()),
        )
        .await
}
