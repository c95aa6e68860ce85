//! The local run's identity provider: a small OIDC issuer (authorization code + PKCE
//! S256, RS256 tokens, a JWKS) served by the local gateway under `{api_base}/dev-issuer`,
//! and the verifier the gateway checks bearer tokens with — the way API Gateway's JWT
//! authorizer does: discovery document → `jwks_uri` over HTTP, keys cached, refetched
//! once on an unknown `kid`; RS256 only; `iss`, `aud`, `exp` (and `nbf` if present).
//!
//! It signs in anyone: the sign-in page asks which email and organization to act as.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use maud::{Markup, PreEscaped, DOCTYPE};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use seatscope_core::domain::org::valid_org;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

/// How long an authorization code can be redeemed.
const CODE_TTL: Duration = Duration::from_secs(60);
/// Lifetime of the tokens `/token` issues.
const TOKEN_TTL_SECONDS: i64 = 3600;
const SCOPES_SUPPORTED: [&str; 3] = ["openid", "email", "profile"];
pub const DEFAULT_EMAIL: &str = "admin@demo.example";
pub const DEFAULT_ORG: &str = "demo";

/// The issuer's per-run RSA-2048 signing key, with its public half as a JWK.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

impl SigningKey {
    fn generate() -> anyhow::Result<SigningKey> {
        let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
            .context("generating the dev issuer's RSA key")?;
        let der = private
            .to_pkcs1_der()
            .context("encoding the dev issuer's RSA key")?;
        let n = URL_SAFE_NO_PAD.encode(private.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(private.e().to_bytes_be());
        // The RFC 7638 thumbprint: a kid that names this key and no other.
        let thumbprint = Sha256::digest(format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#));
        let kid = URL_SAFE_NO_PAD.encode(thumbprint);
        let jwk = json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e});
        Ok(SigningKey {
            kid,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk,
        })
    }
}

/// What a code was issued for; redeemed at most once, within [`CODE_TTL`].
struct PendingCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    scope: String,
    email: String,
    org: String,
    /// The role chosen on the form: the `groups` claim the tokens carry.
    admin: bool,
    issued: Instant,
}

/// The claim the dev issuer puts the chosen role in, and its values: what the local
/// stack configures as ROLE_CLAIM and ADMIN_VALUES when a test turns roles on.
pub const ROLE_CLAIM: &str = "groups";
pub const ADMIN_GROUP: &str = "seatscope-admins";
pub const VIEWER_GROUP: &str = "staff";

/// A validated authorization request.
#[derive(Debug, Clone)]
struct AuthorizeRequest {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    code_challenge: String,
    nonce: Option<String>,
}

/// An OAuth error answer from `/token`: RFC 6749 §5.2.
#[derive(Debug)]
struct OAuthError {
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            error,
            description: description.into(),
        }
    }
}

/// The issuer: its URL, the one client it serves, its key and its pending codes.
pub struct DevIssuer {
    pub issuer: String,
    /// The only client id accepted, and the tokens' `aud`.
    pub audience: String,
    pub org_claim: String,
    /// The issuer URL's path (`/dev-issuer`), where the routes live.
    path: String,
    /// The gateway's own origin: redirects go nowhere else.
    origin: url::Url,
    key: SigningKey,
    codes: Mutex<HashMap<String, PendingCode>>,
}

impl DevIssuer {
    pub fn new(issuer: &str, audience: &str, org_claim: &str) -> anyhow::Result<DevIssuer> {
        let url = url::Url::parse(issuer).with_context(|| format!("issuer URL {issuer}"))?;
        let path = url.path().trim_end_matches('/').to_string();
        if path.is_empty() {
            // Its catch-all would swallow the gateway's routes.
            bail!("the dev issuer needs a path of its own, e.g. {issuer}/dev-issuer");
        }
        let mut origin = url.clone();
        origin.set_path("/");
        origin.set_query(None);
        Ok(DevIssuer {
            issuer: issuer.trim_end_matches('/').to_string(),
            audience: audience.into(),
            org_claim: org_claim.into(),
            path,
            origin,
            key: SigningKey::generate()?,
            codes: Mutex::new(HashMap::new()),
        })
    }

    fn endpoint(&self, name: &str) -> String {
        format!("{}/{name}", self.issuer)
    }

