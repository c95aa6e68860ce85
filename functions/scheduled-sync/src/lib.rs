//! The sync function, two event sources (docs/design.md § Flows: Tick, Sync): the EventBridge schedule's
//! tick enqueues every due connection; an SQS batch syncs one connection per
//! message, until shortly before the invocation's deadline. Failed messages are
//! reported in `batchItemFailures` so only they are delivered again (and after N
//! receives land in the DLQ).

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Diagnostic, LambdaEvent};
use seatscope_core::ops::sync::{self, TickReport};
use seatscope_core::queue::SyncRequest;
use seatscope_core::Deps;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

#[derive(Debug)]
pub struct TickFailed(pub seatscope_core::Error);

impl From<TickFailed> for Diagnostic {
    fn from(e: TickFailed) -> Diagnostic {
        Diagnostic {
            error_type: if e.0.is_transient() {
                "Retryable"
            } else {
                "Permanent"
            }
            .into(),
            error_message: e.0.public_message(),
        }
    }
}

/// What the function returns: the tick's report, or for an SQS batch exactly the
/// partial-batch response Lambda's event source mapping reads.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum SyncResponse {
    Tick(TickReport),
    Batch(BatchOutcome),
}

#[derive(Debug, Serialize)]
pub struct BatchOutcome {
    #[serde(flatten)]
    pub response: SqsBatchResponse,
    /// For logs and in-process callers (the local worker); not part of the response.
    #[serde(skip)]
    pub report: TickReport,
}

/// What the function is invoked with, read once as the runtime hands it over: an SQS
/// batch (an object whose `Records` come from `aws:sqs`), or anything else (the
/// scheduled event, a manual invoke): a tick.
#[derive(Debug)]
pub enum SyncEvent {
    Batch(SqsEvent),
    Tick {
        /// The event's `source` (`aws.events` for the schedule), for the log.
        source: String,
    },
}

impl<'de> Deserialize<'de> for SyncEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SyncEvent, D::Error> {
        let payload = Value::deserialize(d)?;
        let first_source = payload
            .get("Records")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .and_then(|r| r.get("eventSource"))
            .and_then(Value::as_str);
        if first_source == Some("aws:sqs") {
            return serde_json::from_value(payload)
                .map(SyncEvent::Batch)
                .map_err(serde::de::Error::custom);
        }
        let source = payload.get("source").and_then(Value::as_str);
        Ok(SyncEvent::Tick {
            source: source.unwrap_or("direct").to_string(),
        })
    }
}

#[tracing::instrument(skip_all, fields(request_id = %event.context.request_id))]
pub async fn handle(
    deps: &Deps,
    event: LambdaEvent<SyncEvent>,
) -> Result<SyncResponse, TickFailed> {
    let source = match event.payload {
        SyncEvent::Batch(batch) => {
            let deadline = deadline(&event.context);
            return Ok(SyncResponse::Batch(work(deps, batch, deadline).await));
        }
        SyncEvent::Tick { source } => source,
    };
    tracing::info!(source, "sync tick");
    let report = sync::enqueue_due(deps, deps.config.clock.now())
        .await
        .map_err(|e| {
            tracing::error!(error = %e.chain(), "tick failed");
            TickFailed(e)
        })?;
    report.log("tick finished");
    Ok(SyncResponse::Tick(report))
}

/// The invocation's deadline (epoch milliseconds in the context; 0 = none given).
fn deadline(context: &lambda_runtime::Context) -> Option<OffsetDateTime> {
    (context.deadline > 0)
        .then(|| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(context.deadline) * 1_000_000).ok()
        })
        .flatten()
}

/// One connection per message, in order; a message that could not be worked on
/// is a batch item failure, every other one is done (a failed run is recorded on
/// the connection and retried by the schedule, not by redelivery).
async fn work(deps: &Deps, batch: SqsEvent, deadline: Option<OffsetDateTime>) -> BatchOutcome {
    let mut report = TickReport::default();
    let mut failures = Vec::new();
    for message in batch.records {
        let id = message.message_id.clone().unwrap_or_default();
        let request: SyncRequest = match message
            .body
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
        {
            Ok(Some(r)) => r,
            // Unreadable: redelivery cannot fix it; it goes to the DLQ after N receives.
            _ => {
                tracing::error!(message_id = %id, "an unreadable sync request");
                report.failed += 1;
                failures.push(id);
                continue;
            }
        };
        // Boxed: a sync's state machine lives on the heap, not the worker's stack.
        match Box::pin(sync::work(deps, &request, deadline)).await {
            Ok(result) => report.count(&result),
            Err(e) => {
                tracing::error!(org = %request.org, provider = %request.provider, error = %e.chain(), "sync could not run; the message is delivered again");
                report.failed += 1;
                failures.push(id);
            }
        }
    }
    report.log("sync batch finished");
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|item_identifier| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = item_identifier;
            failure
        })
        .collect();
    BatchOutcome { response, report }
}
