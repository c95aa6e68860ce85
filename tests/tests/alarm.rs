//! The alarm on a connection's first failed sync, proven end to end: the JSON line the
//! sync writes (with the functions' own log format, `telemetry::json_layer`) matches the
//! metric filter pattern template.yaml gives `ConnectionAttentionMetricFilter`, once per
//! healthy → failing transition, and never for a vendor error a retry got past.
//!
//! The pattern is evaluated by `JsonFilter` below, a small hand-written evaluator of
//! CloudWatch Logs' JSON filter syntax (`{ $.a.b = "v" && $.c != "w" || … }`, `*` as a
//! wildcard in strings, numbers): CloudWatch's own `TestMetricFilter` needs AWS, and
//! moto (5.x, what `.tools/` holds) parses no JSON patterns — it lets every line match —
//! so neither can tell a wrong pattern from a right one.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use seatscope_local::stack::{template_path, Stack, StackOptions};
use seatscope_sandbox::{Fault, FaultKind};
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("log buffer").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A CloudWatch Logs JSON filter pattern: `{ term (&& | ||) term … }`, a term being
/// `$.path OP value` (OP `=` or `!=`, value a "string" with `*` wildcards or a number),
/// or a parenthesised expression. `&&` binds tighter than `||`.
#[derive(Debug)]
enum JsonFilter {
    Or(Vec<JsonFilter>),
    And(Vec<JsonFilter>),
    Compare {
        path: Vec<String>,
        equal: bool,
        value: Value,
    },
}

impl JsonFilter {
    fn parse(pattern: &str) -> JsonFilter {
        let inner = pattern
            .trim()
            .strip_prefix('{')
            .and_then(|p| p.strip_suffix('}'))
            .unwrap_or_else(|| panic!("not a JSON filter pattern: {pattern}"));
        let tokens = tokenize(inner);
        let mut at = 0;
        let filter = parse_or(&tokens, &mut at);
        assert_eq!(at, tokens.len(), "trailing tokens in {pattern}");
        filter
    }

    fn matches(&self, event: &Value) -> bool {
        match self {
            JsonFilter::Or(fs) => fs.iter().any(|f| f.matches(event)),
            JsonFilter::And(fs) => fs.iter().all(|f| f.matches(event)),
            JsonFilter::Compare { path, equal, value } => {
                let found = path.iter().try_fold(event, |v, k| v.get(k));
                let same = match (found, value) {
                    (Some(Value::String(s)), Value::String(want)) => glob(want, s),
                    (Some(Value::Number(n)), Value::Number(want)) => n.as_f64() == want.as_f64(),
                    _ => false,
                };
                // CloudWatch: `!=` also matches when the field is absent.
                if *equal {
                    same
                } else {
                    !same
                }
            }
        }
    }
}

fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let mut rest = s;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(j) => rest = &rest[j + part.len()..],
                None => return false,
            }
        }
    }
    true
}

fn tokenize(s: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '"' => {
                chars.next();
                let mut t = String::from("\"");
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    t.push(c);
                }
                tokens.push(t);
            }
            '(' | ')' => {
                tokens.push(c.to_string());
                chars.next();
            }
            '&' | '|' | '=' | '!' => {
                let mut t = String::new();
                while let Some(&c) = chars.peek() {
                    if matches!(c, '&' | '|' | '=' | '!') {
                        t.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(t);
            }
            _ => {
                let mut t = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '=' | '!' | '&' | '|') {
                        break;
                    }
                    t.push(c);
                    chars.next();
                }
                tokens.push(t);
            }
        }
    }
    tokens
}

fn parse_or(t: &[String], at: &mut usize) -> JsonFilter {
    let mut terms = vec![parse_and(t, at)];
    while t.get(*at).map(String::as_str) == Some("||") {
        *at += 1;
        terms.push(parse_and(t, at));
    }
    JsonFilter::Or(terms)
}

fn parse_and(t: &[String], at: &mut usize) -> JsonFilter {
    let mut terms = vec![parse_term(t, at)];
    while t.get(*at).map(String::as_str) == Some("&&") {
        *at += 1;
        terms.push(parse_term(t, at));
    }
    JsonFilter::And(terms)
}

