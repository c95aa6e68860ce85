//! A local stand-in for API Gateway (HTTP API) and EventBridge: reads the routes
//! and the schedule from template.yaml, verifies bearer tokens like the JWT
//! authorizer (against the dev OIDC issuer's JWKS, see `dev_issuer`), turns each
//! request into an API Gateway v2.0 event (the JSON `sam local` would send), parses
//! it with `lambda_http::request::from_str` and calls the function's `handle`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use axum::body::Body as AxumBody;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use lambda_http::Body;
use seatscope_core::ops::sync::TickReport;
use seatscope_core::Deps;
use serde_json::{json, Value};
use time::OffsetDateTime;

/// The local run's bearer tokens: minted by the dev OIDC issuer, verified through its JWKS.
pub use crate::dev_issuer::DevAuth;
use crate::worker::LocalSyncWorker;

/// The function a route or schedule invokes, by its binary name in template.yaml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Function {
    ConnectStart,
    OAuthCallback,
    ScheduledSync,
    DashboardApi,
}

impl Function {
    pub const ALL: [Function; 4] = [
        Function::ConnectStart,
        Function::OAuthCallback,
        Function::ScheduledSync,
        Function::DashboardApi,
    ];

    pub fn binary(self) -> &'static str {
        match self {
            Function::ConnectStart => "connect-start",
            Function::OAuthCallback => "oauth-callback",
            Function::ScheduledSync => "scheduled-sync",
            Function::DashboardApi => "dashboard-api",
        }
    }

    pub fn from_binary(name: &str) -> anyhow::Result<Function> {
        Ok(match name {
            "connect-start" => Function::ConnectStart,
            "oauth-callback" => Function::OAuthCallback,
            "scheduled-sync" => Function::ScheduledSync,
            "dashboard-api" => Function::DashboardApi,
            other => bail!("template.yaml names a binary the local runner does not know: {other}"),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    pub method: String,
    /// e.g. `/api/apps/{provider}`
    pub path: String,
    pub function: Function,
    /// False for `Auth: {Authorizer: NONE}`.
    pub authorized: bool,
    /// The HttpApi's throttle for this route: its `RouteSettings` entry, else its
    /// `DefaultRouteSettings` (none: unthrottled).
    pub throttle: Option<Throttle>,
}

/// API Gateway's route throttling: a token bucket of `burst` requests, refilled at
/// `rate_per_second`, shared by every client of the route; past it, 429.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    pub rate_per_second: f64,
    pub burst: u32,
}

impl Throttle {
    fn from_settings(settings: &serde_yaml::Value) -> Option<Throttle> {
        let number = |k: &str| {
            settings.get(k).and_then(|v| match v {
                serde_yaml::Value::Number(n) => n.as_f64(),
                other => plain(other).and_then(|s| s.parse().ok()),
            })
        };
        Some(Throttle {
            rate_per_second: number("ThrottlingRateLimit")?,
            burst: number("ThrottlingBurstLimit")? as u32,
        })
    }

    fn limiter(&self) -> Option<governor::DefaultDirectRateLimiter> {
        let burst = std::num::NonZeroU32::new(self.burst)?;
        let period = std::time::Duration::from_secs_f64(1.0 / self.rate_per_second.max(1e-3));
        let quota = governor::Quota::with_period(period)?.allow_burst(burst);
        Some(governor::RateLimiter::direct(quota))
    }
}

/// The throttles of the template's `AWS::Serverless::HttpApi`: its default, and its
/// per-route settings keyed by route key (`GET /oauth/callback`).
fn http_api_throttles(
    resources: &serde_yaml::Mapping,
) -> (Option<Throttle>, HashMap<String, Throttle>) {
    let mut default = None;
    let mut per_route = HashMap::new();
    for (_, resource) in resources {
        if resource.get("Type").and_then(plain).as_deref() != Some("AWS::Serverless::HttpApi") {
            continue;
        }
        let props = resource.get("Properties");
        default = props
            .and_then(|p| p.get("DefaultRouteSettings"))
            .and_then(Throttle::from_settings);
        if let Some(routes) = props
            .and_then(|p| p.get("RouteSettings"))
            .and_then(|r| r.as_mapping())
        {
            for (key, settings) in routes {
                if let (Some(key), Some(t)) = (plain(key), Throttle::from_settings(settings)) {
                    per_route.insert(key, t);
                }
            }
        }
    }
    (default, per_route)
}

impl Route {
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// A greedy path variable (`/api/{proxy+}`) or the `ANY` method: API Gateway
    /// picks such a route only when no route matches the method and path exactly.
    fn is_catch_all(&self) -> bool {
        self.method == "ANY" || self.path.ends_with("+}")
    }

    /// Path parameters if `path` matches this route's template. `ANY` matches every
    /// method; a last segment `{name+}` matches one or more segments.
    fn matches(&self, method: &str, path: &str) -> Option<HashMap<String, String>> {
        if self.method != "ANY" && !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let want: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        let got: Vec<&str> = path.trim_matches('/').split('/').collect();
        let greedy = want
            .last()
            .and_then(|w| w.strip_prefix('{'))
            .and_then(|w| w.strip_suffix("+}"));
        if let Some(name) = greedy {
            let fixed = want.len() - 1;
            if got.len() <= fixed || got[fixed..].iter().all(|g| g.is_empty()) {
                return None;
            }
            let mut params = HashMap::new();
            for (w, g) in want[..fixed].iter().zip(&got) {
                if w != g {
                    return None;
                }
            }
            params.insert(name.to_string(), percent_decode(&got[fixed..].join("/")));
            return Some(params);
        }
        if want.len() != got.len() {
            return None;
        }
        let mut params = HashMap::new();
        for (w, g) in want.iter().zip(&got) {
            if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                if g.is_empty() {
                    return None;
                }
                params.insert(name.to_string(), percent_decode(g));
            } else if w != g {
                return None;
            }
        }
        Some(params)
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// Routes and schedules declared in template.yaml.
#[derive(Debug, Clone)]
pub struct TemplateRoutes {
    pub routes: Vec<Route>,
    /// Schedule expressions of the scheduled-sync function.
    pub schedules: Vec<String>,
}

/// YAML with CloudFormation short-form tags (`!Ref`, `!Sub` …) comes back as
/// tagged values; for routes we only need plain strings.
fn plain(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Tagged(t) => plain(&t.value),
        _ => None,
    }
}

impl TemplateRoutes {
    pub fn load(template: &Path) -> anyhow::Result<TemplateRoutes> {
        let text = std::fs::read_to_string(template)
            .with_context(|| format!("reading {}", template.display()))?;
        let doc: serde_yaml::Value = serde_yaml::from_str(&text)
            .with_context(|| format!("parsing {}", template.display()))?;
        let resources = doc
            .get("Resources")
            .and_then(|r| r.as_mapping())
            .ok_or_else(|| anyhow!("template.yaml has no Resources"))?;
        let mut routes = Vec::new();
        let mut schedules = Vec::new();
        let (default_throttle, route_throttles) = http_api_throttles(resources);
        for (id, resource) in resources {
            if resource.get("Type").and_then(plain).as_deref() != Some("AWS::Serverless::Function")
            {
                continue;
            }
            let id = plain(id).unwrap_or_default();
            let binary = resource
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(plain)
                .ok_or_else(|| anyhow!("{id} has no Metadata.BuildProperties.Binary"))?;
            let function = Function::from_binary(&binary)?;
            let events = resource
                .get("Properties")
                .and_then(|p| p.get("Events"))
                .and_then(|e| e.as_mapping());
            for (_, event) in events.into_iter().flatten() {
                let props = event.get("Properties");
                match event.get("Type").and_then(plain).as_deref() {
                    Some("HttpApi") => {
                        let get = |k: &str| props.and_then(|p| p.get(k)).and_then(plain);
                        let authorizer = props
                            .and_then(|p| p.get("Auth"))
                            .and_then(|a| a.get("Authorizer"))
                            .and_then(plain);
                        let method = get("Method")
                            .ok_or_else(|| anyhow!("{id}: an HttpApi event has no Method"))?
                            .to_uppercase();
                        let path = get("Path")
                            .ok_or_else(|| anyhow!("{id}: an HttpApi event has no Path"))?;
                        let throttle = route_throttles
                            .get(&format!("{method} {path}"))
                            .copied()
                            .or(default_throttle);
                        routes.push(Route {
                            method,
                            path,
                            function,
                            authorized: authorizer.as_deref() != Some("NONE"),
                            throttle,
                        });
                    }
                    Some("Schedule") | Some("ScheduleV2") => {
                        let expr = props
                            .and_then(|p| p.get("Schedule").or_else(|| p.get("ScheduleExpression")))
                            .map(|v| plain(v).unwrap_or_else(|| format!("{v:?}")))
                            .unwrap_or_default();
                        schedules.push(expr);
                    }
                    _ => {}
                }
            }
        }
        if routes.is_empty() {
            bail!("template.yaml declares no HttpApi routes");
        }
        Ok(TemplateRoutes { routes, schedules })
    }
}

/// `METHOD /path` of every operation in HttpApi's explicit `DefinitionBody`.
/// SAM merges each HttpApi event into that body; an event missing from it brings
/// back the Function → HttpApi → Function cycle (see template.yaml), so the two
/// lists must be equal.
pub fn definition_body_routes(template: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(template)
        .with_context(|| format!("reading {}", template.display()))?;
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&text).with_context(|| format!("parsing {}", template.display()))?;
    let paths = doc
        .get("Resources")
        .and_then(|r| r.as_mapping())
        .into_iter()
        .flatten()
        .filter(|(_, r)| {
            r.get("Type").and_then(plain).as_deref() == Some("AWS::Serverless::HttpApi")
        })
        .filter_map(|(_, r)| {
            r.get("Properties")?
                .get("DefinitionBody")?
                .get("paths")?
                .as_mapping()
        })
        .flatten();
    let mut routes = Vec::new();
    for (path, operations) in paths {
        let path = plain(path).ok_or_else(|| anyhow!("a DefinitionBody path is not a string"))?;
        for (method, _) in operations.as_mapping().into_iter().flatten() {
            let method = plain(method).unwrap_or_default();
            // OpenAPI has no ANY: API Gateway's extension stands for it.
            let method = match method.as_str() {
                "x-amazon-apigateway-any-method" => "ANY".to_string(),
                other => other.to_uppercase(),
            };
            routes.push(format!("{method} {path}"));
        }
    }
    routes.sort();
    Ok(routes)
}

