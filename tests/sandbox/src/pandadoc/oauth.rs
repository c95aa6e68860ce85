//! PandaDoc OAuth 2.0 (authorization code): the consent page and the token endpoint.
//!
//! # `GET /oauth2/authorize`
//!
//! Query: `client_id`, `redirect_uri` (absolute http(s) URL; the sandbox has no list of
//! registered URIs, so any is accepted), `response_type=code`, `scope` and optional `state`.
//! The scope is `read`, `write` or both, separated by `+` or a space — PandaDoc's documented
//! URL carries `scope=read+write`, which form-decodes to `read write`; both spellings work.
//! PandaDoc has no PKCE: `code_challenge` / `code_challenge_method` are ignored. Unknown
//! `client_id`, a repeated parameter, or a missing or invalid one → 400 HTML page, no
//! redirect.
//!
//! On success: an HTML consent page titled "Authorize Seatscope — PandaDoc sandbox",
//! "logged in" as the organization owner. It holds exactly one form:
//!
//! ```html
//! <form method="post" action="/oauth2/authorize/decision">
//! <input type="hidden" name="client_id" value="seatscope-dev">
//! <input type="hidden" name="redirect_uri" value="http://127.0.0.1:9000/callback">
//! <input type="hidden" name="response_type" value="code">
//! <input type="hidden" name="scope" value="read write">
//! <input type="hidden" name="state" value="...">                  <!-- if given -->
//! <button type="submit" name="decision" value="approve">Approve</button>
//! <button type="submit" name="decision" value="deny">Deny</button>
//! </form>
//! ```
//!
//! Values are HTML-escaped (`&amp; &lt; &gt; &quot; &#39;`); one input per line, attributes
//! always in that order (the same mechanism as the PagerDuty sandbox's page).
//!
//! # `POST /oauth2/authorize/decision`
//!
//! The hidden fields plus `decision=approve|deny`, form-encoded; validated again. Approve →
//! 302 to `redirect_uri?code=<code>&state=<state>`; Deny → 302 to
//! `redirect_uri?error=access_denied&state=<state>`. Existing query parameters of
//! `redirect_uri` are kept; `state` is left out when none was given.
//!
//! # `POST /oauth2/access_token`
//!
//! `application/x-www-form-urlencoded`, with `client_id` and `client_secret` in the body, as
//! PandaDoc documents (HTTP Basic is not read: a client relying on it gets
//! `invalid_client`). Every request is counted, by grant type.
//!
//! - `grant_type=authorization_code`: `code`, `redirect_uri` (required, must equal the one
//!   given at authorize), optional `scope` (accepted and ignored: the grant's scope is the
//!   one approved). A code is single use — any exchange attempt consumes it, even one that
//!   fails — and lives 30 s.
//! - `grant_type=refresh_token`: `refresh_token`, optional `scope` (ignored). Returns a new
//!   access token and a new refresh token. PandaDoc does not document rotation; the sandbox
//!   takes the strict case: the presented refresh token is consumed, and the access token
//!   issued with it stops working too.
//! - `200 {"access_token","token_type":"Bearer","refresh_token","expires_in","scope"}` —
//!   tokens are 40 lowercase hex characters like PandaDoc's, `scope` is `read+write` (or
//!   `read` / `write`), `expires_in` is `access_token_ttl_secs` (PandaDoc: 31535999).
//! - Errors, bodies `{"error": "<code>"}` only: 400 `invalid_request` (not form-encoded, a
//!   parameter missing or repeated), 400 `unsupported_grant_type`, 400 `invalid_grant`
//!   (unknown, used, expired or foreign code; redirect_uri mismatch; unknown, used or
//!   revoked refresh token), 401 `invalid_client` (unknown client, wrong or missing secret).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde_json::json;
use url::Url;

use super::data::OWNER;
use super::state::{AccessGrant, App, AuthCode, RefreshGrant};

const CODE_TTL: Duration = Duration::from_secs(30);

/// A validated authorization request.
struct AuthorizeRequest {
    client_id: String,
    redirect_uri: Url,
    /// As given (e.g. `read write`), echoed into the form.
    scope: String,
    state: Option<String>,
}

