//! Route fuzzing over real HTTP against the local stack: ~3,000 malformed requests
//! across every route of template.yaml and openapi.json (see `walk`), with a valid
//! token of a fresh org: wrong JSON types, bodies over the 6 MB payload limit and
//! over the functions' 1 MB JSON limit, invalid UTF-8, invalid percent-encodings,
//! null bytes, `../` and 10 kB path parameters, duplicate and absurd query
//! parameters, wrong content types. Requests are written on raw TCP, so paths reach
//! the gateway exactly as sent (no client normalizes `../` or re-encodes).
//!
//! Expected: no response ≥ 500, no panic, no dropped connection, and the stack
//! still answering `GET /api/overview` with 200 at the end.

mod common;
mod walk;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::PagerDutyConfig;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use walk::{fill, route_table, RouteSpec};

/// API Gateway's / Lambda's synchronous payload limit.
const PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;
/// What the functions accept as a JSON body.
const JSON_LIMIT: usize = 1024 * 1024;
const TOTAL: usize = 3_000;
const CONCURRENCY: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Below500,
    Status(u16),
}

#[derive(Debug, Clone)]
struct Case {
    class: &'static str,
    route: String,
    method: String,
    /// The request target exactly as written on the wire.
    target: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    expect: Expect,
}

/// Odd path parameters, as they appear in the request target.
fn odd_params() -> Vec<(&'static str, String)> {
    vec![
        ("dotdot", "..".into()),
        ("dotdot-slash", "../..".into()),
        ("dotdot-etc", "../../../../etc/passwd".into()),
        ("encoded-dotdot", "%2e%2e".into()),
        ("encoded-traversal", "..%2F..%2F..%2Fetc%2Fpasswd".into()),
        ("encoded-traversal-upper", "%2E%2E%2F%2E%2E%2F".into()),
        ("double-encoded", "%252e%252e%252f".into()),
        ("long-10k", "p".repeat(10 * 1024)),
        ("long-10k-encoded", "%41".repeat(10 * 1024 / 3)),
        ("nul", "%00".into()),
        ("nul-inside", "pager%00duty".into()),
        ("invalid-utf8", "%ff%fe%fd".into()),
        ("overlong-utf8", "%c0%ae%c0%ae%c0%af".into()),
        ("bad-percent", "%zz".into()),
        ("lone-percent", "%".into()),
        ("short-percent", "%2".into()),
        ("crlf", "x%0d%0aSet-Cookie:%20a=b".into()),
        ("hash", "ORG%23other".into()),
        ("braces", "%7Bprovider%7D".into()),
        ("unicode", "%E2%80%AEpagerduty".into()),
        ("spaces", "%20pagerduty%20".into()),
        ("backslash", "..%5C..%5C".into()),
        ("upper", "PAGERDUTY".into()),
        ("json", "%7B%22a%22%3A1%7D".into()),
    ]
}

fn odd_queries() -> Vec<(&'static str, String)> {
    vec![
        (
            "dup-from",
            "from=2026-10-01&from=2026-11-01&to=2026-11-23&to=x".into(),
        ),
        ("dup-purge", "purge=true&purge=false".into()),
        (
            "dup-inactive",
            "inactive_days=30&inactive_days=abc&only=x&only=inactive".into(),
        ),
        (
            "thousand-params",
            (0..1000)
                .map(|i| format!("p{i}={i}"))
                .collect::<Vec<_>>()
                .join("&"),
        ),
        ("long-value", format!("from={}", "9".repeat(10 * 1024))),
        ("bad-percent", "from=%zz&to=%&inactive_days=%2".into()),
        ("nul", "from=2026-10-01%00&purge=true%00&only=%00".into()),
        ("invalid-utf8", "from=%ff%fe&only=%c0%af&purge=%ff".into()),
        ("empty-keys", "=&=&&&=x&".into()),
        ("no-values", "from&to&purge&inactive_days&only".into()),
        (
            "overflow",
            "inactive_days=18446744073709551616&purge=1e999".into(),
        ),
        ("negative", "inactive_days=-1&from=-0001-01-01".into()),
        ("arrays", "from[]=1&from[0]=2&to[a]=3".into()),
        ("json", "only=%7B%22a%22%3A1%7D&from=%5B%5D".into()),
        ("code-state", "code=%00&state=..%2F..&error=%ff".into()),
        ("plus-space", "from=2026+10+01&to=+".into()),
    ]
}