    fn discovery(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("authorize"),
            "token_endpoint": self.endpoint("token"),
            "jwks_uri": self.endpoint("jwks.json"),
            "end_session_endpoint": self.endpoint("logout"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "scopes_supported": SCOPES_SUPPORTED,
            "token_endpoint_auth_methods_supported": ["none"],
            "claims_supported": ["iss", "aud", "sub", "exp", "iat", "nonce", "email", self.org_claim],
        })
    }

    fn jwks(&self) -> Value {
        json!({"keys": [self.key.jwk]})
    }

    /// Signs `claims` with the issuer's key (RS256, with its `kid`).
    fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.key.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.key.encoding)?)
    }

    /// The claims every token of this issuer carries.
    fn base_claims(
        &self,
        sub: &str,
        org: &str,
        lifetime_seconds: i64,
    ) -> serde_json::Map<String, Value> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut claims = serde_json::Map::new();
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("aud".into(), json!(self.audience));
        claims.insert("sub".into(), json!(sub));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + lifetime_seconds));
        claims.insert(self.org_claim.clone(), json!(org));
        // The dev issuer's users are their email addresses.
        if sub.contains('@') {
            claims.insert("email".into(), json!(sub));
        }
        // Admin, like every member when roles are off.
        claims.insert(ROLE_CLAIM.into(), json!([ADMIN_GROUP]));
        claims
    }

    /// `uri` is on the gateway's own origin. `localhost` and `127.0.0.1` count as the
    /// same host (same scheme and port), so a browser on either can sign in.
    fn on_own_origin(&self, uri: &str) -> bool {
        let Ok(u) = url::Url::parse(uri) else {
            return false;
        };
        fn host(u: &url::Url) -> Option<String> {
            match u.host()? {
                url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => {
                    Some("127.0.0.1".into())
                }
                h => Some(h.to_string().to_ascii_lowercase()),
            }
        }
        u.username().is_empty()
            && u.password().is_none()
            && u.fragment().is_none()
            && u.scheme() == self.origin.scheme()
            && u.port_or_known_default() == self.origin.port_or_known_default()
            && host(&u).is_some()
            && host(&u) == host(&self.origin)
    }

    /// Checks an authorization request (the query of `GET /authorize`, or the hidden
    /// fields of the sign-in form, which are checked again rather than trusted).
    fn authorize_request(&self, p: &HashMap<String, String>) -> Result<AuthorizeRequest, String> {
        let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
        if get("response_type") != Some("code") {
            return Err("response_type must be 'code'.".into());
        }
        let client_id = get("client_id").unwrap_or_default();
        if client_id != self.audience {
            return Err(format!("Unknown client_id '{client_id}'."));
        }
        let redirect_uri = get("redirect_uri").unwrap_or_default();
        if !self.on_own_origin(redirect_uri) {
            return Err(format!(
                "redirect_uri '{redirect_uri}' is not on this server's origin ({}).",
                self.origin.origin().ascii_serialization()
            ));
        }
        match get("code_challenge_method") {
            Some("S256") => {}
            Some(other) => {
                return Err(format!(
                    "code_challenge_method '{other}' is not supported: use S256."
                ))
            }
            None => return Err("PKCE is required: code_challenge_method=S256.".into()),
        }
        let code_challenge = get("code_challenge").unwrap_or_default();
        // base64url(SHA-256(verifier)) without padding: 43 characters.
        let is_b64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if code_challenge.len() != 43 || !code_challenge.chars().all(is_b64url) {
            return Err(
                "code_challenge must be an S256 challenge (43 base64url characters).".into(),
            );
        }
        Ok(AuthorizeRequest {
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            scope: get("scope").unwrap_or("openid").into(),
            state: get("state").map(Into::into),
            code_challenge: code_challenge.into(),
            nonce: get("nonce").map(Into::into),
        })
    }

    /// A fresh single-use code for `req`, signed in as `email` in `org`.
    fn issue_code(&self, req: &AuthorizeRequest, email: &str, org: &str, admin: bool) -> String {
        use rand::RngCore as _;
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let code = URL_SAFE_NO_PAD.encode(bytes);
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.retain(|_, c| c.issued.elapsed() < CODE_TTL);
        codes.insert(
            code.clone(),
            PendingCode {
                client_id: req.client_id.clone(),
                redirect_uri: req.redirect_uri.clone(),
                code_challenge: req.code_challenge.clone(),
                nonce: req.nonce.clone(),
                scope: req.scope.clone(),
                email: email.into(),
                org: org.into(),
                admin,
                issued: Instant::now(),
            },
        );
        code
    }

    /// `POST /token`: redeems a code (once) for an access token and an ID token.
    fn exchange(&self, form: &HashMap<String, String>) -> Result<Value, OAuthError> {
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        match get("grant_type") {
            "authorization_code" => {}
            "" => return Err(OAuthError::new("invalid_request", "grant_type is missing")),
            _ => {
                return Err(OAuthError::new(
                    "unsupported_grant_type",
                    "only authorization_code is supported",
                ))
            }
        }
        for required in ["code", "redirect_uri", "client_id", "code_verifier"] {
            if get(required).is_empty() {
                return Err(OAuthError::new(
                    "invalid_request",
                    format!("{required} is missing"),
                ));
            }
        }
        // Removed before any check: a code is spent by its first redemption, good or bad.
        let pending = self
            .codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(get("code"))
            .filter(|c| c.issued.elapsed() < CODE_TTL)
            .ok_or_else(|| {
                OAuthError::new("invalid_grant", "the code is unknown, used or expired")
            })?;
        if get("client_id") != pending.client_id {
            return Err(OAuthError::new(
                "invalid_grant",
                "the code was issued to another client",
            ));
        }
        if get("redirect_uri") != pending.redirect_uri {
            return Err(OAuthError::new(
                "invalid_grant",
                "redirect_uri differs from the authorization request's",
            ));
        }
        let verifier = get("code_verifier");
        let verifier_ok = (43..=128).contains(&verifier.len())
            && verifier
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'));
        if !verifier_ok || s256(verifier) != pending.code_challenge {
            return Err(OAuthError::new(
                "invalid_grant",
                "code_verifier does not match the code_challenge",
            ));
        }
        let sub = format!("user:{}", pending.email);
        let group = if pending.admin {
            ADMIN_GROUP
        } else {
            VIEWER_GROUP
        };
        let mut access = self.base_claims(&sub, &pending.org, TOKEN_TTL_SECONDS);
        access.insert(ROLE_CLAIM.into(), json!([group]));
        access.insert("email".into(), json!(pending.email));
        access.insert("client_id".into(), json!(pending.client_id));
        access.insert("scope".into(), json!(pending.scope));
        let mut id = self.base_claims(&sub, &pending.org, TOKEN_TTL_SECONDS);
        id.insert(ROLE_CLAIM.into(), json!([group]));
        id.insert("email".into(), json!(pending.email));
        id.insert("auth_time".into(), id["iat"].clone());
        if let Some(nonce) = &pending.nonce {
            id.insert("nonce".into(), json!(nonce));
        }
        let sign = |claims| {
            self.sign(&Value::Object(claims))
                .map_err(|e| OAuthError::new("server_error", e.to_string()))
        };
        Ok(json!({
            "access_token": sign(access)?,
            "id_token": sign(id)?,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_SECONDS,
            "scope": pending.scope,
        }))
    }
}

/// base64url(SHA-256(verifier)), no padding: PKCE's S256.
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Query or form parameters; a parameter given twice is refused (RFC 6749 §3.1).
fn params(raw: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(format!("The parameter '{k}' is given more than once."));
        }
    }
    Ok(out)
}

fn valid_email(email: &str) -> bool {
    email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
}

// ---- HTTP ------------------------------------------------------------------