struct Gateway {
    deps: Arc<Deps>,
    routes: Vec<Route>,
    /// One bucket per route (by index in `routes`), as API Gateway keeps them.
    limiters: Vec<Option<governor::DefaultDirectRateLimiter>>,
    auth: DevAuth,
    worker: LocalSyncWorker,
}

/// A running local API.
pub struct LocalApi {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl LocalApi {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for LocalApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves the template's routes on `listener`, plus `POST /_local/tick` (fires the
/// schedule now, lets the worker drain the queue and returns the combined report)
/// and the dev OIDC issuer under its path (`/dev-issuer`), which no route can shadow.
pub async fn serve(
    listener: tokio::net::TcpListener,
    deps: Arc<Deps>,
    routes: Vec<Route>,
    auth: DevAuth,
    worker: LocalSyncWorker,
) -> anyhow::Result<LocalApi> {
    let addr = listener.local_addr()?;
    let limiters = routes
        .iter()
        .map(|r| r.throttle.and_then(|t| t.limiter()))
        .collect();
    let gateway = Arc::new(Gateway {
        deps,
        limiters,
        routes,
        auth: auth.clone(),
        worker,
    });
    let router = axum::Router::new()
        .merge(auth.router())
        .route("/_local/tick", axum::routing::post(tick_route))
        .fallback(dispatch)
        .with_state(gateway);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "local API stopped");
        }
    });
    Ok(LocalApi { addr, task })
}

