//! PagerDuty Classic User OAuth: the consent page and the token endpoint.
//!
//! # `GET /oauth/authorize`
//!
//! Query: `client_id`, `redirect_uri` (absolute http(s) URL; the sandbox has no list of
//! registered URIs, so any is accepted), `response_type=code`, `scope` (`read` or `write`;
//! anything else is granted as `openid` only, as PagerDuty does), optional `state`, and
//! optional PKCE `code_challenge` + `code_challenge_method=S256` (PKCE is optional for
//! confidential clients at PagerDuty; `plain` is refused). Unknown `client_id` or a missing
//! or invalid parameter → 400 HTML page, no redirect.
//!
//! On success: an HTML consent page titled "Authorize Seatscope — PagerDuty sandbox",
//! "logged in" as the account owner. It holds exactly one form, easy to drive without a
//! browser:
//!
//! ```html
//! <form method="post" action="/oauth/authorize/decision">
//! <input type="hidden" name="client_id" value="seatscope-dev">
//! <input type="hidden" name="redirect_uri" value="http://127.0.0.1:9000/callback">
//! <input type="hidden" name="response_type" value="code">
//! <input type="hidden" name="scope" value="read">
//! <input type="hidden" name="state" value="...">                  <!-- if given -->
//! <input type="hidden" name="code_challenge" value="...">         <!-- if given -->
//! <input type="hidden" name="code_challenge_method" value="S256"> <!-- if given -->
//! <button type="submit" name="decision" value="approve">Approve</button>
//! <button type="submit" name="decision" value="deny">Deny</button>
//! </form>
//! ```
//!
//! Values are HTML-escaped (`&amp; &lt; &gt; &quot; &#39;`); one input per line, attributes
//! always in that order.
//!
//! # `POST /oauth/authorize/decision`
//!
//! The hidden fields plus `decision=approve|deny`, form-encoded. The request is validated
//! again (the fields are client-controlled). Approve → 302 to
//! `redirect_uri?code=<code>&state=<state>`; Deny → 302 to
//! `redirect_uri?error=access_denied&error_description=...&state=<state>`. Existing query
//! parameters of `redirect_uri` are kept.
//!
//! # `POST /oauth/token`
//!
//! Form-encoded; client authentication by HTTP Basic (RFC 6749 §2.3.1, form-encoded id and
//! secret) or `client_id` + `client_secret` fields. Every request is counted.
//!
//! - `authorization_code`: `code`, `redirect_uri` (must equal the one at authorize),
//!   `code_verifier` (required iff a challenge was given; `BASE64URL-NOPAD(SHA256(verifier))`
//!   must equal it). A code is single use — any exchange attempt consumes it, even one that
//!   fails — and lives 30 s. The response is the documented one: `client_info`, `id_token`
//!   (JWT-shaped, claims like PagerDuty's, signature **not** verifiable), `token_type`
//!   `bearer`, `access_token` `pdus+_0…`, `refresh_token` `pdus+_1…`, `scope`
//!   (`openid read`), `expires_in`.
//! - `refresh_token`: a new access token and a new refresh token; the old refresh token
//!   stops working at once (the old access token stays valid until it expires). The
//!   response has no `id_token`/`client_info`, as in PagerDuty's sample.
//! - Errors (RFC 6749 §5.2): 400 `invalid_request` / `invalid_grant` /
//!   `unsupported_grant_type`, 401 `invalid_client`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::state::{AccessGrant, App, AuthCode, RefreshGrant};
use crate::oauth::{
    self, consent_page, error_page, escape_html, expiry, is_form_encoded, pairs, redirect,
    same_redirect, single_values, take_decision, CODE_TTL,
};

const VENDOR: &str = "PagerDuty";
const DENIED_DESCRIPTION: &str = "The resource owner or authorization server denied the request.";

/// A validated authorization request, with PagerDuty's optional PKCE.
struct AuthorizeRequest {
    base: oauth::AuthorizeRequest,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

impl AuthorizeRequest {
    /// The hidden fields that carry the request through the consent form.
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = self.base.fields();
        if let Some(challenge) = &self.code_challenge {
            fields.push(("code_challenge", challenge.clone()));
        }
        if let Some(method) = &self.code_challenge_method {
            fields.push(("code_challenge_method", method.clone()));
        }
        fields
    }

