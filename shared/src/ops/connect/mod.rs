//! Connecting an app (docs/design.md § Flows) and managing the connection: start an OAuth
//! connect (state + PKCE → the vendor's consent page) and finish it (consume the
//! state once → exchange the code → identity → secret → connection); connect with
//! an API key (checked against the vendor first); invite links for an app's admin;
//! Reconnect (any connect over an existing connection keeps its history); and
//! disconnect (optionally purging the synced data). Nothing partial is left
//! behind when a step fails, and no token or key leaves a `secrecy` type except
//! on its way to the vendor or Secrets Manager.

use base64::Engine as _;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use time::Duration;

use crate::domain::catalog::Catalog;
pub use crate::oauth_client::TOKEN_REFUSED;

mod account_change;
mod api_key;
mod disconnect;
mod invite;
mod oauth;

pub use account_change::{
    cancel_account_change, held_message, switch_account, AccountChangeCancelled, AccountChoice,
    AccountSwitched, Stored, ACCOUNT_CHANGED,
};
use account_change::{commit_grant, grant_secret_name};
pub use api_key::*;
pub use disconnect::*;
pub use invite::*;
pub use oauth::*;

pub const STATE_TTL: Duration = Duration::minutes(10);
/// How long an invite link can be used.
pub const INVITE_TTL: Duration = Duration::days(7);
/// Longer than any vendor's keys; a bound so nobody posts megabytes at a vendor.
pub const MAX_API_KEY_LEN: usize = 512;
/// `connected_by` of an invite connect when the vendor did not say who consented.
pub const INVITED_ADMIN: &str = crate::domain::audit::INVITED_ADMIN;
const DEFAULT_RETURN_TO: &str = "/connections";

#[derive(Debug, serde::Serialize)]
pub struct StartedConnect {
    pub authorize_url: String,
    /// Goes to the browser as a cookie, never in the body.
    #[serde(skip)]
    pub binding: BrowserBinding,
}

/// Name of the cookie that binds an OAuth state to the browser that started the
/// connect (RFC 9700 §4.7.1): `__Host-` prefixed and `Secure` when served over
/// https (`OAUTH_COOKIE_SECURE`, default true), plain over the local http stack.
pub fn oauth_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-seatscope_oauth"
    } else {
        "seatscope_oauth"
    }
}

/// How long the binding cookie lives: as long as the state.
const COOKIE_MAX_AGE: i64 = STATE_TTL.whole_seconds();

/// A fresh random nonce (32 bytes, base64url) for the browser's cookie; only its
/// SHA-256 is stored with the state. `Debug` never shows it.
pub struct BrowserBinding {
    nonce: SecretString,
}

impl std::fmt::Debug for BrowserBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrowserBinding([REDACTED])")
    }
}

impl BrowserBinding {
    fn new() -> BrowserBinding {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        BrowserBinding {
            nonce: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(bytes)
                .into(),
        }
    }

    fn hash(&self) -> String {
        state_hash(self.nonce.expose_secret())
    }

    /// The `Set-Cookie` value: `HttpOnly; SameSite=Lax; Path=/; Max-Age=600`, plus
    /// `Secure` (and the `__Host-` name) when `secure`.
    pub fn set_cookie(&self, secure: bool) -> String {
        format!(
            "{}={}; Path=/; Max-Age={COOKIE_MAX_AGE}; HttpOnly; SameSite=Lax{}",
            oauth_cookie_name(secure),
            self.nonce.expose_secret(),
            if secure { "; Secure" } else { "" }
        )
    }
}

/// The `Set-Cookie` value that deletes the binding cookie (the callback is done with it).
pub fn clear_oauth_cookie(secure: bool) -> String {
    format!(
        "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
        oauth_cookie_name(secure),
        if secure { "; Secure" } else { "" }
    )
}

/// The binding nonce from a request's `Cookie` header values, if present and well formed.
pub fn oauth_cookie<'a>(
    cookie_headers: impl IntoIterator<Item = &'a str>,
    secure: bool,
) -> Option<SecretString> {
    let name = oauth_cookie_name(secure);
    cookie_headers
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(|v| SecretString::from(v.to_string()))
}

