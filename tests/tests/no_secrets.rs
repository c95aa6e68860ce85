//! No secret anywhere: a full run against the local stack over real HTTP (OAuth
//! connect of PagerDuty and PandaDoc, API-key connect of SendGrid, an invite created,
//! continued and called back, a sync, a forced token refresh, disconnects) with our
//! crates logging at DEBUG into a buffer this test owns. Every secret issued in the
//! run (access and refresh tokens, the API key, the OAuth client secrets, codes,
//! states, invite tokens, cookies, bearer JWTs) is then searched for in the captured
//! logs, the emulators' log files, full Scans of the table taken along the way and
//! every response body of our API: 0 occurrences, except each value in the one
//! response that hands it out (the connect answer carries the authorize URL and its
//! state; the invite answer carries the invite link).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::*;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::pandadoc::PandaDocConfig;
use seatscope_sandbox::{PagerDutyConfig, SendGridSandboxKey};
use serde_json::{json, Value};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const ORG: &str = "nosecret-one";
const INVITED_ORG: &str = "nosecret-two";

/// Everything the test process logs through `tracing`.
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

/// Our crates at DEBUG, with the product's own filter (other crates capped at INFO),
/// every field and span written: installed before anything else logs, so the
/// functions' `telemetry::init` (try_init) keeps it.
fn capture_logs() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_target(true)
                .with_writer(move || writer.clone()),
        )
        .with(seatscope_core::telemetry::log_filter("debug"))
        .try_init()
        .expect("the capturing subscriber is the process's first");
    seatscope_core::telemetry::init();
    tracing::debug!(target: "seatscope_core::probe", "debug reaches our crates");
    captured
}

struct Secret {
    what: String,
    value: String,
    /// The response (label) that hands the value out, where it may appear.
    issued_by: Option<String>,
}

struct Flow {
    api: String,
    client: reqwest::Client,
    /// Cookies our API set, sent back to it as a browser would.
    cookies: Mutex<BTreeMap<String, String>>,
    /// Label → body, every response of our API.
    bodies: Mutex<Vec<(String, String)>>,
    secrets: Mutex<Vec<Secret>>,
}

struct Got {
    label: String,
    status: u16,
    location: Option<String>,
    body: String,
}

enum Payload {
    None,
    Json(Value),
    Form(Vec<(String, String)>),
}

impl Flow {
    fn secret(&self, what: impl Into<String>, value: &str, issued_by: Option<&str>) {
        let mut secrets = self.secrets.lock().unwrap();
        if secrets.iter().any(|s| s.value == value) {
            return;
        }
        secrets.push(Secret {
            what: what.into(),
            value: value.to_string(),
            issued_by: issued_by.map(str::to_string),
        });
    }

    async fn send(&self, method: &str, url: &str, bearer: Option<&str>, payload: Payload) -> Got {
        let ours = url.starts_with(&self.api);
        let mut req = self
            .client
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if ours {
            let jar = self.cookies.lock().unwrap();
            if !jar.is_empty() {
                let header: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
                req = req.header("cookie", header.join("; "));
            }
        }
        req = match payload {
            Payload::None => req,
            Payload::Json(v) => req.json(&v),
            Payload::Form(f) => req.form(&f),
        };
        let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let label = {
            let n = self.bodies.lock().unwrap().len();
            let path = url.strip_prefix(&self.api).unwrap_or(url);
            let path: String = path.split('?').next().unwrap_or_default().chars().collect();
            format!("#{n} {method} {path}")
        };
        if ours {
            for v in resp.headers().get_all("set-cookie") {
                let v = v.to_str().unwrap_or_default();
                let pair = v.split(';').next().unwrap_or_default();
                if let Some((name, value)) = pair.split_once('=') {
                    let mut jar = self.cookies.lock().unwrap();
                    if value.is_empty() || v.to_ascii_lowercase().contains("max-age=0") {
                        jar.remove(name.trim());
                    } else {
                        jar.insert(name.trim().to_string(), value.to_string());
                        drop(jar);
                        if value.len() >= 8 {
                            self.secret(format!("cookie {name}"), value, None);
                        }
                    }
                }
            }
        }
        let body = resp.text().await.unwrap_or_default();
        if ours {
            self.bodies
                .lock()
                .unwrap()
                .push((label.clone(), body.clone()));
        }
        Got {
            label,
            status,
            location,
            body,
        }
    }