    /// PagerDuty grants `openid` always, plus `read`/`write` when asked for.
    fn granted_scope(&self) -> String {
        let mut granted = vec!["openid"];
        for s in self.base.scope.split_whitespace() {
            if (s == "read" || s == "write") && !granted.contains(&s) {
                granted.push(s);
            }
        }
        granted.join(" ")
    }
}

fn validate(app: &App, pairs: &[(String, String)]) -> Result<AuthorizeRequest, String> {
    let params = single_values(pairs)?;
    let base = oauth::AuthorizeRequest::validate(&params, &app.config.client_id)?;
    let get = |k: &str| params.get(k).copied().filter(|v| !v.is_empty());
    let code_challenge = get("code_challenge").map(str::to_string);
    let code_challenge_method = get("code_challenge_method").map(str::to_string);
    match (&code_challenge, code_challenge_method.as_deref()) {
        (Some(challenge), Some("S256")) => {
            let ok = (43..=128).contains(&challenge.len())
                && challenge
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !ok {
                return Err("code_challenge is not a base64url SHA-256 digest".into());
            }
        }
        (Some(_), _) => return Err("code_challenge_method must be S256".into()),
        (None, Some(_)) => return Err("code_challenge_method without code_challenge".into()),
        (None, None) => {}
    }
    Ok(AuthorizeRequest {
        base,
        code_challenge,
        code_challenge_method,
    })
}

pub(crate) async fn authorize_page(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(query.unwrap_or_default().as_bytes());
    let request = match validate(&app, &pairs) {
        Ok(request) => request,
        Err(message) => return error_page(VENDOR, &message),
    };
    let owner = app.data.users.first();
    let who = owner
        .map(|u| format!("{} ({})", u.name, u.email))
        .unwrap_or_else(|| "the account owner".to_string());
    let intro = format!(
        "<p>The app <strong>{}</strong> asks for <strong>{}</strong> access to the PagerDuty \
         account <strong>{}</strong>, acting as <strong>{}</strong>.</p>\n",
        escape_html(&request.base.client_id),
        escape_html(&request.base.scope),
        escape_html(&app.data.subdomain),
        escape_html(&who),
    );
    consent_page(
        VENDOR,
        &intro,
        "/oauth/authorize/decision",
        request.fields(),
    )
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

fn uuid() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

pub(crate) async fn authorize_decision(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let mut pairs = pairs(&body);
    let decision = take_decision(&mut pairs);
    let request = match validate(&app, &pairs) {
        Ok(request) => request,
        Err(message) => return error_page(VENDOR, &message),
    };
    let state = request.base.state.clone();
    let mut params: Vec<(&str, &str)> = Vec::new();
    let code;
    match decision.as_deref() {
        Some("approve") => {
            code = random_token(24);
            let mut grants = app.grants();
            let now = Instant::now();
            grants.codes.retain(|_, c| c.expires > now);
            grants.codes.insert(
                code.clone(),
                AuthCode {
                    client_id: request.base.client_id.clone(),
                    redirect_uri: request.base.redirect_uri.to_string(),
                    code_challenge: request.code_challenge.clone(),
                    scope: request.granted_scope(),
                    user: 0,
                    expires: now + CODE_TTL,
                },
            );
            params.push(("code", &code));
        }
        Some("deny") => {
            params.push(("error", "access_denied"));
            params.push(("error_description", DENIED_DESCRIPTION));
        }
        _ => return error_page(VENDOR, "decision must be approve or deny"),
    }
    if let Some(state) = state.as_deref() {
        params.push(("state", state));
    }
    redirect(VENDOR, request.base.redirect_uri.clone(), &params)
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        json!({ "error": error, "error_description": description }).to_string(),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"PagerDuty sandbox\""),
        );
    }
    response
}

fn invalid_request(description: &str) -> Response {
    token_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_grant(description: &str) -> Response {
    token_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

fn invalid_client(description: &str) -> Response {
    token_error(StatusCode::UNAUTHORIZED, "invalid_client", description)
}

fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// An RFC 6749 §5.2 error not yet rendered (small, unlike `Response`).
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
}

impl OAuthError {
    fn client(description: &'static str) -> Self {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description,
        }
    }

    fn request(description: &'static str) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        token_error(self.status, self.error, self.description)
    }
}

