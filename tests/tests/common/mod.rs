//! Helpers shared by the integration tests: a browser-less walk through the
//! sandbox's consent page, and readers for what landed in DynamoDB and moto.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, bail, Context};
pub use seatscope_core::domain::audit::Action;
use seatscope_local::stack::Stack;
use serde_json::Value;

/// A client that does not follow redirects: each hop is checked.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// The consent page's form: its action and hidden fields.
pub struct ConsentForm {
    pub action: String,
    pub fields: Vec<(String, String)>,
}

pub fn parse_consent(html: &str) -> anyhow::Result<ConsentForm> {
    let form_start = html
        .find("<form")
        .ok_or_else(|| anyhow!("no form in the consent page"))?;
    let form_tag_end = html[form_start..]
        .find('>')
        .map(|e| e + form_start)
        .unwrap_or(html.len());
    let action = attr(&html[form_start..form_tag_end], "action")
        .ok_or_else(|| anyhow!("the consent form has no action"))?;
    let mut fields = Vec::new();
    let mut rest = &html[form_start..];
    while let Some(i) = rest.find("<input") {
        let end = rest[i..].find('>').map(|e| e + i).unwrap_or(rest.len());
        let tag = &rest[i..end];
        if let (Some(n), Some(v)) = (attr(tag, "name"), attr(tag, "value")) {
            fields.push((n, v));
        }
        rest = &rest[end..];
        if rest
            .find("</form>")
            .is_some_and(|f| rest.find("<input").is_none_or(|n| n > f))
        {
            break;
        }
    }
    Ok(ConsentForm { action, fields })
}

pub fn location(resp: &reqwest::Response) -> anyhow::Result<String> {
    Ok(resp
        .headers()
        .get("location")
        .ok_or_else(|| anyhow!("no Location header (status {})", resp.status()))?
        .to_str()?
        .to_string())
}

/// What came back from the vendor's consent page: the URL of our callback, and
/// the OAuth binding cookie the connect set (`name=value`), which the browser that
/// started the connect sends back to the callback.
pub struct Consent {
    pub authorize_url: String,
    pub callback_url: String,
    pub cookie: String,
}

impl Consent {
    /// GET the callback URL as the browser that started the connect (with its cookie).
    pub fn callback(&self) -> reqwest::RequestBuilder {
        callback_from(&self.callback_url, Some(&self.cookie))
    }
}

/// GET a callback URL as a browser holding `cookie` (`name=value`), or none.
pub fn callback_from(url: &str, cookie: Option<&str>) -> reqwest::RequestBuilder {
    let req = http().get(url);
    match cookie {
        Some(c) => req.header(reqwest::header::COOKIE, c),
        None => req,
    }
}

/// The OAuth binding cookie a response sets, as `name=value` (what a browser sends
/// back), with its attributes checked: HttpOnly, SameSite=Lax, Path=/, 10 minutes.
pub fn binding_cookie(resp: &reqwest::Response) -> anyhow::Result<String> {
    let set = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("seatscope_oauth=") || v.starts_with("__Host-seatscope_oauth="))
        .ok_or_else(|| anyhow!("no OAuth binding cookie set (status {})", resp.status()))?;
    for attr in ["Path=/", "Max-Age=600", "HttpOnly", "SameSite=Lax"] {
        if !set.split(';').any(|a| a.trim() == attr) {
            bail!("the binding cookie lacks {attr}: {set}");
        }
    }
    Ok(set.split(';').next().unwrap_or_default().to_string())
}

/// POST /api/connections/pagerduty/connect, open the consent page, press a button.
pub async fn consent(stack: &Stack, org: &str, decision: &str) -> anyhow::Result<Consent> {
    consent_to(stack, org, "pagerduty", decision).await
}

/// POST /api/connections/{provider}/connect, open the sandbox's consent page, press a button.
pub async fn consent_to(
    stack: &Stack,
    org: &str,
    provider: &str,
    decision: &str,
) -> anyhow::Result<Consent> {
    consent_returning_to(stack, org, provider, decision, "/connections").await
}

