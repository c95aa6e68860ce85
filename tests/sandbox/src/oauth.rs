//! OAuth 2.0 authorization-code plumbing shared by the sandboxes that have it: the consent
//! page and its form, the decision redirect, and the token endpoint's common checks. What
//! differs by vendor (PKCE, client authentication, scopes, response shapes) stays in each
//! vendor's `oauth` module.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use url::Url;

/// How long an authorization code waits to be exchanged.
pub(crate) const CODE_TTL: Duration = Duration::from_secs(30);

/// Form-encoded pairs, in order, repeated keys kept.
pub(crate) fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// One value per key; a repeated OAuth parameter is an error (RFC 6749 §3.1).
pub(crate) fn single_values(pairs: &[(String, String)]) -> Result<HashMap<&str, &str>, String> {
    let mut map = HashMap::new();
    for (k, v) in pairs {
        if map.insert(k.as_str(), v.as_str()).is_some() {
            return Err(format!("parameter {k} is repeated"));
        }
    }
    Ok(map)
}

/// The part of an authorization request every vendor validates the same way.
pub(crate) struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: Url,
    /// As given, echoed into the form.
    pub scope: String,
    pub state: Option<String>,
}

impl AuthorizeRequest {
    /// Checks `client_id` (against the registered one), `redirect_uri`, `response_type=code`
    /// and the presence of `scope`, in that order; the message is for the error page.
    pub fn validate(
        params: &HashMap<&str, &str>,
        registered_client_id: &str,
    ) -> Result<AuthorizeRequest, String> {
        let get = |k: &str| params.get(k).copied().filter(|v| !v.is_empty());
        let client_id = get("client_id").ok_or("client_id is missing")?;
        if client_id != registered_client_id {
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
        let scope = get("scope").ok_or("scope is missing")?.to_string();
        Ok(AuthorizeRequest {
            client_id: client_id.to_string(),
            redirect_uri,
            scope,
            state: get("state").map(str::to_string),
        })
    }

    /// The hidden fields that carry the request through the consent form.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
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

pub(crate) fn escape_html(s: &str) -> String {
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

/// 400 HTML page, titled "Authorization error — {vendor} sandbox".
pub(crate) fn error_page(vendor: &str, message: &str) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
             <title>Authorization error — {vendor} sandbox</title></head>\n<body>\n\
             <h1>Authorization error</h1>\n<p class=\"error\">{}</p>\n</body>\n</html>\n",
            escape_html(message)
        ),
    )
}

/// The consent page: `intro` (HTML, escaped by the caller), then one form posting `fields`
/// as hidden inputs to `action`, with Approve / Deny buttons.
pub(crate) fn consent_page(
    vendor: &str,
    intro: &str,
    action: &str,
    fields: Vec<(&'static str, String)>,
) -> Response {
    let mut page = String::new();
    page.push_str("<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">");
    page.push_str(&format!(
        "<title>Authorize Seatscope — {vendor} sandbox</title></head>\n<body>\n"
    ));
    page.push_str("<h1>Authorize Seatscope</h1>\n");
    page.push_str(intro);
    page.push_str(&format!("<form method=\"post\" action=\"{action}\">\n"));
    for (name, value) in fields {
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

/// Removes the `decision` field from the posted form and returns its value.
pub(crate) fn take_decision(pairs: &mut Vec<(String, String)>) -> Option<String> {
    pairs
        .iter()
        .position(|(k, _)| k == "decision")
        .map(|i| pairs.remove(i).1)
}

/// 302 to `to` with `params` appended to its query (existing parameters kept).
pub(crate) fn redirect(vendor: &str, mut to: Url, params: &[(&str, &str)]) -> Response {
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
        Err(_) => error_page(vendor, "redirect_uri cannot be used in a Location header"),
    }
}

/// Whether the request body is `application/x-www-form-urlencoded`, as the token endpoint needs.
pub(crate) fn is_form_encoded(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Whether the token request's `redirect_uri` is the authorization request's. Compared as
/// parsed URLs, so equivalent spellings (a trailing "/" on a bare host) match.
pub(crate) fn same_redirect(given: &str, authorized: &str) -> bool {
    Url::parse(given)
        .map(|u| u.as_str() == authorized)
        .unwrap_or(false)
}

/// `now + ttl`, saturating at ten years so an absurd configured TTL cannot overflow.
pub(crate) fn expiry(ttl: Duration) -> Instant {
    let now = Instant::now();
    let cap = Duration::from_secs(10 * 365 * 86_400);
    now.checked_add(ttl.min(cap)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escaping_covers_attribute_breakers() {
        assert_eq!(
            escape_html(r#"a&b<c>"d"'e'"#),
            "a&amp;b&lt;c&gt;&quot;d&quot;&#39;e&#39;"
        );
    }

    #[test]
    fn a_huge_token_ttl_does_not_overflow() {
        assert!(expiry(Duration::from_secs(u64::MAX)) > Instant::now());
    }
}