/// The nonce's hash equals the state's, compared without an early exit.
fn same_browser(stored: Option<&str>, nonce: Option<&SecretString>) -> bool {
    let (Some(stored), Some(nonce)) = (stored, nonce) else {
        return false;
    };
    let given = state_hash(nonce.expose_secret());
    stored.len() == given.len()
        && stored
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Hex SHA-256 of a state value: what the table stores instead of the value.
pub fn state_hash(state: &str) -> String {
    Sha256::digest(state.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Longest `return_to` looked at; anything longer falls back to the default.
const MAX_RETURN_TO_LEN: usize = 512;

/// Where the browser may be sent back to after the consent screen: one of the
/// dashboard's own routes (`/`, `/connections`, `/apps/{provider}` for a catalog
/// provider), optionally with a query of plain characters. The path is resolved
/// first (percent-decoded, dot segments removed), so `/.//host`, `/%2e//host`,
/// `/a/..//host`, `/%2f/host` or `/\host` cannot become `//host` later; anything
/// that is not a dashboard route falls back to `/connections`.
pub fn resolve_return_to(return_to: Option<&str>, catalog: &Catalog) -> String {
    return_to
        .and_then(|r| dashboard_route(r, catalog))
        .unwrap_or_else(|| DEFAULT_RETURN_TO.to_string())
}

fn dashboard_route(raw: &str, catalog: &Catalog) -> Option<String> {
    // Browsers drop tabs and newlines inside URLs: refuse every control or space.
    if raw.is_empty()
        || raw.len() > MAX_RETURN_TO_LEN
        || raw
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '#')
    {
        return None;
    }
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    let decoded = percent_decode(path);
    // Encoded twice (`%252e`) or into anything but plain path characters: not ours.
    if decoded.contains('%')
        || decoded.contains('\\')
        || !decoded
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '?' && c != '#')
    {
        return None;
    }
    let path = remove_dot_segments(&decoded)?;
    let canonical = match path.as_str() {
        "/" | "/connections" => path,
        _ => {
            let provider = path.strip_prefix("/apps/")?;
            catalog.get(provider).ok()?;
            path
        }
    };
    match query {
        None | Some("") => Some(canonical),
        Some(q)
            if q.len() <= 256
                && q.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(c, '-' | '_' | '.' | '~' | '=' | '&' | '+' | ',')
                }) =>
        {
            Some(format!("{canonical}?{q}"))
        }
        Some(_) => None,
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3986 §5.2.4 on an absolute path; None if it does not start with `/`.
/// Empty segments are kept (`/a//b` stays so), which no dashboard route has.
fn remove_dot_segments(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?;
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." | ".." => {
                if *seg == ".." {
                    out.pop();
                }
                // A trailing dot segment leaves a directory path (`/a/.` → `/a/`).
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    Some(format!("/{}", out.join("/")))
}

/// A path that stays on this origin: one `/` followed by anything but `/` or `\`.
pub fn is_same_origin_path(location: &str) -> bool {
    let mut chars = location.chars();
    chars.next() == Some('/') && !matches!(chars.next(), Some('/' | '\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::load(|_| None).unwrap()
    }

    /// Every way found to smuggle another origin through `return_to`.
    const HOSTILE_RETURN_TO: &[&str] = &[
        "/.//evil.example/x",
        "/%2e//evil.example/x",
        "/%2E//evil.example/x",
        "/a/..//evil.example/x",
        "/apps/..//evil.example/x",
        "/connections/../..//evil.example/x",
        "/%2e%2e//evil.example/x",
        "/%2f/evil.example/x",
        "/%2F%2Fevil.example/x",
        "/%5cevil.example/x",
        "/%5C%5Cevil.example",
        "/\\evil.example",
        "/\\/evil.example",
        "\\\\evil.example",
        "//evil.example",
        "//evil.example/x",
        "///evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r//evil.example",
        "/%09/evil.example",
        "/%0a/evil.example",
        "https://evil.example",
        "https://evil.example/connections",
        "http:evil.example",
        "javascript:alert(1)",
        "evil.example",
        "connections",
        "/%252e//evil.example/x",
        "/apps/%2e%2e/%2e%2e//evil.example",
        "/connections?x=1#//evil.example",
        "/connections?next=//evil.example",
        "/connections?x=%0d%0aSet-Cookie:a",
        "/apps/unknown-app",
        "/apps/pagerduty/../../..//evil.example",
        "/a\nb",
    ];

    #[test]
    fn return_to_resolves_to_a_dashboard_route_or_the_default() {
        let c = catalog();
        assert_eq!(resolve_return_to(None, &c), "/connections");
        assert_eq!(resolve_return_to(Some(""), &c), "/connections");
        for (given, want) in [
            ("/", "/"),
            ("/connections", "/connections"),
            ("/apps/pagerduty", "/apps/pagerduty"),
            ("/apps/pagerduty?x=1", "/apps/pagerduty?x=1"),
            ("/apps/./pagerduty", "/apps/pagerduty"),
            ("/apps/sendgrid/../pandadoc", "/apps/pandadoc"),
            ("/%63onnections", "/connections"),
            (
                "/connections?tab=all&sort=name",
                "/connections?tab=all&sort=name",
            ),
        ] {
            assert_eq!(resolve_return_to(Some(given), &c), want, "{given}");
        }
        for bad in HOSTILE_RETURN_TO {
            assert_eq!(resolve_return_to(Some(bad), &c), "/connections", "{bad:?}");
        }
    }

    #[test]
    fn no_return_to_leaves_the_origin_on_approve_or_deny() {
        let c = catalog();
        for bad in HOSTILE_RETURN_TO {
            let return_to = resolve_return_to(Some(bad), &c);
            for outcome in [
                CallbackOutcome::Connected {
                    provider: "pagerduty".into(),
                    return_to: return_to.clone(),
                    invited: false,
                },
                CallbackOutcome::NotConnected {
                    provider: "pagerduty".into(),
                    return_to: return_to.clone(),
                    reason: "access_denied".into(),
                    message: "denied".into(),
                    invited: false,
                },
            ] {
                let to = outcome.location();
                assert!(
                    to.starts_with("/connections?provider=pagerduty&result="),
                    "{bad:?} → {to}"
                );
            }
        }
        // Even an unresolved stored path cannot leave the origin.
        let o = CallbackOutcome::Connected {
            provider: "pagerduty".into(),
            return_to: "/.//evil.example/x".into(),
            invited: false,
        };
        assert!(is_same_origin_path(&o.location()), "{}", o.location());
        assert!(!is_same_origin_path("//evil.example"));
        assert!(!is_same_origin_path("/\\evil.example"));
        assert!(!is_same_origin_path("https://evil.example"));
        assert!(is_same_origin_path("/connections"));
    }

    #[test]
    fn the_binding_cookie_is_host_prefixed_secure_httponly_lax_and_ten_minutes() {
        let b = BrowserBinding::new();
        let secure = b.set_cookie(true);
        assert!(secure.starts_with("__Host-seatscope_oauth="), "{secure}");
        for part in [
            "; Path=/",
            "; Max-Age=600",
            "; HttpOnly",
            "; SameSite=Lax",
            "; Secure",
        ] {
            assert!(secure.contains(part), "{secure} lacks {part}");
        }
        assert!(!secure.contains("Domain"));
        let local = b.set_cookie(false);
        assert!(
            local.starts_with("seatscope_oauth=") && !local.contains("Secure"),
            "{local}"
        );
        assert!(!format!("{b:?}").contains(b.nonce.expose_secret()));
        // Read back from a Cookie header among others, by the configured name only.
        let nonce = b.nonce.expose_secret().to_string();
        let header = format!("a=1; seatscope_oauth={nonce}; b=2");
        let read = oauth_cookie([header.as_str()], false).unwrap();
        assert!(same_browser(Some(&b.hash()), Some(&read)));
        assert!(oauth_cookie([header.as_str()], true).is_none());
        assert!(!same_browser(
            Some(&b.hash()),
            Some(&BrowserBinding::new().nonce)
        ));
        assert!(!same_browser(None, Some(&read)));
        assert!(!same_browser(Some(&b.hash()), None));
        assert!(oauth_cookie(["seatscope_oauth=a;b"], false).is_some());
        assert!(oauth_cookie(["seatscope_oauth=<x>"], false).is_none());
    }

    #[test]
    fn state_hash_is_hex_sha256() {
        assert_eq!(state_hash("abc").len(), 64);
        assert_ne!(state_hash("abc"), state_hash("abd"));
    }
}
