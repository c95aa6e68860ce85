//! Reading a request: the caller from the verified claims, ids, parameters, bodies.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use secrecy::SecretString;

use crate::domain::caller::{caller_from_claims, Caller};
use crate::error::Error;

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

/// The request's `Cookie` header values.
pub fn cookie_headers(req: &Request) -> Vec<&str> {
    req.headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The largest JSON body a call accepts: every one of ours is a few hundred bytes
/// (settings with 1,000 exempt seats stay far below).
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// The request body, refused with 413 over [`MAX_JSON_BODY`] before any parsing.
pub(super) fn bounded_body(req: &Request) -> Result<&[u8], Error> {
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
