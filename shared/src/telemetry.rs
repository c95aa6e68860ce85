//! JSON logs for CloudWatch. The level comes from Lambda's `AWS_LAMBDA_LOG_LEVEL`
//! (set by the template's LoggingConfig), else `RUST_LOG`, else info.
//!
//! Every line carries the invocation's request id: lambda_runtime wraps each invocation in
//! a `Lambda runtime invoke` span with `requestId` (and `xrayTraceId`), which the JSON
//! formatter writes in the line's `spans` list (the span list is on by default).

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|l| EnvFilter::new(l.to_lowercase()))
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    // A second init (tests, the local runner) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(false)
        .flatten_event(true)
        .try_init();
}