/// Bodies for every route: (class, content type, bytes, expectation).
fn odd_bodies(route: &RouteSpec) -> Vec<(&'static str, Option<&'static str>, Vec<u8>, Expect)> {
    // The routes whose function reads a JSON body.
    let json_route = route.path.starts_with("/api/")
        && route.takes_body()
        && ["/connect", "/api-key", "/settings"]
            .iter()
            .any(|s| route.path.ends_with(s));
    let over_json = if json_route {
        Expect::Status(413)
    } else {
        Expect::Below500
    };
    let mut big_json = br#"{"api_key":""#.to_vec();
    big_json.extend(std::iter::repeat_n(b'k', JSON_LIMIT + 16));
    big_json.extend(br#""}"#);
    vec![
        (
            "over-6mb",
            Some("application/json"),
            vec![b'a'; PAYLOAD_LIMIT + 1],
            Expect::Status(413),
        ),
        (
            "over-6mb-form",
            Some("application/x-www-form-urlencoded"),
            vec![b'a'; PAYLOAD_LIMIT + 1],
            Expect::Status(413),
        ),
        ("over-1mb-json", Some("application/json"), big_json, over_json),
        (
            "over-1mb-whitespace",
            Some("application/json"),
            vec![b' '; JSON_LIMIT + 1],
            over_json,
        ),
        (
            "invalid-utf8",
            Some("application/json"),
            b"{\"api_key\":\"\xff\xfe\xc0\xaf\"}".to_vec(),
            Expect::Below500,
        ),
        (
            "invalid-utf8-text",
            Some("text/plain"),
            b"\xff\xfe\xfd".to_vec(),
            Expect::Below500,
        ),
        (
            "nul-bytes",
            Some("application/json"),
            b"{\"return_to\":\"/\x00/evil\",\"api_key\":\"a\x00b\"}".to_vec(),
            Expect::Below500,
        ),
        (
            "nul-escaped",
            Some("application/json"),
            br#"{"return_to":"/\u0000","api_key":"SG.\u0000","inactive_days":30,"grace_days":1,"exempt_seats":["\u0000"],"seat_price":null}"#.to_vec(),
            Expect::Below500,
        ),
        (
            "deep-nesting",
            Some("application/json"),
            [vec![b'['; 100_000], vec![b']'; 100_000]].concat(),
            Expect::Below500,
        ),
        (
            "deep-objects",
            Some("application/json"),
            "{\"a\":".repeat(50_000).into_bytes(),
            Expect::Below500,
        ),
        (
            "form-as-json",
            Some("application/json"),
            b"api_key=abc&continue=1".to_vec(),
            Expect::Below500,
        ),
        (
            "json-as-form",
            Some("application/x-www-form-urlencoded"),
            br#"{"api_key":"abc"}"#.to_vec(),
            Expect::Below500,
        ),
        (
            "form-bad-percent",
            Some("application/x-www-form-urlencoded"),
            b"api_key=%zz%ff%00&api_key=x&continue=%".to_vec(),
            Expect::Below500,
        ),
        (
            "multipart",
            Some("multipart/form-data; boundary=xyz"),
            b"--xyz\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\nk\r\n--xyz--\r\n"
                .to_vec(),
            Expect::Below500,
        ),
        (
            "octet-stream",
            Some("application/octet-stream"),
            vec![0, 159, 146, 150, 255],
            Expect::Below500,
        ),
        (
            "utf16-json",
            Some("application/json; charset=utf-16"),
            b"\xff\xfe{\x00}\x00".to_vec(),
            Expect::Below500,
        ),
        (
            "no-content-type",
            None,
            br#"{"inactive_days":30}"#.to_vec(),
            Expect::Below500,
        ),
        (
            "garbage-content-type",
            Some("\u{7f}/;;;=="),
            br#"{}"#.to_vec(),
            Expect::Below500,
        ),
        (
            "huge-number",
            Some("application/json"),
            format!(
                r#"{{"inactive_days":1{},"grace_days":-1e999,"exempt_seats":{{}},"seat_price":"x"}}"#,
                "0".repeat(5000)
            )
            .into_bytes(),
            Expect::Below500,
        ),
        (
            "many-exempt",
            Some("application/json"),
            json!({"inactive_days": 30, "grace_days": 1, "seat_price": 1,
                   "exempt_seats": (0..20_000).map(|i| format!("s{i}")).collect::<Vec<_>>()})
            .to_string()
            .into_bytes(),
            Expect::Below500,
        ),
    ]
}

/// A JSON value of any shape; objects use the API's field names half the time.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        "[\\x00-\\x1f/.%\\\\]{0,12}".prop_map(Value::from),
    ];
    let key = prop_oneof![
        Just("return_to".to_string()),
        Just("api_key".to_string()),
        Just("inactive_days".to_string()),
        Just("grace_days".to_string()),
        Just("exempt_seats".to_string()),
        Just("seat_price".to_string()),
        Just("continue".to_string()),
        "\\PC{0,8}",
    ];
    leaf.prop_recursive(3, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A random malformed request on a random route: a mangled path parameter, a
/// mangled query, a random body of a random content type.
#[derive(Debug, Clone)]
struct Random {
    route: usize,
    param: Option<usize>,
    query: Option<usize>,
    raw_query: Vec<u8>,
    body: BodyKind,
    content_type: usize,
}

#[derive(Debug, Clone)]
enum BodyKind {
    None,
    Json(Value),
    Bytes(Vec<u8>),
    Form(Vec<(String, String)>),
}

const CONTENT_TYPES: [Option<&str>; 6] = [
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("text/plain"),
    Some("application/json; charset=latin1"),
    Some("application/octet-stream"),
    None,
];

fn random_case(routes: usize, params: usize, queries: usize) -> impl Strategy<Value = Random> {
    (
        0..routes,
        prop::option::of(0..params),
        prop::option::of(0..queries),
        prop::collection::vec(any::<u8>(), 0..64),
        prop_oneof![
            Just(BodyKind::None),
            json_value().prop_map(BodyKind::Json),
            prop::collection::vec(any::<u8>(), 0..256).prop_map(BodyKind::Bytes),
            prop::collection::vec(("\\PC{0,10}", "\\PC{0,40}"), 0..5).prop_map(BodyKind::Form),
        ],
        0..CONTENT_TYPES.len(),
    )
        .prop_map(
            |(route, param, query, raw_query, body, content_type)| Random {
                route,
                param,
                query,
                raw_query,
                body,
                content_type,
            },
        )
}

/// Raw query bytes as a client that does not encode would send them, made valid for
/// the request line (no spaces, CR, LF or `#`).
fn wire_query(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|b| match b {
            b' ' | b'\r' | b'\n' | b'#' | 0..=0x1f | 0x7f..=0xff => {
                format!("%{b:02x}").into_bytes()
            }
            other => vec![*other],
        })
        .collect()
}