/// As [`consent_to`], with the connect's `return_to`.
pub async fn consent_returning_to(
    stack: &Stack,
    org: &str,
    provider: &str,
    decision: &str,
    return_to: &str,
) -> anyhow::Result<Consent> {
    let client = http();
    let token = stack.token(org, &format!("admin@{org}.example"));
    let resp = client
        .post(format!(
            "{}/api/connections/{provider}/connect",
            stack.api_url()
        ))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "return_to": return_to }))
        .send()
        .await?;
    let status = resp.status();
    let cookie = if status == 200 {
        Some(binding_cookie(&resp)?)
    } else {
        None
    };
    let body: Value = resp.json().await?;
    let Some(cookie) = cookie else {
        bail!("connect answered {status}: {body}");
    };
    let authorize_url = body["authorize_url"]
        .as_str()
        .ok_or_else(|| anyhow!("no authorize_url in {body}"))?
        .to_string();
    let page = client.get(&authorize_url).send().await?;
    if page.status() != 200 {
        bail!("consent page answered {}", page.status());
    }
    let form = parse_consent(&page.text().await?)?;
    let action = url::Url::parse(&authorize_url)?.join(&form.action)?;
    let mut fields = form.fields.clone();
    fields.retain(|(k, _)| k != "decision");
    fields.push(("decision".into(), decision.into()));
    let decided = client.post(action).form(&fields).send().await?;
    if !decided.status().is_redirection() {
        bail!("the consent decision answered {}", decided.status());
    }
    Ok(Consent {
        authorize_url,
        callback_url: location(&decided)?,
        cookie,
    })
}

/// The whole connect: consent approved, callback followed once.
pub async fn connect(stack: &Stack, org: &str) -> anyhow::Result<Consent> {
    connect_to(stack, org, "pagerduty").await
}

/// The whole OAuth connect of `provider`: consent approved, callback followed once.
pub async fn connect_to(stack: &Stack, org: &str, provider: &str) -> anyhow::Result<Consent> {
    let consent = consent_to(stack, org, provider, "approve").await?;
    let resp = consent.callback().send().await?;
    let to = location(&resp).context("the callback did not redirect")?;
    if !to.contains("result=connected") {
        bail!("callback redirected to {to}");
    }
    Ok(consent)
}

pub fn query_value(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `method path` (with a JSON `body`) to the local API as `org`'s admin: the status
/// and the body as text.
pub async fn send_as_admin(
    stack: &Stack,
    org: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut req = http()
        .request(method, format!("{}{path}", stack.api_url()))
        .bearer_auth(stack.token(org, &format!("admin@{org}.example")));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("the local API answers");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

pub async fn get_json(stack: &Stack, org: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    let resp = http()
        .get(format!("{}{path}", stack.api_url()))
        .bearer_auth(stack.token(org, &format!("admin@{org}.example")))
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await?))
}

pub async fn post_json(stack: &Stack, org: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    let resp = http()
        .post(format!("{}{path}", stack.api_url()))
        .bearer_auth(stack.token(org, &format!("admin@{org}.example")))
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await?))
}

/// Every item in the table but the audit trail's entries, as JSON (a test-only
/// Scan): what "nothing changed" compares. A refused attempt writes an entry; the
/// audit tests (`audit.rs`) check those.
#[allow(dead_code)]
pub async fn all_items(stack: &Stack) -> anyhow::Result<Vec<Value>> {
    Ok(every_item(stack)
        .await?
        .into_iter()
        .filter(|i| !is_audit_entry(i))
        .collect())
}

/// Whether a stored item is an audit entry.
pub fn is_audit_entry(item: &Value) -> bool {
    item["pk"].as_str().is_some_and(|pk| pk.ends_with("#AUDIT"))
}

/// The audit entries of the table, newest first.
#[allow(dead_code)]
pub async fn audit_items(stack: &Stack) -> anyhow::Result<Vec<Value>> {
    let mut items: Vec<Value> = every_item(stack)
        .await?
        .into_iter()
        .filter(is_audit_entry)
        .collect();
    items.sort_by(|a, b| b["sk"].as_str().cmp(&a["sk"].as_str()));
    Ok(items)
}

