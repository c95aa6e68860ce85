//! Glue shared by the HTTP handlers (feature `lambda`): the caller from API
//! Gateway's verified JWT claims, and results mapped to responses. Expected
//! failures become `Ok(Response)` with a status and a JSON or HTML body; a
//! handler never lets an error reach API Gateway as a bare 500.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use maud::{Markup, DOCTYPE};
use secrecy::SecretString;
use serde::Serialize;

use crate::claims::caller_from_claims;
use crate::domain::Caller;
use crate::error::Error;
use crate::App;

/// `Strict-Transport-Security` of the deployed (https) API: a year, subdomains too.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The headers every response of every handler carries, whatever it is (a page,
/// JSON, an error, a redirect, a file): `X-Content-Type-Options: nosniff`, and
/// HSTS when the API is served over https (its configured redirect URI says so;
/// the local http stack gets none).
pub fn with_security_headers(app: &App, response: Response<Body>) -> Response<Body> {
    security_headers(response, app.config.oauth_redirect_uri.scheme() == "https")
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

pub fn caller(req: &Request, config: &crate::config::Config) -> Result<Caller, Error> {
    let claims = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims),
        _ => None,
    };
    let claims = claims
        .ok_or_else(|| Error::Unauthorized("the request carries no verified token".into()))?;
    caller_from_claims(claims, &config.org_claim, &config.roles, &request_id(req))
}

/// API Gateway's id of the request (a random one where there is none, e.g. a
/// hand-made event): it keys the request's audit entry.
pub fn request_id(req: &Request) -> String {
    let given = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    };
    given
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
        .unwrap_or_else(crate::domain::new_request_id)
}

/// API Gateway's route key (`"POST /api/connections/{provider}/connect"`): handlers
/// route on it, so they match template.yaml exactly.
pub fn route_key(req: &Request) -> Option<String> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.clone(),
        _ => None,
    }
}

pub fn path_param(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_string)
}

pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_string)
}

fn response(status: u16, content_type: &str, body: String) -> Response<Body> {
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

/// The frame of a page around `main`. Rendered with maud: every value
/// interpolated here or in `main` is escaped.
pub fn html_document(title: &str, main: Markup) -> Markup {
    maud::html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " — Seatscope" }
                meta name="viewport" content="width=device-width, initial-scale=1";
            }
            body style="font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;line-height:1.5" {
                main { (main) }
            }
        }
    }
}

/// A page for someone without a dashboard account (an invited app admin): no
/// link back into the dashboard.
pub fn standalone_page(status: u16, title: &str, message: &str) -> Response<Body> {
    let main = maud::html! {
        h1 { (title) }
        p { (message) }
    };
    html(status, html_document(title, main))
}

/// A small page for browser flows (the OAuth callback's failures).
pub fn page(status: u16, title: &str, message: &str) -> Response<Body> {
    let main = maud::html! {
        h1 { (title) }
        p { (message) }
        p { a href="/connections" { "Back to Connections" } }
    };
    html(status, html_document(title, main))
}

/// The end of an invite connect: the admin who followed the link has no
/// dashboard account, so there is nowhere to send them but here.
pub fn invite_connected_page(provider_name: &str, vendor_account: Option<&str>) -> Response<Body> {
    let account = vendor_account
        .map(|a| format!(" (account {a})"))
        .unwrap_or_default();
    standalone_page(
        200,
        &format!("{provider_name} is connected"),
        &format!(
            "Seatscope can now read seat and usage data from {provider_name}{account}. \
             Thank you — you can close this tab."
        ),
    )
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

/// The request's `Cookie` header values.
pub fn cookie_headers(req: &Request) -> Vec<&str> {
    req.headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

pub fn redirect(location: &str) -> Response<Body> {
    Response::builder()
        .status(302)
        .header("location", location)
        .header("cache-control", "no-store")
        .body(Body::Empty)
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// The largest JSON body a call accepts: every one of ours is a few hundred bytes
/// (settings with 1,000 exempt seats stay far below).
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// The request body, refused with 413 over [`MAX_JSON_BODY`] before any parsing.
fn bounded_body(req: &Request) -> Result<&[u8], Error> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_JSON_BODY {
        return Err(Error::TooLarge(format!(
            "the body is {} bytes; this call accepts at most {MAX_JSON_BODY}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// The request body as JSON; an empty body is `T::default()`.
pub fn json_body<T: serde::de::DeserializeOwned + Default>(req: &Request) -> Result<T, Error> {
    let bytes = bounded_body(req)?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Error::bad_request(
            "invalid_body",
            format!("the body is not valid JSON for this call: {e}"),
        )
    })
}

/// The request body as JSON, required: an empty body is refused with the shape
/// the call expects.
pub fn required_json_body<T: serde::de::DeserializeOwned>(
    req: &Request,
    expected: &str,
) -> Result<T, Error> {
    serde_json::from_slice(bounded_body(req)?).map_err(|e| {
        Error::bad_request(
            "invalid_body",
            format!("the body must be JSON like {expected}: {e}"),
        )
    })
}

/// The request body as JSON for a call that carries a secret: on a parse error
/// the message gives only where and what kind of problem, never serde's text
/// (which can quote the input).
pub fn secret_json_body<T: serde::de::DeserializeOwned>(
    req: &Request,
    expected: &str,
) -> Result<T, Error> {
    serde_json::from_slice(bounded_body(req)?).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "unexpected or missing fields",
            serde_json::error::Category::Eof => "the body ends too early",
            serde_json::error::Category::Syntax | serde_json::error::Category::Io => "not valid JSON",
        };
        Error::bad_request(
            "invalid_body",
            format!(
                "the body must be JSON like {expected} with no other fields ({what} at line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

/// One field of an `application/x-www-form-urlencoded` body, straight into a
/// secret. API Gateway base64-encodes form bodies; lambda_http has decoded them.
pub fn form_secret(req: &Request, field: &str) -> Option<SecretString> {
    url::form_urlencoded::parse(req.body().as_ref())
        .find(|(k, _)| k == field)
        .map(|(_, v)| SecretString::from(v.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn body(r: Response<Body>) -> String {
        String::from_utf8(r.body().to_vec()).unwrap()
    }

    #[test]
    fn every_page_escapes_each_value_it_shows() {
        for (raw, escaped) in HOSTILE {
            for text in [
                body(standalone_page(400, raw, "m")),
                body(standalone_page(400, "t", raw)),
                body(page(400, raw, "m")),
                body(page(400, "t", raw)),
                body(invite_connected_page(raw, None)),
                body(invite_connected_page("PagerDuty", Some(raw))),
            ] {
                assert!(
                    text.contains(escaped) && !text.contains(raw),
                    "{raw}: {text}"
                );
                assert!(
                    text.starts_with("<!DOCTYPE html><html lang=\"en\">"),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn a_page_keeps_its_markup() {
        let r = page(400, "Refused", "It's over");
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert!(r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'; style-src 'unsafe-inline'; form-action 'self';"));
        assert_eq!(
            body(r),
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Refused — Seatscope</title>\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
             <body style=\"font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;line-height:1.5\">\
             <main><h1>Refused</h1><p>It's over</p><p><a href=\"/connections\">Back to Connections</a></p></main></body></html>"
        );
    }
}