fn parse_term(t: &[String], at: &mut usize) -> JsonFilter {
    if t.get(*at).map(String::as_str) == Some("(") {
        *at += 1;
        let inner = parse_or(t, at);
        assert_eq!(t.get(*at).map(String::as_str), Some(")"), "unclosed (");
        *at += 1;
        return inner;
    }
    let selector = &t[*at];
    let path = selector
        .strip_prefix("$.")
        .unwrap_or_else(|| panic!("a selector starts with $.: {selector}"))
        .split('.')
        .map(str::to_string)
        .collect();
    let equal = match t[*at + 1].as_str() {
        "=" => true,
        "!=" => false,
        op => panic!("operator {op} is not supported here"),
    };
    let raw = &t[*at + 2];
    let value = match raw.strip_prefix('"') {
        Some(s) => Value::String(s.to_string()),
        None => serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone())),
    };
    *at += 3;
    JsonFilter::Compare { path, equal, value }
}

/// The FilterPattern template.yaml gives the metric filter behind the attention alarm.
fn template_filter_pattern() -> String {
    let text = std::fs::read_to_string(template_path()).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    doc["Resources"]["ConnectionAttentionMetricFilter"]["Properties"]["FilterPattern"]
        .as_str()
        .expect("ConnectionAttentionMetricFilter's FilterPattern")
        .to_string()
}

#[test]
fn the_evaluator_follows_cloudwatch_json_filter_semantics() {
    let event: Value = serde_json::json!({"alert": "a_b", "n": 3, "o": {"k": "v"}});
    let m = |p: &str| JsonFilter::parse(p).matches(&event);
    assert!(m(r#"{ $.alert = "a_b" }"#));
    assert!(!m(r#"{ $.alert = "a" }"#));
    assert!(m(r#"{ $.alert = "a_*" }"#));
    assert!(m(r#"{ $.alert != "x" }"#));
    assert!(m(r#"{ $.missing != "x" }"#));
    assert!(m(r#"{ $.n = 3 && $.o.k = "v" }"#));
    assert!(m(r#"{ $.n = 4 || ($.o.k = "v" && $.alert = "a_b") }"#));
    assert!(!m(r#"{ $.n = 4 || $.o.k = "w" }"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_connections_first_failed_sync_writes_one_line_the_alarms_filter_matches() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::registry()
        .with(seatscope_core::telemetry::json_layer(move || {
            writer.clone()
        }))
        .with(seatscope_core::telemetry::log_filter("info"))
        .try_init()
        .expect("the capturing subscriber is the process's first");
    let filter = JsonFilter::parse(&template_filter_pattern());
    let alerts = || {
        captured
            .lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|event| filter.matches(event))
            .collect::<Vec<Value>>()
    };

    let stack = Stack::start(StackOptions::default())
        .await
        .expect("the local stack starts");
    let org = "alarmed";
    connect(&stack, org).await.expect("connect");
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");
    assert!(alerts().is_empty(), "a healthy sync alerts nothing");

    // A transient 5xx that a retry inside the run gets past: not a failed run.
    stack
        .sandbox
        .set_fault(Fault::new(FaultKind::ServerErrors).count(1))
        .unwrap();
    stack
        .deps
        .store
        .make_due(
            &org_id(org),
            "pagerduty",
            stack.now(),
            &tool_entry(&stack, org, Action::SyncNow),
        )
        .await
        .unwrap();
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");
    assert!(alerts().is_empty(), "a retried 5xx alerts nothing");

    // The vendor keeps failing: the run fails, the first failure of a healthy connection.
    stack
        .sandbox
        .set_fault(Fault::new(FaultKind::ServerErrors).count(10_000))
        .unwrap();
    for _ in 0..2 {
        stack
            .deps
            .store
            .make_due(
                &org_id(org),
                "pagerduty",
                stack.now(),
                &tool_entry(&stack, org, Action::SyncNow),
            )
            .await
            .unwrap();
        let report = stack.tick().await.unwrap();
        assert_eq!(report["synced"], 0, "{report}");
    }
    let fired = alerts();
    assert_eq!(
        fired.len(),
        1,
        "one line for the first failure, none for the second: {fired:?}"
    );
    assert_eq!(fired[0]["org"], org);
    assert_eq!(fired[0]["provider"], "pagerduty");
    assert_eq!(fired[0]["consecutive_failures"], 1);
    // Every line the sync wrote is JSON (the filter reads nothing else).
    assert!(captured
        .lines()
        .iter()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
}