/// The issuer's routes, at the issuer URL's path. Everything under that path is
/// answered here (404 for unknown paths, 405 for other methods), so nothing under
/// it can reach a router's fallback — merge this before the gateway's routes.
pub fn router<S: Clone + Send + Sync + 'static>(issuer: Arc<DevIssuer>) -> Router<S> {
    let p = issuer.path.clone();
    Router::new()
        .route(
            &format!("{p}/.well-known/openid-configuration"),
            get(discovery_route).options(preflight),
        )
        .route(
            &format!("{p}/jwks.json"),
            get(jwks_route).options(preflight),
        )
        .route(
            &format!("{p}/authorize"),
            get(authorize_page).post(authorize_submit),
        )
        .route(&format!("{p}/token"), post(token_route).options(preflight))
        .route(&format!("{p}/logout"), get(logout_route))
        .route(&p, any(not_found))
        .route(&format!("{p}/"), any(not_found))
        .route(&format!("{p}/{{*rest}}"), any(not_found))
        .with_state(issuer)
}

/// Discovery, the JWKS and the token endpoint are readable from any origin
/// (a single-page app on another port, a test page).
fn cors(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    cors(r.headers_mut());
    r
}

async fn preflight() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    cors(h);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, authorization"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    r
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"message":"Not Found"}"#,
    )
        .into_response()
}

async fn discovery_route(State(iss): State<Arc<DevIssuer>>) -> Response {
    json_response(StatusCode::OK, &iss.discovery())
}

async fn jwks_route(State(iss): State<Arc<DevIssuer>>) -> Response {
    json_response(StatusCode::OK, &iss.jwks())
}

const PAGE_STYLE: &str = "\
body{font-family:system-ui,sans-serif;line-height:1.5;color:#1a1a1a;background:#f6f7f9;margin:0}\
main{max-width:26rem;margin:3rem auto;padding:1.5rem 2rem;background:#fff;border:1px solid #d0d4da;border-radius:8px}\
h1{font-size:1.35rem;margin-top:0}\
label{display:block;font-weight:600;margin-top:1rem}\
input{display:block;width:100%;box-sizing:border-box;font:inherit;padding:.45rem .6rem;border:1px solid #6b7280;border-radius:4px}\
.hint{font-size:.9rem;color:#4b5563;margin:.25rem 0 0}\
button{margin-top:1.5rem;font:inherit;font-weight:600;padding:.5rem 1.25rem;border:0;border-radius:4px;background:#1d4ed8;color:#fff;cursor:pointer}\
:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}\
.error{color:#991b1b;background:#fef2f2;border:1px solid #fca5a5;border-radius:4px;padding:.5rem .75rem}";

fn html(status: StatusCode, title: &str, body: Markup) -> Response {
    let page = maud::html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(PAGE_STYLE)) }
            }
            body {
                main { (body) }
            }
        }
    };
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.into_string(),
    )
        .into_response();
    let h = r.headers_mut();
    no_store(h);
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    r
}

fn error_page(message: &str) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        "Sign-in request refused",
        maud::html! {
            h1 { "Sign-in request refused" }
            p { "The local dev issuer cannot handle this sign-in request." }
            p { (message) }
        },
    )
}