    /// The vendor's consent page at `authorize_url`, approved: our callback's URL.
    async fn approve(&self, authorize_url: &str) -> String {
        let page = self.send("GET", authorize_url, None, Payload::None).await;
        assert_eq!(page.status, 200, "consent page");
        let form = parse_consent(&page.body).unwrap();
        let action = url::Url::parse(authorize_url)
            .unwrap()
            .join(&form.action)
            .unwrap();
        let mut fields = form.fields.clone();
        fields.retain(|(k, _)| k != "decision");
        fields.push(("decision".into(), "approve".into()));
        let decided = self
            .send("POST", action.as_str(), None, Payload::Form(fields))
            .await;
        let callback = decided.location.expect("the consent redirects");
        if let Some(code) = query_value(&callback, "code") {
            self.secret("OAuth code", &code, None);
        }
        if let Some(state) = query_value(&callback, "state") {
            self.secret("OAuth state (callback)", &state, None);
        }
        callback
    }

    /// Our callback, followed once: it must report the connection.
    async fn callback(&self, callback_url: &str) {
        let got = self.send("GET", callback_url, None, Payload::None).await;
        // Back to the dashboard, or (an invite's admin) a page saying so.
        let to = got.location.unwrap_or_default();
        assert!(
            (got.status == 302 && to.contains("result=connected"))
                || (got.status == 200 && got.body.contains("is connected")),
            "callback → {} {to}",
            got.status
        );
    }

    async fn oauth_connect(&self, bearer: &str, provider: &str) {
        let got = self
            .send(
                "POST",
                &format!("{}/api/connections/{provider}/connect", self.api),
                Some(bearer),
                Payload::Json(json!({"return_to": "/connections"})),
            )
            .await;
        assert_eq!(got.status, 200, "{}", got.body);
        let body: Value = serde_json::from_str(&got.body).unwrap();
        let authorize_url = body["authorize_url"].as_str().unwrap().to_string();
        let state = query_value(&authorize_url, "state").expect("a state");
        self.secret(
            format!("OAuth state ({provider})"),
            &state,
            Some(&got.label),
        );
        let callback = self.approve(&authorize_url).await;
        self.callback(&callback).await;
    }
}

/// A field of a stored secret that holds a credential (not `scope`, `kind` …).
fn is_credential(field: &str) -> bool {
    ["token", "key", "secret", "password"]
        .iter()
        .any(|w| field.contains(w))
}

/// Every secret stored under our orgs, as (name, field, value) for each string.
async fn stored_secrets(stack: &Stack) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for name in secret_names(stack).await.unwrap() {
        let value = stack
            .secrets
            .get_secret_value()
            .secret_id(&name)
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap_or_default()
            .to_string();
        match serde_json::from_str::<Value>(&value) {
            Ok(Value::Object(map)) => {
                for (k, v) in map {
                    if let Some(s) = v.as_str() {
                        out.push((name.clone(), k, s.to_string()));
                    }
                }
            }
            _ => out.push((name.clone(), "value".into(), value)),
        }
    }
    out
}

async fn age_stored_token(stack: &Stack, org: &str, provider: &str) {
    let id = format!("seatscope/dev/{org}/{provider}");
    let out = stack
        .secrets
        .get_secret_value()
        .secret_id(&id)
        .send()
        .await
        .unwrap();
    let mut secret: Value = serde_json::from_str(out.secret_string().unwrap()).unwrap();
    let now = stack.now().unix_timestamp();
    secret["obtained_at"] = json!(now - 3_600);
    secret["expires_at"] = json!(now + 60);
    stack
        .secrets
        .put_secret_value()
        .secret_id(&id)
        .secret_string(secret.to_string())
        .send()
        .await
        .unwrap();
}