/// Every item in the table, audit entries included, as JSON (a test-only Scan).
pub async fn every_item(stack: &Stack) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = stack
            .dynamodb
            .scan()
            .table_name(&stack.table_name)
            .set_exclusive_start_key(start.take())
            .send()
            .await?;
        for item in page.items.unwrap_or_default() {
            items.push(serde_dynamo::from_item::<_, Value>(item)?);
        }
        match page.last_evaluated_key {
            Some(k) => start = Some(k),
            None => break,
        }
    }
    Ok(items)
}

/// Every item of a partition (all pages), in sort-key order.
pub async fn partition(stack: &Stack, pk: &str) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = stack
            .dynamodb
            .query()
            .table_name(&stack.table_name)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(pk.into()),
            )
            .set_exclusive_start_key(start.take())
            .send()
            .await?;
        for item in page.items.unwrap_or_default() {
            items.push(serde_dynamo::from_item::<_, Value>(item)?);
        }
        match page.last_evaluated_key {
            Some(k) => start = Some(k),
            None => break,
        }
    }
    Ok(items)
}

pub async fn items_with_prefix(
    stack: &Stack,
    pk: &str,
    prefix: &str,
) -> anyhow::Result<Vec<Value>> {
    let out = stack
        .dynamodb
        .query()
        .table_name(&stack.table_name)
        .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.into()))
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S(prefix.into()),
        )
        .send()
        .await?;
    Ok(out
        .items
        .unwrap_or_default()
        .into_iter()
        .map(serde_dynamo::from_item::<_, Value>)
        .collect::<Result<_, _>>()?)
}

pub async fn secret_names(stack: &Stack) -> anyhow::Result<Vec<String>> {
    let out = stack.secrets.list_secrets().max_results(100).send().await?;
    Ok(out
        .secret_list
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| s.name)
        .collect())
}

/// (user, date, feature) → count, from a sandbox's ground truth (non-zero counts).
pub fn truth_counts(
    daily: &[seatscope_sandbox::DayCount],
) -> BTreeMap<(String, String, String), u64> {
    daily
        .iter()
        .filter(|d| d.count > 0)
        .map(|d| {
            (
                (d.user_id.clone(), d.date.clone(), d.feature.clone()),
                u64::from(d.count),
            )
        })
        .collect()
}

/// The prefix of the stored day items (every seat's counts of one day, in parts).
pub const DAY_ITEMS: &str = "ACTIVITY#";

/// A stored day item's counts, seat → feature → count: its `counts_gz` attribute is
/// base64 of gzipped JSON.
pub fn day_item_counts(item: &Value) -> serde_json::Map<String, Value> {
    use base64::Engine as _;
    let text = item["counts_gz"]
        .as_str()
        .expect("a day item has counts_gz");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("counts_gz is base64");
    serde_json::from_reader(flate2::read::GzDecoder::new(bytes.as_slice()))
        .expect("counts_gz is gzipped JSON")
}

/// (user, date, feature) → count, from the stored day items (`DAY_ITEMS`): each holds
/// every seat's counts of its `date`.
pub fn stored_day_counts(items: &[Value]) -> BTreeMap<(String, String, String), u64> {
    let mut out = BTreeMap::new();
    for item in items {
        let Some(date) = item["date"].as_str() else {
            continue;
        };
        for (seat, features) in day_item_counts(item) {
            for (f, c) in features.as_object().into_iter().flatten() {
                let c = c.as_u64().unwrap_or(0);
                if c > 0 {
                    out.insert((seat.to_string(), date.to_string(), f.clone()), c);
                }
            }
        }
    }
    out
}