/// The client's credentials from HTTP Basic or the form; `Err` is the response to send.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<&str, &str>,
) -> Result<(String, Option<String>), OAuthError> {
    let form_id = form.get("client_id").map(|s| s.to_string());
    let form_secret = form.get("client_secret").map(|s| s.to_string());
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim().to_string());
    let Some(basic) = basic else {
        let id = form_id.ok_or_else(|| OAuthError::client("client authentication is required"))?;
        return Ok((id, form_secret));
    };
    let decoded = STANDARD
        .decode(basic)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| OAuthError::client("malformed Basic credentials"))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| OAuthError::client("malformed Basic credentials"))?;
    let (id, secret) = (form_decode(id), form_decode(secret));
    if form_id.as_ref().is_some_and(|f| *f != id) || form_secret.is_some() {
        return Err(OAuthError::request(
            "use one client authentication method: HTTP Basic or form fields",
        ));
    }
    Ok((id, Some(secret)))
}

struct Issued {
    access_token: String,
    refresh_token: String,
}

fn issue(app: &App, client_id: &str, user: usize, scope: &str) -> Issued {
    let account = app.data.account_id.trim_start_matches('P');
    let issued = Issued {
        access_token: format!("pdus+_0{account}_{}", uuid()),
        refresh_token: format!("pdus+_1{account}_{}", uuid()),
    };
    let ttl = Duration::from_secs(app.config.access_token_ttl_secs);
    let mut grants = app.grants();
    grants.access.insert(
        issued.access_token.clone(),
        AccessGrant {
            client_id: client_id.to_string(),
            user,
            scope: scope.to_string(),
            expires: expiry(ttl),
        },
    );
    grants.refresh.insert(
        issued.refresh_token.clone(),
        RefreshGrant {
            client_id: client_id.to_string(),
            user,
            scope: scope.to_string(),
        },
    );
    issued
}

/// A JWT-shaped ID token with PagerDuty's claims. The signature is random bytes: the sandbox
/// publishes no keys, so a client must not rely on verifying it here.
fn id_token(app: &App, client_id: &str, user: usize) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let user_id = app
        .data
        .users
        .get(user)
        .map(|u| u.id.clone())
        .unwrap_or_default();
    let header = json!({ "kid": "seatscope-sandbox", "alg": "RS256", "typ": "JWT" });
    let claims = json!({
        "exp": now + 3600,
        "nbf": now,
        "jti": uuid(),
        "iss": format!("{}/global/oauth/anonymous", app.base_url),
        "aud": [app.base_url, client_id],
        "sub": user_id,
        "auth_time": now,
        "iat": now,
        "purpose": "id",
        "delegation_id": uuid(),
        "product_abilities": [],
        "account_id": app.data.account_id,
        "user_id": user_id,
        "azp": client_id,
        "subdomain": app.data.subdomain,
        "region": "UnitedStates",
        "sid": random_token(12),
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        random_token(256)
    )
}

fn token_ok(body: Value) -> Response {
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("pragma", HeaderValue::from_static("no-cache"));
    response
}

pub(crate) async fn token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    app.token_requests.fetch_add(1, Ordering::Relaxed);
    if !is_form_encoded(&headers) {
        return invalid_request("the body must be application/x-www-form-urlencoded");
    }
    let pairs = pairs(&body);
    let form = match single_values(&pairs) {
        Ok(form) => form,
        Err(message) => return invalid_request(&message),
    };
    let (client_id, secret) = match client_credentials(&headers, &form) {
        Ok(credentials) => credentials,
        Err(error) => return error.into_response(),
    };
    if client_id != app.config.client_id {
        return invalid_client("unknown client");
    }
    // The registered client is confidential: it must authenticate with its secret.
    if secret.as_deref() != Some(app.config.client_secret.as_str()) {
        return invalid_client("client authentication failed");
    }
    match form.get("grant_type").copied() {
        Some("authorization_code") => exchange_code(&app, &client_id, &form),
        Some("refresh_token") => refresh(&app, &client_id, &form),
        Some(_) => token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ),
        None => invalid_request("grant_type is missing"),
    }
}