fn ordinary(route: &RouteSpec, name: &str, invite: &str) -> String {
    match name {
        "provider" => "pagerduty".into(),
        "file" if route.path.starts_with("/assets/") => "app.js".into(),
        "file" => "seats.csv".into(),
        "token" => invite.into(),
        _ => "x".into(),
    }
}

fn cases(routes: &[RouteSpec], bearer: &str, invite: &str) -> Vec<Case> {
    let auth = |route: &RouteSpec| -> Vec<(String, Vec<u8>)> {
        if route.authorized {
            vec![(
                "authorization".into(),
                format!("Bearer {bearer}").into_bytes(),
            )]
        } else {
            Vec::new()
        }
    };
    let mut out = Vec::new();
    let params = odd_params();
    let queries = odd_queries();
    for route in routes {
        let base = fill(&route.path, |n| ordinary(route, n, invite));
        // Each path parameter replaced by each odd value.
        for name in route.params() {
            for (class, value) in &params {
                let path = fill(&route.path, |n| {
                    if n == name {
                        value.clone()
                    } else {
                        ordinary(route, n, invite)
                    }
                });
                out.push(Case {
                    class,
                    route: route.key(),
                    method: route.method.clone(),
                    target: path.into_bytes(),
                    headers: auth(route),
                    body: Vec::new(),
                    expect: Expect::Below500,
                });
            }
        }
        // Odd queries on the ordinary path.
        for (class, q) in &queries {
            out.push(Case {
                class,
                route: route.key(),
                method: route.method.clone(),
                target: format!("{base}?{q}").into_bytes(),
                headers: auth(route),
                body: Vec::new(),
                expect: Expect::Below500,
            });
        }
        // Odd bodies on the ordinary path (every method: a GET with a body too).
        for (class, content_type, body, expect) in odd_bodies(route) {
            let mut headers = auth(route);
            if let Some(ct) = content_type {
                headers.push(("content-type".into(), ct.as_bytes().to_vec()));
            }
            out.push(Case {
                class,
                route: route.key(),
                method: route.method.clone(),
                target: base.clone().into_bytes(),
                headers,
                body,
                expect,
            });
        }
        // Odd headers.
        let mut headers = auth(route);
        headers.push(("content-type".into(), b"application/json".to_vec()));
        headers.push(("content-type".into(), b"text/plain".to_vec()));
        headers.push(("cookie".into(), b"a=\xff; ;;=; b".to_vec()));
        headers.push(("x-forwarded-for".into(), b"\xff\xfe".to_vec()));
        out.push(Case {
            class: "dup-headers",
            route: route.key(),
            method: route.method.clone(),
            target: base.clone().into_bytes(),
            headers,
            body: b"{}".to_vec(),
            expect: Expect::Below500,
        });
    }
    // Property-generated cases up to the total, reproducible (a fixed seed).
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = random_case(routes.len(), params.len(), queries.len());
    while out.len() < TOTAL {
        let r = strategy
            .new_tree(&mut runner)
            .expect("a case is generated")
            .current();
        let route = &routes[r.route];
        let mut path = fill(&route.path, |n| ordinary(route, n, invite));
        if let (Some(p), false) = (r.param, route.params().is_empty()) {
            let name = route.params()[p % route.params().len()].clone();
            path = fill(&route.path, |n| {
                if n == name {
                    params[p].1.clone()
                } else {
                    ordinary(route, n, invite)
                }
            });
        }
        let mut target = path.into_bytes();
        match r.query {
            Some(q) => {
                target.push(b'?');
                target.extend(queries[q].1.as_bytes());
                target.push(b'&');
                target.extend(wire_query(&r.raw_query));
            }
            None if !r.raw_query.is_empty() => {
                target.push(b'?');
                target.extend(wire_query(&r.raw_query));
            }
            None => {}
        }
        let body = match &r.body {
            BodyKind::None => Vec::new(),
            BodyKind::Json(v) => v.to_string().into_bytes(),
            BodyKind::Bytes(b) => b.clone(),
            BodyKind::Form(f) => url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(f)
                .finish()
                .into_bytes(),
        };
        let mut headers = auth(route);
        if let Some(ct) = CONTENT_TYPES[r.content_type] {
            headers.push(("content-type".into(), ct.as_bytes().to_vec()));
        }
        out.push(Case {
            class: match r.body {
                BodyKind::None => "random-query",
                BodyKind::Json(_) => "random-json",
                BodyKind::Bytes(_) => "random-bytes",
                BodyKind::Form(_) => "random-form",
            },
            route: route.key(),
            method: route.method.clone(),
            target,
            headers,
            body,
            expect: Expect::Below500,
        });
    }
    out
}