/// date → (dau, wau, mau) computed from the sandbox's ground truth with the
/// documented definitions, independently of the core's metrics module.
pub fn expected_actives(
    truth: &seatscope_sandbox::GroundTruth,
    dates: &[String],
) -> HashMap<String, (usize, usize, usize)> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let active: Vec<(String, time::Date)> = truth
        .daily
        .iter()
        .filter(|d| d.count > 0)
        .map(|d| {
            (
                d.user_id.clone(),
                time::Date::parse(&d.date, &fmt).expect("date"),
            )
        })
        .collect();
    dates
        .iter()
        .map(|d| {
            let day = time::Date::parse(d, &fmt).expect("date");
            let within = |n: i64| {
                let from = day - time::Duration::days(n - 1);
                active
                    .iter()
                    .filter(|(_, a)| *a >= from && *a <= day)
                    .map(|(u, _)| u.as_str())
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
            };
            (d.clone(), (within(1), within(7), within(30)))
        })
        .collect()
}

/// The overview's card of `provider`.
pub fn card<'a>(overview: &'a Value, provider: &str) -> &'a Value {
    overview["apps"]
        .as_array()
        .expect("the overview lists apps")
        .iter()
        .find(|a| a["provider"] == provider)
        .unwrap_or_else(|| panic!("no {provider} card in {overview}"))
}

/// The fixed days the date-sensitive suites are run again at: a month end, a leap day
/// and the first day of a year (and so the turn of a month and of a year inside their
/// 30- and 90-day windows).
pub const PINNED_DAYS: [&str; 3] = ["2027-01-31", "2028-02-29", "2029-01-01"];

/// Runs the named tests of this test binary again, each day of `days` in its own child
/// process with `SEATSCOPE_TODAY` set to it (the sandboxes' data ends then and the
/// functions' clock reads it), and fails with the child's output unless every named
/// test passed at every day.
pub fn rerun_at_days(tests: &[&str], days: &[&str]) {
    let exe = std::env::current_exe().expect("this test binary's path");
    for day in days {
        let out = std::process::Command::new(&exe)
            .args(tests)
            .args(["--exact", "--test-threads=2", "--nocapture"])
            .env(seatscope_sandbox::clock::TODAY_VAR, day)
            .output()
            .expect("the test binary runs again");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let passed = format!("test result: ok. {} passed; 0 failed", tests.len());
        assert!(
            out.status.success() && stdout.contains(&passed),
            "at {day}, {tests:?} did not all pass:\n{stdout}\n{stderr}"
        );
        println!("at {day}: {} passed", tests.len());
    }
}

/// The audit entry of a change a test makes straight through the store (as a tool
/// would: `AuditScope::tool`).
#[allow(dead_code)]
pub fn tool_entry(
    stack: &Stack,
    org: &str,
    action: Action,
) -> seatscope_core::domain::audit::AuditEntry {
    let org = seatscope_core::domain::org::OrgId::parse(org).expect("a valid org id");
    seatscope_core::domain::audit::AuditScope::tool(&org, action, stack.now())
        .done(Default::default())
}

/// A small stack (PagerDuty: 4 users, 5 days) with roles on: `ROLE_CLAIM=groups`,
/// `ADMIN_VALUES=seatscope-admins` (the dev issuer's admin and viewer tokens).
#[allow(dead_code)]
pub async fn stack_with_roles() -> Stack {
    Stack::start(seatscope_local::stack::StackOptions {
        sandbox: seatscope_sandbox::PagerDutyConfig {
            users: 4,
            days: 5,
            events_per_day: 10,
            ..seatscope_sandbox::PagerDutyConfig::default()
        },
        extra_env: vec![
            (
                "ROLE_CLAIM".into(),
                seatscope_local::dev_issuer::ROLE_CLAIM.into(),
            ),
            (
                "ADMIN_VALUES".into(),
                seatscope_local::dev_issuer::ADMIN_GROUP.into(),
            ),
        ],
        ..seatscope_local::stack::StackOptions::default()
    })
    .await
    .expect("the local stack starts")
}

/// `method path` with `token` (and a JSON body): the status and the body's text.
#[allow(dead_code)]
pub async fn send_as(
    stack: &Stack,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    let mut req = http()
        .request(m, format!("{}{path}", stack.api_url()))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// `org` as the store takes it (a test's org ids are all valid).
#[allow(dead_code)]
pub fn org_id(org: &str) -> seatscope_core::domain::OrgId {
    seatscope_core::domain::OrgId::parse(org).expect("a valid org id")
}