fn exchange_code(app: &App, client_id: &str, form: &HashMap<&str, &str>) -> Response {
    let Some(code) = form.get("code").filter(|c| !c.is_empty()) else {
        return invalid_request("code is missing");
    };
    let Some(redirect_uri) = form.get("redirect_uri").filter(|r| !r.is_empty()) else {
        return invalid_request("redirect_uri is missing");
    };
    // Single use: whatever happens next, this code is gone.
    let Some(grant) = app.grants().codes.remove(*code) else {
        return invalid_grant("the authorization code is invalid, expired or already used");
    };
    if grant.expires <= Instant::now() {
        return invalid_grant("the authorization code has expired");
    }
    if grant.client_id != client_id {
        return invalid_grant("the authorization code was issued to another client");
    }
    if !same_redirect(redirect_uri, &grant.redirect_uri) {
        return invalid_grant("redirect_uri does not match the authorization request");
    }
    match (&grant.code_challenge, form.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if computed != *challenge {
                return invalid_grant("code_verifier does not match the code_challenge");
            }
        }
        (Some(_), None) => return invalid_grant("code_verifier is required (PKCE)"),
        (None, Some(_)) => {
            return invalid_grant("code_verifier given but the authorization had no code_challenge")
        }
        (None, None) => {}
    }
    let issued = issue(app, client_id, grant.user, &grant.scope);
    let answer = app.token_override().clone();
    token_ok(json!({
        "client_info": "prefix_legacy_app",
        "id_token": id_token(app, client_id, grant.user),
        "token_type": answer.token_type.as_deref().unwrap_or("bearer"),
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "scope": answer.scope.as_deref().unwrap_or(&grant.scope),
        "expires_in": app.config.access_token_ttl_secs,
    }))
}

fn refresh(app: &App, client_id: &str, form: &HashMap<&str, &str>) -> Response {
    let Some(token) = form.get("refresh_token").filter(|t| !t.is_empty()) else {
        return invalid_request("refresh_token is missing");
    };
    // Rotation: the presented refresh token is consumed.
    let Some(grant) = app.grants().refresh.remove(*token) else {
        return invalid_grant("the refresh token is invalid, revoked or already used");
    };
    if grant.client_id != client_id {
        return invalid_grant("the refresh token was issued to another client");
    }
    let issued = issue(app, client_id, grant.user, &grant.scope);
    token_ok(json!({
        "token_type": "bearer",
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "scope": grant.scope,
        "expires_in": app.config.access_token_ttl_secs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode("my+client:s%3Acret"));
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("")),
        );
        let form = HashMap::new();
        let (id, secret) = client_credentials(&headers, &form).ok().unwrap_or_default();
        assert_eq!(id, "my client");
        assert_eq!(secret.as_deref(), Some("s:cret"));
    }

    fn app() -> App {
        App::new(
            crate::PagerDutyConfig::default(),
            "http://127.0.0.1:1".to_string(),
        )
    }

    async fn error_of(response: Response) -> (StatusCode, String) {
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&body).unwrap_or_default();
        (
            status,
            body["error"].as_str().unwrap_or_default().to_string(),
        )
    }

    #[tokio::test]
    async fn a_code_older_than_30_seconds_is_invalid_grant() {
        let app = app();
        let past = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or_else(Instant::now);
        app.grants().codes.insert(
            "old".to_string(),
            AuthCode {
                client_id: "seatscope-dev".to_string(),
                redirect_uri: "http://127.0.0.1:9/cb".to_string(),
                code_challenge: None,
                scope: "openid read".to_string(),
                user: 0,
                expires: past,
            },
        );
        let form = HashMap::from([("code", "old"), ("redirect_uri", "http://127.0.0.1:9/cb")]);
        let (status, error) = error_of(exchange_code(&app, "seatscope-dev", &form)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error, "invalid_grant");
        assert!(app.grants().codes.is_empty(), "the expired code is gone");
    }

    #[test]
    fn uuids_are_v4_shaped() {
        let u = uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