impl AuthorizeRequest {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("client_id", self.client_id.clone()),
            ("redirect_uri", self.redirect_uri.to_string()),
            ("response_type", "code".to_string()),
            ("scope", self.scope.clone()),
        ];
        if let Some(state) = &self.state {
            fields.push(("state", state.clone()));
        }
        fields
    }
}

/// `read`, `write` or `read+write`, from any `+`/space separated mix of the two.
fn granted_scope(requested: &str) -> Result<String, String> {
    let mut read = false;
    let mut write = false;
    for part in requested.split(['+', ' ']).filter(|p| !p.is_empty()) {
        match part {
            "read" => read = true,
            "write" => write = true,
            other => return Err(format!("scope {other:?} is not supported; use read+write")),
        }
    }
    match (read, write) {
        (true, true) => Ok("read+write".to_string()),
        (true, false) => Ok("read".to_string()),
        (false, true) => Ok("write".to_string()),
        (false, false) => Err("scope is missing".to_string()),
    }
}

/// One value per key; a repeated OAuth parameter is an error (RFC 6749 §3.1).
fn single_values(pairs: &[(String, String)]) -> Result<HashMap<&str, &str>, String> {
    let mut map = HashMap::new();
    for (k, v) in pairs {
        if map.insert(k.as_str(), v.as_str()).is_some() {
            return Err(format!("parameter {k} is repeated"));
        }
    }
    Ok(map)
}

fn validate(app: &App, pairs: &[(String, String)]) -> Result<AuthorizeRequest, String> {
    let params = single_values(pairs)?;
    let get = |k: &str| params.get(k).copied().filter(|v| !v.is_empty());
    let client_id = get("client_id").ok_or("client_id is missing")?;
    if client_id != app.config.client_id {
        return Err(format!("unknown client_id {client_id:?}"));
    }
    let redirect = get("redirect_uri").ok_or("redirect_uri is missing")?;
    let redirect_uri =
        Url::parse(redirect).map_err(|_| format!("redirect_uri {redirect:?} is not a URL"))?;
    if !matches!(redirect_uri.scheme(), "http" | "https") || redirect_uri.fragment().is_some() {
        return Err("redirect_uri must be an absolute http(s) URL without a fragment".into());
    }
    match get("response_type") {
        Some("code") => {}
        Some(other) => {
            return Err(format!(
                "response_type {other:?} is not supported; use code"
            ))
        }
        None => return Err("response_type is missing".into()),
    }
    let scope = get("scope").ok_or("scope is missing")?;
    granted_scope(scope)?;
    Ok(AuthorizeRequest {
        client_id: client_id.to_string(),
        redirect_uri,
        scope: scope.to_string(),
        state: get("state").map(str::to_string),
    })
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn error_page(message: &str) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
             <title>Authorization error — PandaDoc sandbox</title></head>\n<body>\n\
             <h1>Authorization error</h1>\n<p class=\"error\">{}</p>\n</body>\n</html>\n",
            escape_html(message)
        ),
    )
}

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// PandaDoc has no PKCE: its parameters are dropped, not rejected.
fn without_pkce(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs.retain(|(k, _)| k != "code_challenge" && k != "code_challenge_method");
    pairs
}

pub(crate) async fn authorize_page(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = without_pkce(pairs(query.unwrap_or_default().as_bytes()));
    let request = match validate(&app, &pairs) {
        Ok(request) => request,
        Err(message) => return error_page(&message),
    };
    let who = app
        .data
        .users
        .get(OWNER)
        .map(|u| format!("{} ({})", u.name(), u.email))
        .unwrap_or_else(|| "the organization owner".to_string());
    let scope = granted_scope(&request.scope).unwrap_or_default();
    let mut page = String::new();
    page.push_str("<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">");
    page.push_str("<title>Authorize Seatscope — PandaDoc sandbox</title></head>\n<body>\n");
    page.push_str("<h1>Authorize Seatscope</h1>\n");
    page.push_str(&format!(
        "<p>The application <strong>{}</strong> asks for <strong>{}</strong> access to the \
         PandaDoc workspace <strong>{}</strong>, acting as <strong>{}</strong>.</p>\n",
        escape_html(&request.client_id),
        escape_html(&scope),
        escape_html(app.data.workspace_name),
        escape_html(&who),
    ));
    page.push_str("<form method=\"post\" action=\"/oauth2/authorize/decision\">\n");
    for (name, value) in request.fields() {
        page.push_str(&format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
            escape_html(&value)
        ));
    }
    page.push_str("<button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\n");
    page.push_str("<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\n");
    page.push_str("</form>\n</body>\n</html>\n");
    html(StatusCode::OK, page)
}

