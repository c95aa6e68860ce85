//! JSON logs for CloudWatch. The level comes from Lambda's `AWS_LAMBDA_LOG_LEVEL`
//! (set by the template's LoggingConfig), else `RUST_LOG`, else info.
//!
//! The level applies to our own crates only. Third-party crates (lambda_runtime,
//! lambda_http, hyper, reqwest, the AWS SDK …) never log below INFO whatever is
//! asked: at DEBUG/TRACE they write raw events and requests (bearer tokens, OAuth
//! codes and states, invite tokens, API keys).
//!
//! Every line carries the invocation's request id: lambda_runtime wraps each invocation in
//! a `Lambda runtime invoke` span with `requestId` (and `xrayTraceId`), which the JSON
//! formatter writes in the line's `spans` list (the span list is on by default).

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The crates whose logs may go down to DEBUG/TRACE.
pub const OUR_CRATES: [&str; 5] = [
    "seatscope_core",
    "connect_start",
    "oauth_callback",
    "scheduled_sync",
    "dashboard_api",
];

/// The most any other crate may log.
pub const THIRD_PARTY_CAP: LevelFilter = LevelFilter::INFO;

fn ours(target: &str) -> bool {
    OUR_CRATES.iter().any(|c| {
        target == *c
            || target
                .strip_prefix(c)
                .is_some_and(|rest| rest.starts_with("::"))
    })
}

/// The filter for a level string: `AWS_LAMBDA_LOG_LEVEL`'s `TRACE`…`FATAL`, or
/// `RUST_LOG`'s `level` / `target=level,…` form. Our crates get the level asked
/// for; every other target at most [`THIRD_PARTY_CAP`]. Unreadable → info.
pub fn log_filter(spec: &str) -> Targets {
    let spec = spec.trim().to_ascii_lowercase().replace("fatal", "error");
    let asked =
        Targets::from_str(&spec).unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO));
    let default = asked.default_level().unwrap_or(LevelFilter::INFO);
    let mut filter = Targets::new().with_default(default.min(THIRD_PARTY_CAP));
    for krate in OUR_CRATES {
        filter = filter.with_target(krate, default);
    }
    for (target, level) in asked.iter() {
        let level = if ours(target) {
            level
        } else {
            level.min(THIRD_PARTY_CAP)
        };
        filter = filter.with_target(target, level);
    }
    filter
}

/// The JSON lines the functions write (one object per event, the event's fields at
/// the top level): what CloudWatch Logs' metric filters match (`{ $.alert = … }`).
pub fn json_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_target(false)
        .with_current_span(false)
        .flatten_event(true)
        .with_writer(writer)
}

pub fn init() {
    let spec = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_string());
    // A second init (tests, the local runner) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(json_layer(std::io::stdout))
        .with(log_filter(&spec))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    const THIRD_PARTY: [&str; 10] = [
        "lambda_runtime",
        "lambda_runtime::layers::trace",
        "lambda_http",
        "hyper",
        "hyper_util::client",
        "reqwest::connect",
        "aws_smithy_runtime::client",
        "aws_sdk_dynamodb",
        "h2::codec",
        "rustls::client",
    ];

    #[test]
    fn trace_reaches_our_crates_and_never_the_runtime_or_http_stacks() {
        for spec in ["TRACE", "trace", "DEBUG", " debug "] {
            let f = log_filter(spec);
            for ours in OUR_CRATES {
                assert!(f.would_enable(ours, &Level::DEBUG), "{spec}: {ours}");
                assert!(f.would_enable(&format!("{ours}::connect"), &Level::DEBUG));
            }
            for target in THIRD_PARTY.into_iter().chain(["tower", "some_new_crate"]) {
                assert!(f.would_enable(target, &Level::INFO), "{spec}: {target}");
                assert!(!f.would_enable(target, &Level::DEBUG), "{spec}: {target}");
                assert!(!f.would_enable(target, &Level::TRACE), "{spec}: {target}");
            }
        }
        assert!(log_filter("TRACE").would_enable("seatscope_core", &Level::TRACE));
    }

    #[test]
    fn rust_log_directives_are_capped_for_other_crates() {
        let f = log_filter("warn,lambda_runtime=trace,hyper=debug,seatscope_core=trace");
        assert!(!f.would_enable("lambda_runtime", &Level::DEBUG));
        assert!(f.would_enable("lambda_runtime", &Level::INFO));
        assert!(!f.would_enable("hyper", &Level::DEBUG));
        assert!(f.would_enable("seatscope_core::sync", &Level::TRACE));
        assert!(!f.would_enable("dashboard_api", &Level::INFO));
        assert!(f.would_enable("dashboard_api", &Level::WARN));
        assert!(!f.would_enable("reqwest", &Level::INFO));
    }

    #[test]
    fn quieter_levels_and_unreadable_ones() {
        let f = log_filter("ERROR");
        assert!(!f.would_enable("seatscope_core", &Level::WARN));
        assert!(!f.would_enable("lambda_runtime", &Level::WARN));
        assert!(f.would_enable("lambda_runtime", &Level::ERROR));
        assert!(log_filter("FATAL").would_enable("dashboard_api", &Level::ERROR));
        assert!(!log_filter("FATAL").would_enable("dashboard_api", &Level::WARN));
        let f = log_filter("not a level!");
        assert!(f.would_enable("seatscope_core", &Level::INFO));
        assert!(!f.would_enable("seatscope_core", &Level::DEBUG));
        assert!(!f.would_enable("lambda_runtime", &Level::DEBUG));
    }
}