async fn tick_route(State(gw): State<Arc<Gateway>>) -> Response {
    match tick(&gw.deps, &gw.worker).await {
        Ok(report) => axum::Json(report).into_response(),
        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// One EventBridge tick (the scheduled event JSON handed to scheduled-sync, which
/// enqueues the due connections), then the queue drained through the worker until
/// it is empty, as Lambda's event source mapping would: the combined report.
pub async fn tick(deps: &Arc<Deps>, worker: &LocalSyncWorker) -> anyhow::Result<Value> {
    let mut report = enqueue_tick(deps).await?;
    report.add(&worker.drain(deps).await?);
    Ok(serde_json::to_value(report)?)
}

/// Only the EventBridge tick: claims and enqueues the due connections.
pub async fn enqueue_tick(deps: &Deps) -> anyhow::Result<TickReport> {
    let event = scheduled_event();
    let lambda_event = lambda_runtime::LambdaEvent::new(
        serde_json::from_value(event)?,
        lambda_runtime::Context::default(),
    );
    match crate::iam::acting_as(
        Function::ScheduledSync,
        scheduled_sync::handle(deps, lambda_event),
    )
    .await
    .map_err(|e| anyhow!("scheduled-sync failed: {}", e.0))?
    {
        scheduled_sync::SyncResponse::Tick(report) => Ok(report),
        scheduled_sync::SyncResponse::Batch(_) => {
            bail!("scheduled-sync answered the scheduled event like an SQS batch")
        }
    }
}

pub fn scheduled_event() -> Value {
    let now = seatscope_core::domain::rfc3339(OffsetDateTime::now_utc());
    json!({
        "version": "0",
        "id": format!("local-{}", OffsetDateTime::now_utc().unix_timestamp_nanos()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": now,
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/seatscope-local-sync"],
        "detail": {}
    })
}

fn unauthorized() -> Response {
    // What API Gateway's JWT authorizer answers, before the function runs.
    (
        axum::http::StatusCode::UNAUTHORIZED,
        [("content-type", "application/json")],
        r#"{"message":"Unauthorized"}"#,
    )
        .into_response()
}

async fn dispatch(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    match dispatch_inner(&gw, req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "local gateway error");
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                [("content-type", "application/json")],
                r#"{"message":"Internal Server Error"}"#,
            )
                .into_response()
        }
    }
}

