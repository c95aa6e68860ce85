//! Glue shared by the HTTP handlers (feature `lambda`): the caller from API
//! Gateway's verified JWT claims, and results mapped to responses. Expected
//! failures become `Ok(Response)` with a status and a JSON or HTML body; a
//! handler never lets an error reach API Gateway as a bare 500.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use crate::claims::caller_from_claims;
use crate::domain::Caller;
use crate::error::Error;

pub fn caller(req: &Request, org_claim: &str) -> Result<Caller, Error> {
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
    caller_from_claims(claims, org_claim)
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

pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A small page for browser flows (the OAuth callback's failures).
pub fn page(status: u16, title: &str, message: &str) -> Response<Body> {
    let (title, message) = (escape_html(title), escape_html(message));
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} — Seatscope</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem\">\
         <h1>{title}</h1><p>{message}</p><p><a href=\"/connections\">Back to Connections</a></p></body></html>"
    );
    response(status, "text/html; charset=utf-8", body)
}

pub fn redirect(location: &str) -> Response<Body> {
    Response::builder()
        .status(302)
        .header("location", location)
        .header("cache-control", "no-store")
        .body(Body::Empty)
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// The request body as JSON; an empty body is `T::default()`.
pub fn json_body<T: serde::de::DeserializeOwned + Default>(req: &Request) -> Result<T, Error> {
    let bytes: &[u8] = req.body().as_ref();
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