/// One request on its own connection, written byte for byte: the response's status
/// and body, or why there was none.
/// A response's status and body, or why there was none.
type Answer = Result<(u16, Vec<u8>), String>;

async fn raw(addr: SocketAddr, case: &Case) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut rd, mut wr) = stream.into_split();
    let mut head = Vec::new();
    head.extend(case.method.as_bytes());
    head.push(b' ');
    head.extend(&case.target);
    head.extend(b" HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n");
    for (k, v) in &case.headers {
        head.extend(k.as_bytes());
        head.extend(b": ");
        head.extend(v);
        head.extend(b"\r\n");
    }
    head.extend(format!("content-length: {}\r\n\r\n", case.body.len()).as_bytes());
    let write = async {
        wr.write_all(&head).await?;
        wr.write_all(&case.body).await?;
        wr.flush().await
    };
    let read = async {
        let mut buf = Vec::new();
        let r = rd.read_to_end(&mut buf).await;
        (buf, r)
    };
    let (_, (buf, read_result)) = tokio::join!(write, read);
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("no response ({read_result:?}, {} bytes)", buf.len()))?;
    let body = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| buf[i + 4..].to_vec())
        .unwrap_or_default();
    Ok((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_malformed_requests_on_every_route_get_no_5xx_and_no_panic() {
    let panics = Arc::new(AtomicUsize::new(0));
    {
        let panics = panics.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            panics.fetch_add(1, Ordering::SeqCst);
            previous(info)
        }));
    }
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            users: 5,
            days: 5,
            events_per_day: 10,
            ..PagerDutyConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let org = "fuzz-fresh-org";
    connect(&stack, org).await.expect("connect PagerDuty");
    stack.tick().await.expect("tick");
    let (status, invite) = {
        let resp = http()
            .post(format!(
                "{}/api/connections/pandadoc/invites",
                stack.api_url()
            ))
            .bearer_auth(stack.token(org, "admin@fuzz.example"))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 201, "{invite}");
    let invite_token = invite["url"]
        .as_str()
        .and_then(|u| u.rsplit('/').next())
        .unwrap()
        .to_string();

    let routes = route_table(&stack);
    let bearer = stack.token(org, "admin@fuzz.example");
    let cases = cases(&routes, &bearer, &invite_token);
    assert!(cases.len() >= TOTAL, "{} cases", cases.len());
    let addr = stack.api.addr;
    let started = Instant::now();
    let results: Vec<(Case, Answer)> =
        futures::stream::iter(cases.into_iter().map(|case| async move {
            let got = tokio::time::timeout(Duration::from_secs(60), raw(addr, &case))
                .await
                .unwrap_or_else(|_| Err("no answer within 60 s".into()));
            (case, got)
        }))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed();

    let mut by_status: std::collections::BTreeMap<u16, usize> = Default::default();
    let mut failures = Vec::new();
    for (case, got) in &results {
        let target = String::from_utf8_lossy(&case.target);
        let shown: String = target.chars().take(120).collect();
        match got {
            Ok((status, body)) => {
                *by_status.entry(*status).or_default() += 1;
                let body: String = String::from_utf8_lossy(body).chars().take(200).collect();
                let bad = match case.expect {
                    Expect::Below500 => *status >= 500,
                    Expect::Status(want) => *status != want,
                };
                if bad {
                    failures.push(format!(
                        "[{}] {} {shown} ({} body bytes) → {status} {body} (wanted {:?})",
                        case.class,
                        case.method,
                        case.body.len(),
                        case.expect
                    ));
                }
            }
            Err(e) => failures.push(format!(
                "[{}] {} {shown} ({} body bytes) → {e}",
                case.class,
                case.method,
                case.body.len()
            )),
        }
    }
    println!(
        "{} requests over {} routes in {:.1} s; statuses: {by_status:?}",
        results.len(),
        routes.len(),
        elapsed.as_secs_f64()
    );
    for r in &routes {
        assert!(
            results.iter().any(|(c, _)| c.route == r.key()),
            "{} not fuzzed",
            r.key()
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} requests failed:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
    assert_eq!(panics.load(Ordering::SeqCst), 0, "panics (see stderr)");
    let (status, overview) = get_json(&stack, org, "/api/overview").await.unwrap();
    assert_eq!(status, 200, "{overview}");
}