/// Lambda's synchronous invocation payload limit (6 MB): a bigger request body is
/// refused with 413 before the authorizer or the function, as AWS does.
pub const PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;

fn too_large() -> Response {
    (
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        [("content-type", "application/json")],
        r#"{"message":"Request Entity Too Large"}"#,
    )
        .into_response()
}

async fn dispatch_inner(gw: &Gateway, req: Request) -> anyhow::Result<Response> {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, PAYLOAD_LIMIT).await else {
        return Ok(too_large());
    };
    let req = Request::from_parts(parts, AxumBody::from(bytes));
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    // API Gateway's order: a route matching the method and path exactly, then one
    // with a greedy path variable (or ANY), then none (its 404).
    let find = |catch_all: bool| {
        gw.routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_catch_all() == catch_all)
            .find_map(|(i, r)| r.matches(&method, &path).map(|p| (i, r, p)))
    };
    let Some((index, route, params)) = find(false).or_else(|| find(true)) else {
        return Ok((
            axum::http::StatusCode::NOT_FOUND,
            [("content-type", "application/json")],
            r#"{"message":"Not Found"}"#,
        )
            .into_response());
    };
    // Throttling comes first, before the authorizer and the function.
    if let Some(Some(limiter)) = gw.limiters.get(index) {
        if limiter.check().is_err() {
            return Ok((
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                [("content-type", "application/json")],
                r#"{"message":"Too Many Requests"}"#,
            )
                .into_response());
        }
    }
    let claims = if route.authorized {
        let bearer = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        let claims = match bearer {
            Some(b) => gw.auth.verify(b.trim()).await,
            None => None,
        };
        match claims {
            Some(c) => Some(c),
            None => return Ok(unauthorized()),
        }
    } else {
        None
    };
    let event = to_event(req, route, params, claims).await?;
    let request = lambda_http::request::from_str(&event.to_string())
        .map_err(|e| anyhow!("the v2 event did not parse: {e}"))?;
    let deps = &gw.deps;
    // As the route's function: its AWS calls are checked against its role (`iam`).
    let response = crate::iam::acting_as(route.function, async {
        match route.function {
            Function::ConnectStart => connect_start::handle(deps, request).await,
            Function::OAuthCallback => oauth_callback::handle(deps, request).await,
            Function::DashboardApi => dashboard_api::handle(deps, request).await,
            Function::ScheduledSync => Err("scheduled-sync has no HTTP route".into()),
        }
    })
    .await
    .map_err(|e| anyhow!("handler error: {e}"))?;
    Ok(from_lambda(response))
}

/// Content types HTTP API passes to Lambda as text; it base64-encodes the rest.
fn is_text(content_type: &str) -> bool {
    let t = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    t.starts_with("text/")
        || t == "application/json"
        || t.ends_with("+json")
        || t == "application/xml"
        || t.ends_with("+xml")
        || t == "application/javascript"
}

/// The API Gateway HTTP API payload format 2.0 for this request.
async fn to_event(
    req: Request,
    route: &Route,
    params: HashMap<String, String>,
    claims: Option<BTreeMap<String, String>>,
) -> anyhow::Result<Value> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, PAYLOAD_LIMIT).await?;
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).to_string();
        if name.as_str() == "cookie" {
            cookies.extend(value.split(';').map(|c| c.trim().to_string()));
            continue;
        }
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value)
            })
            .or_insert(value);
    }
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        query
            .entry(k.into_owned())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v)
            })
            .or_insert_with(|| v.into_owned());
    }
    // Like HTTP API: text bodies as they are, anything else (a browser's form post
    // included) base64-encoded with isBase64Encoded.
    let text = headers.get("content-type").is_none_or(|t| is_text(t));
    let (body, is_base64) = match std::str::from_utf8(&bytes) {
        _ if bytes.is_empty() => (Value::Null, false),
        Ok(s) if text => (Value::String(s.to_string()), false),
        _ => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(&bytes)),
            true,
        ),
    };
    let now = OffsetDateTime::now_utc();
    let mut context = json!({
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": headers.get("host").cloned().unwrap_or_else(|| "localhost".into()),
        "domainPrefix": "local",
        "http": {
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": headers.get("user-agent").cloned().unwrap_or_default(),
        },
        "requestId": format!("local-{}", now.unix_timestamp_nanos()),
        "routeKey": route.key(),
        "stage": "$default",
        "time": seatscope_core::domain::rfc3339(now),
        "timeEpoch": now.unix_timestamp() * 1000,
    });
    if let Some(claims) = claims {
        context["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route.key(),
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": is_base64,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = json!(query);
    }
    if !params.is_empty() {
        event["pathParameters"] = json!(params);
    }
    if !body.is_null() {
        event["body"] = body;
    }
    Ok(event)
}