fn redirect(mut to: Url, params: &[(&str, &str)]) -> Response {
    {
        let mut query = to.query_pairs_mut();
        for (k, v) in params {
            query.append_pair(k, v);
        }
    }
    let mut response = StatusCode::FOUND.into_response();
    match HeaderValue::from_str(to.as_str()) {
        Ok(location) => {
            response.headers_mut().insert(LOCATION, location);
            response
        }
        Err(_) => error_page("redirect_uri cannot be used in a Location header"),
    }
}

/// 40 lowercase hex characters, the shape of PandaDoc's codes and tokens.
fn random_hex() -> String {
    let mut buf = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) async fn authorize_decision(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let mut pairs = without_pkce(pairs(&body));
    let decision = pairs
        .iter()
        .position(|(k, _)| k == "decision")
        .map(|i| pairs.remove(i).1);
    let request = match validate(&app, &pairs) {
        Ok(request) => request,
        Err(message) => return error_page(&message),
    };
    let mut params: Vec<(&str, &str)> = Vec::new();
    let code;
    match decision.as_deref() {
        Some("approve") => {
            code = random_hex();
            let scope = granted_scope(&request.scope).unwrap_or_default();
            let mut grants = app.grants();
            let now = Instant::now();
            grants.codes.retain(|_, c| c.expires > now);
            grants.codes.insert(
                code.clone(),
                AuthCode {
                    client_id: request.client_id.clone(),
                    redirect_uri: request.redirect_uri.to_string(),
                    scope,
                    user: OWNER,
                    expires: now + CODE_TTL,
                },
            );
            params.push(("code", &code));
        }
        Some("deny") => params.push(("error", "access_denied")),
        _ => return error_page("decision must be approve or deny"),
    }
    if let Some(state) = request.state.as_deref() {
        params.push(("state", state));
    }
    redirect(request.redirect_uri.clone(), &params)
}

fn token_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("pragma", HeaderValue::from_static("no-cache"));
    response
}

fn token_error(status: StatusCode, error: &str) -> Response {
    token_response(status, &json!({ "error": error }))
}

fn invalid_request() -> Response {
    token_error(StatusCode::BAD_REQUEST, "invalid_request")
}

fn invalid_grant() -> Response {
    token_error(StatusCode::BAD_REQUEST, "invalid_grant")
}

fn invalid_client() -> Response {
    token_error(StatusCode::UNAUTHORIZED, "invalid_client")
}

pub(crate) async fn access_token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let counters = &app.counters;
    counters.token.fetch_add(1, Ordering::Relaxed);
    let pairs = pairs(&body);
    match pairs
        .iter()
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.as_str())
    {
        Some("authorization_code") => counters.token_code.fetch_add(1, Ordering::Relaxed),
        Some("refresh_token") => counters.token_refresh.fetch_add(1, Ordering::Relaxed),
        _ => 0,
    };
    let form_encoded = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_encoded {
        return invalid_request();
    }
    let Ok(form) = single_values(&pairs) else {
        return invalid_request();
    };
    let client_id = form.get("client_id").copied().unwrap_or_default();
    let secret = form.get("client_secret").copied().unwrap_or_default();
    if client_id.is_empty() || client_id != app.config.client_id {
        return invalid_client();
    }
    if secret != app.config.client_secret {
        return invalid_client();
    }
    match form.get("grant_type").copied() {
        Some("authorization_code") => exchange_code(&app, client_id, &form),
        Some("refresh_token") => refresh(&app, client_id, &form),
        Some(_) => token_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
        None => invalid_request(),
    }
}

