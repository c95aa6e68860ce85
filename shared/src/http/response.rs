//! Responses: JSON, errors (status from the error type), HTML, files, redirects, and
//! the security headers every response of ours carries.

use lambda_http::{Body, Response};
use maud::Markup;
use serde::Serialize;

use crate::deps::Deps;
use crate::error::Error;

/// `Strict-Transport-Security` of the deployed (https) API: a year, subdomains too.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The headers every response of every handler carries, whatever it is (a page,
/// JSON, an error, a redirect, a file): `X-Content-Type-Options: nosniff`, and
/// HSTS when the API is served over https (its configured redirect URI says so;
/// the local http stack gets none).
pub fn with_security_headers(deps: &Deps, response: Response<Body>) -> Response<Body> {
    security_headers(response, deps.config.oauth_redirect_uri.scheme() == "https")
}

pub fn security_headers(mut response: Response<Body>, https: bool) -> Response<Body> {
    let headers = response.headers_mut();
    headers.insert(
        "x-content-type-options",
        http::HeaderValue::from_static("nosniff"),
    );
    if https {
        headers.insert(
            "strict-transport-security",
            http::HeaderValue::from_static(HSTS),
        );
    }
    response
}

pub(super) fn response(status: u16, content_type: &str, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// Static bytes (the dashboard page and its files). Text types go out as text,
/// which API Gateway passes through unencoded.
pub fn bytes(
    status: u16,
    content_type: &str,
    body: &'static [u8],
    immutable: bool,
) -> Result<Response<Body>, Error> {
    let body = match std::str::from_utf8(body) {
        Ok(text) => Body::from(text),
        Err(_) => Body::from(body.to_vec()),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header(
            "cache-control",
            if immutable {
                "public, max-age=86400"
            } else {
                "no-cache"
            },
        )
        .body(body)
        .map_err(|e| Error::internal("building a response", e))
}

/// A download: `Content-Disposition: attachment` with a plain file name.
pub fn attachment(file_name: &str, content_type: &str, body: String) -> Response<Body> {
    let safe: String = file_name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    Response::builder()
        .status(200)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .header(
            "content-disposition",
            format!("attachment; filename=\"{safe}\""),
        )
        .body(Body::from(body))
        .unwrap_or_else(|e| error(&Error::internal("building a response", e)))
}

pub fn json<T: Serialize>(status: u16, value: &T) -> Response<Body> {
    match serde_json::to_string(value) {
        Ok(body) => response(status, "application/json", body),
        Err(e) => error(&Error::internal("encoding the response", e)),
    }
}

/// `{"error": {"code", "message"}}` with the error's status. Internal detail
/// goes to the log, not the body.
pub fn error(e: &Error) -> Response<Body> {
    if e.status() >= 500 {
        tracing::error!(code = e.code(), error = %e.chain(), "request failed");
    } else {
        tracing::info!(code = e.code(), error = %e, "request refused");
    }
    let body = serde_json::json!({"error": {"code": e.code(), "message": e.public_message()}});
    response(e.status(), "application/json", body.to_string())
}

/// An HTML response for the browser flows: never cached, never framed (the
/// invite form takes a key), and no Referer (invite URLs carry their token).
pub fn html(status: u16, page: Markup) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("referrer-policy", "no-referrer")
        .header("x-frame-options", "DENY")
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        .body(Body::from(page.into_string()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// `204 No Content`.
pub fn no_content() -> Response<Body> {
    Response::builder()
        .status(204)
        .header("cache-control", "no-store")
        .body(Body::Empty)
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// Adds a `Set-Cookie` header (a value built by the core, e.g. the OAuth binding).
pub fn with_cookie(mut response: Response<Body>, set_cookie: &str) -> Response<Body> {
    if let Ok(v) = http::HeaderValue::from_str(set_cookie) {
        response.headers_mut().append("set-cookie", v);
    }
    response
}

pub fn redirect(location: &str) -> Response<Body> {
    Response::builder()
        .status(302)
        .header("location", location)
        .header("cache-control", "no-store")
        .body(Body::Empty)
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::page;

    #[test]
    fn every_kind_of_response_gets_nosniff_and_hsts_only_over_https() {
        let responses = || {
            vec![
                json(200, &serde_json::json!({"ok": true})),
                error(&Error::bad_request("x", "y")),
                error(&Error::internal("z", std::io::Error::other("boom"))),
                redirect("/connections"),
                page(400, "t", "m"),
                attachment("a.csv", "text/csv", "a,b\n".into()),
            ]
        };
        for r in responses() {
            let r = security_headers(r, false);
            assert_eq!(r.headers()["x-content-type-options"], "nosniff");
            assert!(r.headers().get("strict-transport-security").is_none());
        }
        for r in responses() {
            let r = security_headers(r, true);
            assert_eq!(r.headers()["x-content-type-options"], "nosniff");
            assert_eq!(r.headers()["strict-transport-security"], HSTS);
        }
    }
}