fn from_lambda(response: lambda_http::Response<Body>) -> Response {
    let (parts, body) = response.into_parts();
    let bytes: Vec<u8> = match body {
        Body::Empty => Vec::new(),
        Body::Text(t) => t.into_bytes(),
        Body::Binary(b) => b,
        _ => Vec::new(),
    };
    let mut out = Response::new(AxumBody::from(bytes));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_templates_capture_path_parameters() {
        let r = Route {
            method: "GET".into(),
            path: "/api/apps/{provider}/seats".into(),
            function: Function::DashboardApi,
            authorized: true,
            throttle: None,
        };
        let p = r.matches("GET", "/api/apps/pagerduty/seats").unwrap();
        assert_eq!(p["provider"], "pagerduty");
        assert!(r.matches("POST", "/api/apps/pagerduty/seats").is_none());
        assert!(r.matches("GET", "/api/apps/pagerduty").is_none());
    }

    #[test]
    fn every_http_api_event_is_in_the_definition_body_and_nothing_else_is() {
        let template = crate::stack::template_path();
        let mut events: Vec<String> = TemplateRoutes::load(&template)
            .unwrap()
            .routes
            .iter()
            .map(Route::key)
            .collect();
        events.sort();
        assert_eq!(events, definition_body_routes(&template).unwrap());
        for public in [
            "GET /oauth/callback",
            "GET /connect/invite/{token}",
            "POST /connect/invite/{token}",
        ] {
            let routes = TemplateRoutes::load(&template).unwrap().routes;
            let r = routes.iter().find(|r| r.key() == public).expect(public);
            assert!(!r.authorized, "{public} must have no authorizer");
        }
        let routes = TemplateRoutes::load(&template).unwrap().routes;
        // The page reads its sign-in settings and the API description before anyone
        // has signed in; every other /api route is behind the JWT authorizer, except
        // the catch-all `ANY /api/{proxy+}`: API Gateway picks it only for a method or
        // path no route serves, and dashboard-api answers it from openapi.json alone
        // (405 with Allow for a documented path, else 404), reading no token and no
        // data. Without an authorizer, a method the public GET /api/config does not
        // serve gets its true 405 rather than a 401.
        let mut public_api: Vec<String> = routes
            .iter()
            .filter(|r| r.path.starts_with("/api/") && !r.authorized)
            .map(Route::key)
            .collect();
        public_api.sort();
        assert_eq!(
            public_api,
            [
                "ANY /api/{proxy+}",
                "GET /api/config",
                "GET /api/openapi.json"
            ]
        );
    }

    #[test]
    fn exact_routes_win_over_the_catch_all_which_takes_any_method_and_depth() {
        let route = |method: &str, path: &str| Route {
            method: method.into(),
            path: path.into(),
            function: Function::DashboardApi,
            authorized: false,
            throttle: None,
        };
        let any = route("ANY", "/api/{proxy+}");
        assert!(any.is_catch_all());
        assert!(!route("GET", "/api/config").is_catch_all());
        assert_eq!(
            any.matches("TRACE", "/api/config").unwrap()["proxy"],
            "config"
        );
        assert_eq!(
            any.matches("POST", "/api/apps/x/seats").unwrap()["proxy"],
            "apps/x/seats"
        );
        assert!(any.matches("GET", "/api").is_none());
        assert!(any.matches("GET", "/api/").is_none());
        assert!(any.matches("GET", "/connections").is_none());
    }

    #[test]
    fn form_posts_are_base64_like_http_api_and_json_is_text() {
        assert!(is_text("application/json"));
        assert!(is_text("application/json; charset=utf-8"));
        assert!(is_text("text/html"));
        assert!(!is_text("application/x-www-form-urlencoded"));
        assert!(!is_text("multipart/form-data; boundary=x"));
    }
}
