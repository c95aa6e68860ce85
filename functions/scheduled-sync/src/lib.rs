//! The EventBridge schedule's target: every due connection is synced. Returns the
//! tick's report; a failure to read the due list is an error (EventBridge retries).

use lambda_runtime::{Diagnostic, LambdaEvent};
use seatscope_core::sync::{self, TickReport};
use seatscope_core::App;
use serde_json::Value;

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

#[tracing::instrument(skip_all, fields(request_id = %event.context.request_id))]
pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<TickReport, TickFailed> {
    let source = event
        .payload
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or("direct");
    tracing::info!(source, "sync tick");
    let report = sync::run_due(app, time::OffsetDateTime::now_utc())
        .await
        .map_err(|e| {
            tracing::error!(error = %e.chain(), "tick failed");
            TickFailed(e)
        })?;
    tracing::info!(
        due = report.due,
        synced = report.synced,
        skipped = report.skipped,
        failed = report.failed,
        "tick finished"
    );
    Ok(report)
}