/// Registers a new access + refresh token pair and renders the 200 response.
fn issue(app: &App, client_id: &str, user: usize, scope: &str) -> Response {
    let access_token = random_hex();
    let refresh_token = random_hex();
    let ttl = Duration::from_secs(app.config.access_token_ttl_secs);
    {
        let mut grants = app.grants();
        grants.access.insert(
            access_token.clone(),
            AccessGrant {
                user,
                expires: expiry(ttl),
            },
        );
        grants.refresh.insert(
            refresh_token.clone(),
            RefreshGrant {
                client_id: client_id.to_string(),
                user,
                scope: scope.to_string(),
                access_token: access_token.clone(),
            },
        );
    }
    token_response(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "refresh_token": refresh_token,
            "expires_in": app.config.access_token_ttl_secs,
            "scope": scope,
        }),
    )
}

/// `now + ttl`, saturating at ten years so an absurd configured TTL cannot overflow.
fn expiry(ttl: Duration) -> Instant {
    let now = Instant::now();
    let cap = Duration::from_secs(10 * 365 * 86_400);
    now.checked_add(ttl.min(cap)).unwrap_or(now)
}

fn exchange_code(app: &App, client_id: &str, form: &HashMap<&str, &str>) -> Response {
    let Some(code) = form.get("code").filter(|c| !c.is_empty()) else {
        return invalid_request();
    };
    let Some(redirect_uri) = form.get("redirect_uri").filter(|r| !r.is_empty()) else {
        return invalid_request();
    };
    // Single use: whatever happens next, this code is gone.
    let Some(grant) = app.grants().codes.remove(*code) else {
        return invalid_grant();
    };
    if grant.expires <= Instant::now() || grant.client_id != client_id {
        return invalid_grant();
    }
    // Compare as parsed URLs, so equivalent spellings (a trailing "/" on a bare host) match.
    let same_redirect = Url::parse(redirect_uri)
        .map(|u| u.as_str() == grant.redirect_uri)
        .unwrap_or(false);
    if !same_redirect {
        return invalid_grant();
    }
    issue(app, client_id, grant.user, &grant.scope)
}

fn refresh(app: &App, client_id: &str, form: &HashMap<&str, &str>) -> Response {
    let Some(token) = form.get("refresh_token").filter(|t| !t.is_empty()) else {
        return invalid_request();
    };
    let grant = {
        let mut grants = app.grants();
        // Rotation: the presented refresh token is consumed, with its access token.
        let Some(grant) = grants.refresh.remove(*token) else {
            return invalid_grant();
        };
        grants.access.remove(&grant.access_token);
        grant
    };
    if grant.client_id != client_id {
        return invalid_grant();
    }
    issue(app, client_id, grant.user, &grant.scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        App::new(
            crate::PandaDocConfig::default(),
            "http://127.0.0.1:1".to_string(),
        )
    }

    async fn error_of(response: Response) -> (StatusCode, serde_json::Value) {
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    #[tokio::test]
    async fn a_code_older_than_30_seconds_is_invalid_grant_and_gone() {
        let app = app();
        let past = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or_else(Instant::now);
        app.grants().codes.insert(
            "old".to_string(),
            AuthCode {
                client_id: "seatscope-dev".to_string(),
                redirect_uri: "http://127.0.0.1:9/cb".to_string(),
                scope: "read+write".to_string(),
                user: OWNER,
                expires: past,
            },
        );
        let form = HashMap::from([("code", "old"), ("redirect_uri", "http://127.0.0.1:9/cb")]);
        let (status, body) = error_of(exchange_code(&app, "seatscope-dev", &form)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body, json!({ "error": "invalid_grant" }));
        assert!(app.grants().codes.is_empty());
    }

    #[test]
    fn scopes_in_every_spelling() {
        assert_eq!(granted_scope("read+write").as_deref(), Ok("read+write"));
        assert_eq!(granted_scope("read write").as_deref(), Ok("read+write"));
        assert_eq!(granted_scope("write read").as_deref(), Ok("read+write"));
        assert_eq!(granted_scope("read").as_deref(), Ok("read"));
        assert!(granted_scope("admin").is_err());
        assert!(granted_scope("").is_err());
    }

    #[test]
    fn tokens_are_40_hex_characters() {
        let t = random_hex();
        assert_eq!(t.len(), 40);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn a_huge_token_ttl_does_not_overflow() {
        assert!(expiry(Duration::from_secs(u64::MAX)) > Instant::now());
    }
}