/// The sign-in form; `error` (with the field it is about) when a submission was refused.
fn sign_in_form(
    iss: &DevIssuer,
    req: &AuthorizeRequest,
    email: &str,
    org: &str,
    admin: bool,
    error: Option<(&str, &str)>,
) -> Response {
    let mut hidden = vec![
        ("response_type", "code"),
        ("client_id", req.client_id.as_str()),
        ("redirect_uri", req.redirect_uri.as_str()),
        ("scope", req.scope.as_str()),
        ("code_challenge", req.code_challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if let Some(state) = &req.state {
        hidden.push(("state", state));
    }
    if let Some(nonce) = &req.nonce {
        hidden.push(("nonce", nonce));
    }
    let about = |field: &str| error.is_some_and(|(f, _)| f == field);
    let described = |field: &str| {
        if about(field) {
            format!("{field}-hint form-error")
        } else {
            format!("{field}-hint")
        }
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = maud::html! {
        h1 { "Sign in to Seatscope (local dev issuer)" }
        p { "This issuer runs only on your machine and signs in anyone: choose who to act as." }
        @if let Some((_, message)) = error {
            p id="form-error" class="error" role="alert" { (message) }
        }
        form method="post" action={ (iss.path) "/authorize" } {
            @for (name, value) in &hidden {
                input type="hidden" name=(name) value=(value);
            }
            label for="email" { "Email" }
            input id="email" name="email" type="email" autocomplete="email" required
                aria-describedby=(described("email")) value=(email)
                aria-invalid=[about("email").then_some("true")];
            p id="email-hint" class="hint" { "Your user id becomes user:<email>." }
            label for="org" { "Organization" }
            input id="org" name="org" type="text" autocomplete="organization" required
                aria-describedby=(described("org")) value=(org)
                aria-invalid=[about("org").then_some("true")];
            p id="org-hint" class="hint" { "The org id: letters, digits, '-', '_' and '.'." }
            fieldset {
                legend { "Role" }
                input id="role-admin" name="role" type="radio" value="admin" checked[admin];
                label for="role-admin" { "Admin (groups: " (ADMIN_GROUP) ")" }
                input id="role-viewer" name="role" type="radio" value="viewer" checked[!admin];
                label for="role-viewer" { "Viewer (groups: " (VIEWER_GROUP) ")" }
            }
            button type="submit" { "Sign in" }
        }
    };
    html(status, "Sign in to Seatscope (local dev issuer)", body)
}

async fn authorize_page(State(iss): State<Arc<DevIssuer>>, RawQuery(query): RawQuery) -> Response {
    let req = params(query.unwrap_or_default().as_bytes()).and_then(|p| iss.authorize_request(&p));
    match req {
        Ok(req) => sign_in_form(&iss, &req, DEFAULT_EMAIL, DEFAULT_ORG, true, None),
        Err(message) => error_page(&message),
    }
}

async fn authorize_submit(State(iss): State<Arc<DevIssuer>>, body: axum::body::Bytes) -> Response {
    let form = match params(&body) {
        Ok(form) => form,
        Err(message) => return error_page(&message),
    };
    let req = match iss.authorize_request(&form) {
        Ok(req) => req,
        Err(message) => return error_page(&message),
    };
    let email = form
        .get("email")
        .map(|e| e.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let org = form
        .get("org")
        .map(|o| o.trim().to_string())
        .unwrap_or_default();
    let admin = form.get("role").map(String::as_str) != Some("viewer");
    if !valid_email(&email) {
        let message = "Enter an email address, like admin@demo.example.";
        return sign_in_form(&iss, &req, &email, &org, admin, Some(("email", message)));
    }
    if !valid_org(&org) {
        let message = "Enter an organization id of letters, digits, '-', '_' or '.' (at most 128).";
        return sign_in_form(&iss, &req, &email, &org, admin, Some(("org", message)));
    }
    let code = iss.issue_code(&req, &email, &org, admin);
    let Ok(mut location) = url::Url::parse(&req.redirect_uri) else {
        return error_page("redirect_uri is not a URL.");
    };
    {
        let mut q = location.query_pairs_mut();
        q.append_pair("code", &code);
        if let Some(state) = &req.state {
            q.append_pair("state", state);
        }
    }
    redirect(location.as_str())
}

fn redirect(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    no_store(r.headers_mut());
    r
}

async fn token_route(State(iss): State<Arc<DevIssuer>>, body: axum::body::Bytes) -> Response {
    let result = params(&body)
        .map_err(|m| OAuthError::new("invalid_request", m))
        .and_then(|form| iss.exchange(&form));
    let mut r = match result {
        Ok(tokens) => json_response(StatusCode::OK, &tokens),
        Err(e) => {
            let status = if e.error == "server_error" {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            };
            json_response(
                status,
                &json!({"error": e.error, "error_description": e.description}),
            )
        }
    };
    no_store(r.headers_mut());
    r
}

async fn logout_route(State(iss): State<Arc<DevIssuer>>, RawQuery(query): RawQuery) -> Response {
    let p = params(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    if let Some(target) = p
        .get("post_logout_redirect_uri")
        .filter(|u| iss.on_own_origin(u))
    {
        if let Ok(mut location) = url::Url::parse(target) {
            if let Some(state) = p.get("state").filter(|s| !s.is_empty()) {
                location.query_pairs_mut().append_pair("state", state);
            }
            return redirect(location.as_str());
        }
    }
    html(
        StatusCode::OK,
        "Signed out",
        maud::html! {
            h1 { "Signed out" }
            p { "You are signed out of the Seatscope local dev issuer. You can close this page." }
        },
    )
}

// ---- Verifying, like API Gateway's JWT authorizer ------------------------------

/// Verifies bearer tokens against an OIDC issuer it knows only by URL: discovery
/// document, then `jwks_uri`, keys cached and refetched once when a token names an
/// unknown `kid`.
pub struct JwtVerifier {
    issuer: String,
    audience: String,
    http: reqwest::Client,
    keys: tokio::sync::Mutex<Option<HashMap<String, DecodingKey>>>,
}

impl JwtVerifier {
    pub fn new(issuer: &str, audience: &str) -> anyhow::Result<JwtVerifier> {
        Ok(JwtVerifier {
            issuer: issuer.trim_end_matches('/').to_string(),
            audience: audience.into(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(5))
                .build()?,
            keys: tokio::sync::Mutex::new(None),
        })
    }

    /// The token's claims if it is an RS256 token from this issuer, for this
    /// audience, signed by a key in its JWKS, and current.
    pub async fn verify(&self, bearer: &str) -> Option<Value> {
        let header = jsonwebtoken::decode_header(bearer).ok()?;
        if header.alg != Algorithm::RS256 {
            return None;
        }
        let key = self.key(header.kid.as_deref()?).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        jsonwebtoken::decode::<Value>(bearer, &key, &validation)
            .ok()
            .map(|d| d.claims)
    }

    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        let mut cache = self.keys.lock().await;
        if let Some(key) = cache.as_ref().and_then(|keys| keys.get(kid)) {
            return Some(key.clone());
        }
        // Nothing cached yet, or a kid we have not seen (the issuer may have
        // rotated): fetch once, then answer from what came back.
        match self.fetch_keys().await {
            Ok(keys) => *cache = Some(keys),
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %format!("{e:#}"), "fetching the issuer's JWKS failed");
                return None;
            }
        }
        cache.as_ref()?.get(kid).cloned()
    }

    async fn fetch_keys(&self) -> anyhow::Result<HashMap<String, DecodingKey>> {
        let discovery_url = format!("{}/.well-known/openid-configuration", self.issuer);
        let discovery: Value = self.get_json(&discovery_url).await?;
        if discovery["issuer"].as_str() != Some(self.issuer.as_str()) {
            bail!("the discovery document names another issuer");
        }
        let jwks_uri = discovery["jwks_uri"]
            .as_str()
            .ok_or_else(|| anyhow!("the discovery document has no jwks_uri"))?;
        let jwks: Value = self.get_json(jwks_uri).await?;
        let mut keys = HashMap::new();
        for jwk in jwks["keys"].as_array().into_iter().flatten() {
            let field = |k: &str| jwk[k].as_str();
            let usable = field("kty") == Some("RSA")
                && field("use").is_none_or(|u| u == "sig")
                && field("alg").is_none_or(|a| a == "RS256");
            if let (true, Some(kid), Some(n), Some(e)) =
                (usable, field("kid"), field("n"), field("e"))
            {
                keys.insert(kid.to_string(), DecodingKey::from_rsa_components(n, e)?);
            }
        }
        Ok(keys)
    }

    async fn get_json(&self, url: &str) -> anyhow::Result<Value> {
        self.http
            .get(url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?
            .error_for_status()?
            .json()
            .await
            .with_context(|| format!("GET {url}: not JSON"))
    }
}

/// Claims as API Gateway passes them to the function: every value a string.
fn stringify_claims(claims: Value) -> Option<BTreeMap<String, String>> {
    let Value::Object(map) = claims else {
        return None;
    };
    Some(
        map.into_iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s,
                    // As API Gateway's HTTP API JWT authorizer passes an array claim:
                    // `["a","b"]` becomes the string `[a b]`.
                    Value::Array(items) => format!(
                        "[{}]",
                        items
                            .into_iter()
                            .map(|i| match i {
                                Value::String(s) => s,
                                other => other.to_string(),
                            })
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    other => other.to_string(),
                };
                (k, s)
            })
            .collect(),
    )
}

/// The local run's auth: the dev issuer (which also mints tokens for tests and the
/// CLI) and the verifier the gateway checks bearer tokens with.
#[derive(Clone)]
pub struct DevAuth {
    pub issuer: String,
    pub audience: String,
    pub org_claim: String,
    provider: Arc<DevIssuer>,
    verifier: Arc<JwtVerifier>,
}

impl DevAuth {
    /// Generates the issuer's RSA key (a per-run key; nothing is stored).
    pub fn new(issuer: &str, audience: &str, org_claim: &str) -> anyhow::Result<DevAuth> {
        let started = Instant::now();
        let provider = Arc::new(DevIssuer::new(issuer, audience, org_claim)?);
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "dev issuer key generated"
        );
        Ok(DevAuth {
            issuer: provider.issuer.clone(),
            audience: audience.into(),
            org_claim: org_claim.into(),
            verifier: Arc::new(JwtVerifier::new(&provider.issuer, audience)?),
            provider,
        })
    }

    /// A token for `user` (its `sub`) in `org`, valid for `hours`, signed by the issuer.
    pub fn token(&self, org: &str, user: &str, hours: i64) -> String {
        let claims = self.provider.base_claims(user, org, hours * 3600);
        self.provider
            .sign(&Value::Object(claims))
            .unwrap_or_default()
    }

    /// A token like [`DevAuth::token`] whose role claim says viewer (`groups: ["staff"]`).
    pub fn viewer_token(&self, org: &str, user: &str, hours: i64) -> String {
        let mut claims = self.provider.base_claims(user, org, hours * 3600);
        claims.insert(ROLE_CLAIM.into(), json!([VIEWER_GROUP]));
        self.provider
            .sign(&Value::Object(claims))
            .unwrap_or_default()
    }

    /// The claims a token of this issuer carries, valid for `lifetime_seconds` (negative:
    /// already expired); attack tests alter them and sign them with [`DevAuth::sign`].
    pub fn claims(
        &self,
        org: &str,
        user: &str,
        lifetime_seconds: i64,
    ) -> serde_json::Map<String, Value> {
        self.provider.base_claims(user, org, lifetime_seconds)
    }

    /// `claims` signed with the issuer's own key (RS256, its `kid`): a token the real
    /// issuer could have signed, whatever it says (attack tests).
    pub fn sign(&self, claims: &Value) -> String {
        self.provider.sign(claims).unwrap_or_default()
    }

    /// The issuer's published keys (its JWKS document).
    pub fn jwks(&self) -> Value {
        self.provider.jwks()
    }

    /// Claims as API Gateway passes them to the function (every value a string), if
    /// the authorizer would let the token through.
    pub async fn verify(&self, bearer: &str) -> Option<BTreeMap<String, String>> {
        stringify_claims(self.verifier.verify(bearer).await?)
    }

    /// The issuer's routes, to merge into the server at the issuer URL's origin.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        router(self.provider.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Served {
        auth: DevAuth,
        base: String,
        http: reqwest::Client,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Served {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    /// The issuer on a free port, merged before a fallback that stands for the gateway.
    async fn serve() -> Served {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let auth =
            DevAuth::new(&format!("{base}/dev-issuer"), "seatscope-local", "org_id").unwrap();
        let router: Router = Router::new()
            .merge(auth.router())
            .fallback(|| async { "reached the gateway" });
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Served {
            auth,
            base,
            http,
            task,
        }
    }

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn authorize_query(s: &Served, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut q: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", "seatscope-local"),
            ("redirect_uri", &format!("{}/callback", s.base)),
            ("scope", "openid email"),
            ("state", "st-1"),
            ("code_challenge", &s256(VERIFIER)),
            ("code_challenge_method", "S256"),
            ("nonce", "n-1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in overrides {
            q.retain(|(qk, _)| qk != k);
            if !v.is_empty() {
                q.push((k.to_string(), v.to_string()));
            }
        }
        q
    }

    /// Signs in through the form and returns the code from the redirect.
    async fn sign_in(s: &Served, email: &str, org: &str) -> String {
        let mut form = authorize_query(s, &[]);
        form.push(("email".into(), email.into()));
        form.push(("org".into(), org.into()));
        let resp = s
            .http
            .post(format!("{}/dev-issuer/authorize", s.base))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
        let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        assert!(location
            .as_str()
            .starts_with(&format!("{}/callback?", s.base)));
        let q: HashMap<String, String> = location.query_pairs().into_owned().collect();
        assert_eq!(q["state"], "st-1");
        q["code"].clone()
    }

    async fn redeem(s: &Served, code: &str, verifier: &str) -> (u16, Value) {
        let resp = s
            .http
            .post(format!("{}/dev-issuer/token", s.base))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &format!("{}/callback", s.base)),
                ("client_id", "seatscope-local"),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    #[test]
    fn the_key_is_rsa_2048_and_its_kid_is_the_jwk_thumbprint() {
        let started = Instant::now();
        let key = SigningKey::generate().unwrap();
        // Debug builds: num-bigint-dig and rsa are optimized (root Cargo.toml) to keep this short.
        eprintln!("RSA-2048 key generated in {:?}", started.elapsed());
        let n = key.jwk["n"].as_str().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(n).unwrap().len(), 256);
        let members = format!(r#"{{"e":"AQAB","kty":"RSA","n":"{n}"}}"#);
        assert_eq!(key.kid, URL_SAFE_NO_PAD.encode(Sha256::digest(members)));
        assert_eq!(key.jwk["kid"], key.kid);
    }

    #[tokio::test]
    async fn a_minted_token_verifies_through_discovery_and_the_jwks() {
        let s = serve().await;
        let claims = s
            .auth
            .verify(&s.auth.token("demo", "admin", 1))
            .await
            .unwrap();
        assert_eq!(claims["org_id"], "demo");
        assert_eq!(claims["sub"], "admin");
        assert_eq!(claims["aud"], "seatscope-local");
        assert_eq!(claims["iss"], format!("{}/dev-issuer", s.base));
        assert!(
            claims["exp"].parse::<i64>().is_ok(),
            "numbers come as strings"
        );
    }

    #[tokio::test]
    async fn tokens_from_another_key_audience_or_issuer_expired_or_hs256_are_refused() {
        let s = serve().await;
        let issuer = format!("{}/dev-issuer", s.base);
        // Same issuer URL and audience, another key (unknown kid, even after a refetch).
        let other = DevAuth::new(&issuer, "seatscope-local", "org_id").unwrap();
        assert!(s
            .auth
            .verify(&other.token("demo", "admin", 1))
            .await
            .is_none());
        // The right key, with the wrong kid: the signature does not verify.
        let mut forged = Header::new(Algorithm::RS256);
        forged.kid = Some(s.auth.provider.key.kid.clone());
        let claims = Value::Object(s.auth.provider.base_claims("admin", "demo", 3600));
        let token = jsonwebtoken::encode(&forged, &claims, &other.provider.key.encoding).unwrap();
        assert!(s.auth.verify(&token).await.is_none());

        let mut wrong_aud = s.auth.provider.base_claims("admin", "demo", 3600);
        wrong_aud.insert("aud".into(), json!("someone-else"));
        let token = s.auth.provider.sign(&Value::Object(wrong_aud)).unwrap();
        assert!(s.auth.verify(&token).await.is_none(), "wrong audience");

        let mut wrong_iss = s.auth.provider.base_claims("admin", "demo", 3600);
        wrong_iss.insert("iss".into(), json!("http://127.0.0.1:1/dev-issuer"));
        let token = s.auth.provider.sign(&Value::Object(wrong_iss)).unwrap();
        assert!(s.auth.verify(&token).await.is_none(), "wrong issuer");

        let mut no_aud = s.auth.provider.base_claims("admin", "demo", 3600);
        no_aud.remove("aud");
        let token = s.auth.provider.sign(&Value::Object(no_aud)).unwrap();
        assert!(s.auth.verify(&token).await.is_none(), "no audience");

        assert!(
            s.auth
                .verify(&s.auth.token("demo", "admin", -2))
                .await
                .is_none(),
            "expired"
        );

        let mut not_yet = s.auth.provider.base_claims("admin", "demo", 3600);
        not_yet.insert(
            "nbf".into(),
            json!(OffsetDateTime::now_utc().unix_timestamp() + 600),
        );
        let token = s.auth.provider.sign(&Value::Object(not_yet)).unwrap();
        assert!(s.auth.verify(&token).await.is_none(), "not valid before");

        // HS256 with the issuer's kid, keyed with its public modulus (alg confusion).
        let mut hs = Header::new(Algorithm::HS256);
        hs.kid = Some(s.auth.provider.key.kid.clone());
        let n = s.auth.provider.key.jwk["n"].as_str().unwrap().to_string();
        let token =
            jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(n.as_bytes())).unwrap();
        assert!(s.auth.verify(&token).await.is_none(), "HS256");
        assert!(s.auth.verify("eyJhbGciOiJIUzI1NiJ9.e30.x").await.is_none());
        assert!(s.auth.verify("not a token").await.is_none());
        // The genuine one still passes after all that.
        assert!(s
            .auth
            .verify(&s.auth.token("demo", "admin", 1))
            .await
            .is_some());
    }

    #[tokio::test]
    async fn jwks_are_cached_and_refetched_once_for_an_unknown_kid() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        // A stand-in issuer whose JWKS can rotate, counting the JWKS fetches.
        #[derive(Clone)]
        struct Rotating {
            issuer: String,
            keys: Arc<Mutex<Vec<Value>>>,
            fetches: Arc<AtomicUsize>,
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}/idp", listener.local_addr().unwrap());
        let a = DevIssuer::new(&issuer, "seatscope-local", "org_id").unwrap();
        let b = DevIssuer::new(&issuer, "seatscope-local", "org_id").unwrap();
        let state = Rotating {
            issuer: issuer.clone(),
            keys: Arc::new(Mutex::new(vec![a.key.jwk.clone()])),
            fetches: Arc::new(AtomicUsize::new(0)),
        };
        let router = Router::new()
            .route(
                "/idp/.well-known/openid-configuration",
                get(|State(s): State<Rotating>| async move {
                    axum::Json(
                        json!({"issuer": s.issuer, "jwks_uri": format!("{}/keys", s.issuer)}),
                    )
                }),
            )
            .route(
                "/idp/keys",
                get(|State(s): State<Rotating>| async move {
                    s.fetches.fetch_add(1, Ordering::SeqCst);
                    axum::Json(json!({"keys": *s.keys.lock().unwrap()}))
                }),
            )
            .with_state(state.clone());
        let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let verifier = JwtVerifier::new(&issuer, "seatscope-local").unwrap();
        let token = |i: &DevIssuer| {
            i.sign(&Value::Object(i.base_claims("admin", "demo", 3600)))
                .unwrap()
        };

        assert!(verifier.verify(&token(&a)).await.is_some());
        assert!(verifier.verify(&token(&a)).await.is_some());
        assert_eq!(
            state.fetches.load(Ordering::SeqCst),
            1,
            "the keys are cached"
        );
        // An unknown kid: one refetch, still unknown, refused.
        assert!(verifier.verify(&token(&b)).await.is_none());
        assert_eq!(state.fetches.load(Ordering::SeqCst), 2, "one refetch");
        // The issuer rotates to b: the next unknown-kid token brings it in.
        state.keys.lock().unwrap().push(b.key.jwk.clone());
        assert!(verifier.verify(&token(&b)).await.is_some());
        assert!(verifier.verify(&token(&a)).await.is_some());
        assert_eq!(state.fetches.load(Ordering::SeqCst), 3);
        task.abort();
    }

    #[tokio::test]
    async fn discovery_and_jwks_describe_the_issuer_and_allow_any_origin() {
        let s = serve().await;
        let issuer = format!("{}/dev-issuer", s.base);
        let resp = s
            .http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["access-control-allow-origin"], "*");
        let doc: Value = resp.json().await.unwrap();
        assert_eq!(doc["issuer"], issuer);
        assert_eq!(doc["authorization_endpoint"], format!("{issuer}/authorize"));
        assert_eq!(doc["token_endpoint"], format!("{issuer}/token"));
        assert_eq!(doc["jwks_uri"], format!("{issuer}/jwks.json"));
        assert_eq!(doc["end_session_endpoint"], format!("{issuer}/logout"));
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            json!(["RS256"])
        );
        let jwks: Value = s
            .http
            .get(format!("{issuer}/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = &jwks["keys"][0];
        assert_eq!(
            (
                key["kty"].as_str(),
                key["alg"].as_str(),
                key["use"].as_str()
            ),
            (Some("RSA"), Some("RS256"), Some("sig"))
        );
        assert_eq!(key["e"], "AQAB");
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(key["n"].as_str().unwrap())
                .unwrap()
                .len(),
            256
        );
        let preflight = s
            .http
            .request(reqwest::Method::OPTIONS, format!("{issuer}/token"))
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 204);
        assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    }

    #[tokio::test]
    async fn the_sign_in_flow_issues_tokens_the_verifier_and_an_oidc_client_accept() {
        let s = serve().await;
        let page = s
            .http
            .get(format!("{}/dev-issuer/authorize", s.base))
            .query(&authorize_query(&s, &[]))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("<h1>Sign in to Seatscope (local dev issuer)</h1>"));
        assert!(html.contains("<label for=\"email\">Email</label>"));
        assert!(html.contains("<label for=\"org\">Organization</label>"));
        assert!(html.contains("value=\"admin@demo.example\""));
        assert!(html.contains("value=\"demo\""));
        assert!(html.contains("<button type=\"submit\">Sign in</button>"));

        let code = sign_in(&s, "Ops@Acme.example", "acme").await;
        let (status, tokens) = redeem(&s, &code, VERIFIER).await;
        assert_eq!(status, 200, "{tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 3600);
        assert_eq!(tokens["scope"], "openid email");
        let access = s
            .auth
            .verify(tokens["access_token"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(access["sub"], "user:ops@acme.example");
        assert_eq!(access["email"], "ops@acme.example");
        assert_eq!(access["org_id"], "acme");
        let id_token = tokens["id_token"].as_str().unwrap();
        assert!(jsonwebtoken::decode_header(id_token).unwrap().kid.is_some());
        let id = s.auth.verify(id_token).await.unwrap();
        for claim in ["iss", "aud", "exp", "iat", "sub"] {
            assert!(id.contains_key(claim), "the id_token has {claim}");
        }
        assert_eq!(id["nonce"], "n-1");
        assert_eq!(
            id["exp"].parse::<i64>().unwrap() - id["iat"].parse::<i64>().unwrap(),
            3600
        );
    }

    #[tokio::test]
    async fn a_code_is_single_use() {
        let s = serve().await;
        let code = sign_in(&s, "admin@demo.example", "demo").await;
        assert_eq!(redeem(&s, &code, VERIFIER).await.0, 200);
        let (status, body) = redeem(&s, &code, VERIFIER).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "invalid_grant");
    }

    #[tokio::test]
    async fn a_pkce_mismatch_at_token_is_refused_and_spends_the_code() {
        let s = serve().await;
        let code = sign_in(&s, "admin@demo.example", "demo").await;
        let wrong = "x".repeat(43);
        let (status, body) = redeem(&s, &code, &wrong).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "invalid_grant");
        assert!(body.get("access_token").is_none());
        assert_eq!(redeem(&s, &code, VERIFIER).await.0, 400);

        let (status, body) = redeem(&s, "never-issued", VERIFIER).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        let resp = s
            .http
            .post(format!("{}/dev-issuer/token", s.base))
            .form(&[("grant_type", "password")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "unsupported_grant_type");
    }

    #[tokio::test]
    async fn authorize_refuses_another_client_missing_or_plain_pkce_and_foreign_redirects() {
        let s = serve().await;
        let foreign_port = "http://127.0.0.1:1/callback".to_string();
        for overrides in [
            vec![("client_id", "someone-else")],
            vec![("code_challenge", "")],
            vec![("code_challenge_method", "")],
            vec![("code_challenge_method", "plain")],
            vec![("redirect_uri", "https://evil.example/callback")],
            vec![("redirect_uri", foreign_port.as_str())],
            vec![("redirect_uri", "")],
            vec![("response_type", "token")],
        ] {
            let resp = s
                .http
                .get(format!("{}/dev-issuer/authorize", s.base))
                .query(&authorize_query(&s, &overrides))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 400, "{overrides:?}");
            assert!(resp
                .text()
                .await
                .unwrap()
                .contains("<h1>Sign-in request refused</h1>"));
            // The form's hidden fields are checked again on submit.
            let mut form = authorize_query(&s, &overrides);
            form.push(("email".into(), "admin@demo.example".into()));
            form.push(("org".into(), "demo".into()));
            let resp = s
                .http
                .post(format!("{}/dev-issuer/authorize", s.base))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 400, "POST {overrides:?}");
        }
        // localhost is the same server as 127.0.0.1.
        let alias = s.base.replace("127.0.0.1", "localhost") + "/callback";
        let resp = s
            .http
            .get(format!("{}/dev-issuer/authorize", s.base))
            .query(&authorize_query(&s, &[("redirect_uri", &alias)]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    #[tokio::test]
    async fn the_sign_in_page_escapes_what_it_echoes_and_refuses_a_bad_org() {
        let s = serve().await;
        let resp = s
            .http
            .get(format!("{}/dev-issuer/authorize", s.base))
            .query(&authorize_query(
                &s,
                &[("state", "\"><script>alert(1)</script>")],
            ))
            .send()
            .await
            .unwrap();
        let html = resp.text().await.unwrap();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&quot;&gt;&lt;script&gt;"));

        let mut form = authorize_query(&s, &[]);
        form.push(("email".into(), "admin@demo.example".into()));
        form.push(("org".into(), "<b>no spaces</b>".into()));
        let resp = s
            .http
            .post(format!("{}/dev-issuer/authorize", s.base))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let html = resp.text().await.unwrap();
        assert!(html.contains("role=\"alert\""));
        assert!(html.contains("&lt;b&gt;no spaces&lt;/b&gt;"));
        assert!(html.contains("aria-invalid=\"true\""));
    }

    /// Values that would break out of text or an attribute if pasted in raw, and
    /// how they must appear.
    const HOSTILE: [(&str, &str); 3] = [
        (
            "<script>alert(1)</script>",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
        ),
        (
            "\"onmouseover=alert(1) x=\"",
            "&quot;onmouseover=alert(1) x=&quot;",
        ),
        ("a & b", "a &amp; b"),
    ];

    async fn page_text(r: Response) -> String {
        let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn every_page_escapes_each_value_it_shows() {
        let iss =
            DevIssuer::new("http://127.0.0.1:9/dev-issuer", "seatscope-local", "org_id").unwrap();
        let req = |field: &str, value: &str| {
            let v = |f: &str, default: &str| {
                if f == field {
                    value.into()
                } else {
                    default.into()
                }
            };
            AuthorizeRequest {
                client_id: v("client_id", "seatscope-local"),
                redirect_uri: v("redirect_uri", "http://127.0.0.1:9/callback"),
                scope: v("scope", "openid email"),
                state: Some(v("state", "st-1")),
                code_challenge: v("code_challenge", "abc"),
                nonce: Some(v("nonce", "n-1")),
            }
        };
        for (raw, escaped) in HOSTILE {
            let mut pages = vec![error_page(raw)];
            for field in [
                "client_id",
                "redirect_uri",
                "scope",
                "state",
                "code_challenge",
                "nonce",
            ] {
                pages.push(sign_in_form(
                    &iss,
                    &req(field, raw),
                    "a@b.example",
                    "acme",
                    true,
                    None,
                ));
            }
            let ok = req("", "");
            pages.push(sign_in_form(&iss, &ok, raw, "acme", true, None));
            pages.push(sign_in_form(&iss, &ok, "a@b.example", raw, false, None));
            pages.push(sign_in_form(
                &iss,
                &ok,
                "a",
                "acme",
                true,
                Some(("email", raw)),
            ));
            for page in pages {
                let text = page_text(page).await;
                assert!(
                    text.contains(escaped) && !text.contains(raw),
                    "{raw}: {text}"
                );
            }
        }
    }

    #[tokio::test]
    async fn the_sign_in_form_marks_the_field_in_error() {
        let iss =
            DevIssuer::new("http://127.0.0.1:9/dev-issuer", "seatscope-local", "org_id").unwrap();
        let req = AuthorizeRequest {
            client_id: "seatscope-local".into(),
            redirect_uri: "http://127.0.0.1:9/callback".into(),
            scope: "openid email".into(),
            state: None,
            code_challenge: "abc".into(),
            nonce: None,
        };
        let page = sign_in_form(
            &iss,
            &req,
            "a@b.example",
            "x y",
            false,
            Some(("org", "Bad.")),
        );
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        let text = page_text(page).await;
        for part in [
            "<p id=\"form-error\" class=\"error\" role=\"alert\">Bad.</p>",
            "<form method=\"post\" action=\"/dev-issuer/authorize\">",
            "<input type=\"hidden\" name=\"code_challenge_method\" value=\"S256\">",
            "aria-describedby=\"email-hint\" value=\"a@b.example\">",
            "aria-describedby=\"org-hint form-error\" value=\"x y\" aria-invalid=\"true\">",
            "user:&lt;email&gt;.",
            "<input id=\"role-viewer\" name=\"role\" type=\"radio\" value=\"viewer\" checked>",
            "<style>body{font-family:system-ui",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        assert!(!text.contains("name=\"state\"") && !text.contains("name=\"nonce\""));
    }

    #[tokio::test]
    async fn logout_redirects_only_to_the_gateway_origin() {
        let s = serve().await;
        let home = format!("{}/connections", s.base);
        let resp = s
            .http
            .get(format!("{}/dev-issuer/logout", s.base))
            .query(&[("post_logout_redirect_uri", home.as_str()), ("state", "s")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
        assert_eq!(resp.headers()["location"], format!("{home}?state=s"));
        let resp = s
            .http
            .get(format!("{}/dev-issuer/logout", s.base))
            .query(&[("post_logout_redirect_uri", "https://evil.example/")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.text().await.unwrap().contains("<h1>Signed out</h1>"));
    }

    #[tokio::test]
    async fn nothing_under_the_issuer_path_reaches_the_gateway() {
        let s = serve().await;
        for (method, path) in [
            ("GET", "/dev-issuer"),
            ("GET", "/dev-issuer/"),
            ("GET", "/dev-issuer/userinfo"),
            ("POST", "/dev-issuer/a/b/c"),
            ("PUT", "/dev-issuer/token"),
            ("DELETE", "/dev-issuer/jwks.json"),
        ] {
            let resp = s
                .http
                .request(method.parse().unwrap(), format!("{}{path}", s.base))
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_client_error(), "{method} {path}");
            assert_ne!(
                resp.text().await.unwrap(),
                "reached the gateway",
                "{method} {path}"
            );
        }
        let resp = s
            .http
            .get(format!("{}/api/overview", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.text().await.unwrap(), "reached the gateway");
    }
}
