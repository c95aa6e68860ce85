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
use axum::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde_json::json;

#[cfg(test)]
use super::data::OWNER;
use super::state::{AccessGrant, App, AuthCode, RefreshGrant};
use crate::oauth::{
    consent_page, error_page, escape_html, expiry, is_form_encoded, pairs, redirect, same_redirect,
    single_values, take_decision, AuthorizeRequest, CODE_TTL,
};

const VENDOR: &str = "PandaDoc";

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

fn validate(app: &App, pairs: &[(String, String)]) -> Result<AuthorizeRequest, String> {
    let params = single_values(pairs)?;
    let request = AuthorizeRequest::validate(&params, &app.config.client_id)?;
    granted_scope(&request.scope)?;
    Ok(request)
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
        Err(message) => return error_page(VENDOR, &message),
    };
    let who = app
        .data
        .users
        .get(app.data.consenting_user(app.config.consent_as_admin))
        .map(|u| format!("{} ({})", u.name(), u.email))
        .unwrap_or_else(|| "the organization owner".to_string());
    let scope = granted_scope(&request.scope).unwrap_or_default();
    let intro = format!(
        "<p>The application <strong>{}</strong> asks for <strong>{}</strong> access to the \
         PandaDoc workspace <strong>{}</strong>, acting as <strong>{}</strong>.</p>\n",
        escape_html(&request.client_id),
        escape_html(&scope),
        escape_html(app.data.workspace_name),
        escape_html(&who),
    );
    consent_page(
        VENDOR,
        &intro,
        "/oauth2/authorize/decision",
        request.fields(),
    )
}

/// 40 lowercase hex characters, the shape of PandaDoc's codes and tokens.
fn random_hex() -> String {
    let mut buf = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) async fn authorize_decision(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let mut pairs = without_pkce(pairs(&body));
    let decision = take_decision(&mut pairs);
    let request = match validate(&app, &pairs) {
        Ok(request) => request,
        Err(message) => return error_page(VENDOR, &message),
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
                    user: app.data.consenting_user(app.config.consent_as_admin),
                    expires: now + CODE_TTL,
                },
            );
            params.push(("code", &code));
        }
        Some("deny") => params.push(("error", "access_denied")),
        _ => return error_page(VENDOR, "decision must be approve or deny"),
    }
    if let Some(state) = request.state.as_deref() {
        params.push(("state", state));
    }
    redirect(VENDOR, request.redirect_uri.clone(), &params)
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
    if !is_form_encoded(&headers) {
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
    if !same_redirect(redirect_uri, &grant.redirect_uri) {
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
        App::new(crate::PandaDocConfig::default())
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
}