/// The forms a value can take in a log line or a URL.
fn forms(value: &str) -> Vec<String> {
    let mut out = vec![value.to_string()];
    let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    if encoded != value {
        out.push(encoded);
    }
    let escaped = serde_json::to_string(value).unwrap();
    let escaped = escaped.trim_matches('"').to_string();
    if escaped != value {
        out.push(escaped);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_key_code_state_or_jwt_of_a_full_run_is_in_logs_table_or_responses() {
    let logs = capture_logs();
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            users: 5,
            days: 5,
            events_per_day: 10,
            ..PagerDutyConfig::default()
        },
        pandadoc: PandaDocConfig {
            users: 6,
            days: 5,
            events_per_day: 4,
            ..PandaDocConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let api = stack.api_url();
    let flow = Flow {
        api: api.clone(),
        client: http(),
        cookies: Mutex::new(BTreeMap::new()),
        bodies: Mutex::new(Vec::new()),
        secrets: Mutex::new(Vec::new()),
    };
    flow.secret(
        "PagerDuty OAuth client secret",
        &PagerDutyConfig::default().client_secret,
        None,
    );
    flow.secret(
        "PandaDoc OAuth client secret",
        &PandaDocConfig::default().client_secret,
        None,
    );
    let bearer = stack.token(ORG, &format!("admin@{ORG}.example"));
    let invited_bearer = stack.token(INVITED_ORG, &format!("it@{INVITED_ORG}.example"));
    flow.secret("bearer JWT (org one)", &bearer, None);
    flow.secret("bearer JWT (org two)", &invited_bearer, None);
    let mut scans: Vec<(&str, String)> = Vec::new();

    // OAuth connects.
    flow.oauth_connect(&bearer, "pagerduty").await;
    flow.oauth_connect(&bearer, "pandadoc").await;
    // API-key connect.
    let key = SendGridSandboxKey::full().key;
    flow.secret("SendGrid API key", &key, None);
    let got = flow
        .send(
            "POST",
            &format!("{api}/api/connections/sendgrid/api-key"),
            Some(&bearer),
            Payload::Json(json!({ "api_key": key })),
        )
        .await;
    assert_eq!(got.status, 200, "api-key connect");

    // An invite: created, opened, continued to the vendor, approved, called back.
    let got = flow
        .send(
            "POST",
            &format!("{api}/api/connections/pandadoc/invites"),
            Some(&invited_bearer),
            Payload::None,
        )
        .await;
    assert_eq!(got.status, 201, "{}", got.body);
    let invite_url = serde_json::from_str::<Value>(&got.body).unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let invite_token = invite_url.rsplit('/').next().unwrap().to_string();
    flow.secret("invite token", &invite_token, Some(&got.label));
    let opened = flow.send("GET", &invite_url, None, Payload::None).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    scans.push(("after the connects", dump(&stack).await));
    let continued = flow
        .send(
            "POST",
            &invite_url,
            None,
            Payload::Form(vec![("continue".into(), "1".into())]),
        )
        .await;
    assert_eq!(continued.status, 302, "{}", continued.body);
    let authorize_url = continued.location.unwrap();
    flow.secret(
        "OAuth state (invite)",
        &query_value(&authorize_url, "state").unwrap(),
        None,
    );
    scans.push(("with an invite's consent pending", dump(&stack).await));
    let callback = flow.approve(&authorize_url).await;
    flow.callback(&callback).await;

    // Sync.
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 4, "{report}");
    let mut tokens_seen = 0;
    for (name, field, value) in stored_secrets(&stack).await {
        if name.contains("/nosecret-") && is_credential(&field) {
            flow.secret(format!("{name} {field}"), &value, None);
            tokens_seen += 1;
        }
    }
    assert!(tokens_seen >= 7, "{tokens_seen} stored secret values");

    // A forced refresh of both OAuth connections.
    let before = stored_secrets(&stack).await;
    for provider in ["pagerduty", "pandadoc"] {
        age_stored_token(&stack, ORG, provider).await;
    }
    stack.sandbox.expire_access_tokens();
    stack.pandadoc.expire_access_tokens();
    for provider in ["pagerduty", "pandadoc"] {
        let got = flow
            .send(
                "POST",
                &format!("{api}/api/connections/{provider}/sync"),
                Some(&bearer),
                Payload::None,
            )
            .await;
        assert_eq!(got.status, 202, "{}", got.body);
    }
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 2, "{report}");
    let after = stored_secrets(&stack).await;
    for provider in ["pagerduty", "pandadoc"] {
        let access = |all: &[(String, String, String)]| {
            all.iter()
                .find(|(n, f, _)| n.ends_with(&format!("{ORG}/{provider}")) && f == "access_token")
                .map(|(_, _, v)| v.clone())
        };
        assert_ne!(access(&before), access(&after), "{provider} refreshed");
    }
    for (name, field, value) in after {
        if name.contains("/nosecret-") && is_credential(&field) {
            flow.secret(format!("{name} {field} (refreshed)"), &value, None);
        }
    }
    scans.push(("after the sync and the refresh", dump(&stack).await));

    // What the dashboard reads.
    for path in [
        "/api/overview",
        "/api/apps/pagerduty",
        "/api/apps/pagerduty/seats",
        "/api/apps/pandadoc",
        "/api/apps/sendgrid",
        "/api/apps/sendgrid/export/seats.csv",
        "/api/apps/pagerduty/export/trends.csv",
        "/api/apps/pagerduty/settings",
    ] {
        let got = flow
            .send("GET", &format!("{api}{path}"), Some(&bearer), Payload::None)
            .await;
        assert_eq!(got.status, 200, "{path}");
    }

    // Disconnects.
    for (org_bearer, provider, purge) in [
        (&bearer, "pagerduty", "true"),
        (&bearer, "pandadoc", "false"),
        (&bearer, "sendgrid", "true"),
        (&invited_bearer, "pandadoc", "true"),
    ] {
        let got = flow
            .send(
                "DELETE",
                &format!("{api}/api/connections/{provider}?purge={purge}"),
                Some(org_bearer),
                Payload::None,
            )
            .await;
        assert_eq!(got.status, 200, "disconnect {provider}: {}", got.body);
    }
    scans.push(("at the end", dump(&stack).await));

    // Where to look.
    let mut places: Vec<(String, String)> = Vec::new();
    let captured = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(
        captured.contains("DEBUG seatscope_core::probe: debug reaches our crates"),
        "the capture holds DEBUG lines of our crates"
    );
    places.push(("the test process's logs (DEBUG)".into(), captured.clone()));
    let logs_dir = seatscope_local::stack::workspace_root().join(".local/logs");
    let mut emulator_files = vec![stack.aws.dynamodb.log.clone(), stack.aws.moto.log.clone()];
    for entry in std::fs::read_dir(&logs_dir).into_iter().flatten().flatten() {
        if !emulator_files.contains(&entry.path()) {
            emulator_files.push(entry.path());
        }
    }
    for file in &emulator_files {
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap_or_default()).to_string();
        places.push((format!("{}", file.display()), text));
    }
    for (when, scan) in &scans {
        places.push((format!("the table's Scan {when}"), scan.clone()));
    }
    let bodies = flow.bodies.lock().unwrap().clone();

    let secrets = flow.secrets.lock().unwrap();
    let mut found = Vec::new();
    for s in secrets.iter() {
        assert!(s.value.len() >= 8, "{} is too short to search", s.what);
        for form in forms(&s.value) {
            for (place, text) in &places {
                let n = text.matches(form.as_str()).count();
                if n > 0 {
                    found.push(format!("{} ×{n} in {place}", s.what));
                }
            }
            for (label, body) in &bodies {
                if Some(label) == s.issued_by.as_ref() {
                    // The search works: the value is where it was handed out.
                    assert!(
                        form != s.value || body.contains(&s.value),
                        "{} is not in {label}, which issued it",
                        s.what
                    );
                    continue;
                }
                if body.contains(form.as_str()) {
                    found.push(format!("{} in the response body of {label}", s.what));
                }
            }
        }
    }
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for s in secrets.iter() {
        let kind = s
            .what
            .split(" (")
            .next()
            .unwrap_or_default()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_string();
        *kinds.entry(kind).or_default() += 1;
    }
    println!(
        "{} secrets ({kinds:?}) searched in {} log lines, {} emulator log files, {} scans, {} response bodies",
        secrets.len(),
        captured.lines().count(),
        emulator_files.len(),
        scans.len(),
        bodies.len()
    );
    for s in secrets.iter() {
        println!("  {} ({} chars)", s.what, s.value.len());
    }
    assert!(found.is_empty(), "secrets found:\n{}", found.join("\n"));
}

async fn dump(stack: &Stack) -> String {
    serde_json::to_string(&every_item(stack).await.unwrap()).unwrap()
}
