//! Connecting an app. Routing is by API Gateway's route key, so it matches
//! template.yaml exactly:
//!
//! - `POST /api/connections/{provider}/connect` → `{"authorize_url"}` and the OAuth
//!   binding cookie: the browser goes there for the vendor's consent screen, and only
//!   this browser can finish the connect;
//! - `POST /api/connections/{provider}/api-key` with `{"api_key"}` → the key is
//!   checked with the vendor, then kept: `{"provider", "status", "vendor_account"}`;
//! - `POST /api/connections/{provider}/invites` → `{"url", "expires_at"}`: a
//!   single-use link for the app's admin;
//! - `GET /api/connections/{provider}/invites` → `{"invites": [...]}`: the pending
//!   ones (never their tokens); `DELETE …/invites/{id}` → 204: revoked;
//! - `GET /connect/invite/{token}` (no sign-in: the token is the capability) →
//!   a page naming the org and who asked: "Continue" or the API-key form;
//! - `POST /connect/invite/{token}` without a key ("Continue") → 302 to the vendor's
//!   consent page with the binding cookie;
//! - `POST /connect/invite/{token}` with the form's `api_key` → a page.

use lambda_http::{Body, Request, Response};
use seatscope_core::domain::audit::Action;
use seatscope_core::http;
use seatscope_core::ops::audit_trail::attempt;
use seatscope_core::ops::connect::{self, InviteKeyOutcome, InviteLanding};
use seatscope_core::{Deps, Error};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    /// Same-origin path to come back to after the consent screen.
    pub return_to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRequest {
    pub api_key: SecretString,
}

#[tracing::instrument(skip_all, fields(route))]
pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let route = http::route_key(&req).unwrap_or_default();
    tracing::Span::current().record("route", route.as_str());
    let response = match route.as_str() {
        "GET /connect/invite/{token}" | "POST /connect/invite/{token}" => {
            // Boxed: the operations' state machines live on the heap, not the stack.
            Box::pin(invite(deps, &req, &route)).await
        }
        _ => Box::pin(api(deps, &req, &route))
            .await
            .unwrap_or_else(|e| http::error(&e)),
    };
    Ok(http::with_security_headers(deps, response))
}

fn provider(req: &Request) -> Result<String, Error> {
    http::path_param(req, "provider")
        .ok_or_else(|| Error::bad_request("missing_provider", "the path names no provider"))
}

/// The dashboard's JSON calls (behind the JWT authorizer).
async fn api(deps: &Deps, req: &Request, route: &str) -> Result<Response<Body>, Error> {
    let caller = http::caller(req, &deps.config)?;
    match route {
        "POST /api/connections/{provider}/connect" => {
            let provider = provider(req)?;
            let provider = provider.as_str();
            let started = attempt(
                deps,
                &caller,
                Action::Connect,
                Some(provider),
                |admin| async move {
                    let body: ConnectRequest = http::json_body(req)?;
                    connect::start_oauth_connect(deps, &admin, provider, body.return_to.as_deref())
                        .await
                },
            )
            .await?;
            let cookie = started.binding.set_cookie(deps.config.oauth_cookie_secure);
            Ok(http::with_cookie(http::json(200, &started), &cookie))
        }
        "POST /api/connections/{provider}/api-key" => {
            let provider = provider(req)?;
            let provider = provider.as_str();
            let connected = attempt(
                deps,
                &caller,
                Action::ApiKey,
                Some(provider),
                |admin| async move {
                    let body: ApiKeyRequest = http::secret_json_body(req, r#"{"api_key": "…"}"#)?;
                    connect::connect_api_key(deps, &admin, provider, body.api_key).await
                },
            )
            .await?;
            Ok(http::json(connected.http_status(), &connected))
        }
        "POST /api/connections/{provider}/invites" => {
            let provider = provider(req)?;
            let provider = provider.as_str();
            let invite = attempt(
                deps,
                &caller,
                Action::InviteCreated,
                Some(provider),
                |admin| async move { connect::create_invite(deps, &admin, provider).await },
            )
            .await?;
            Ok(http::json(201, &invite))
        }
        "GET /api/connections/{provider}/invites" => {
            let invites = connect::list_invites(deps, &caller, &provider(req)?).await?;
            Ok(http::json(200, &invites))
        }
        "DELETE /api/connections/{provider}/invites/{id}" => {
            let provider = provider(req)?;
            let provider = provider.as_str();
            let id = http::path_param(req, "id").unwrap_or_default();
            attempt(
                deps,
                &caller,
                Action::InviteRevoked,
                Some(provider),
                |admin| async move { connect::revoke_invite(deps, &admin, provider, &id).await },
            )
            .await?;
            Ok(http::no_content())
        }
        other => Err(Error::NotFound(format!("route '{other}'"))),
    }
}

/// The invite link, opened by an app admin in a browser: every answer is a page.
async fn invite(deps: &Deps, req: &Request, route: &str) -> Response<Body> {
    let token = http::path_param(req, "token").unwrap_or_default();
    let result = if route.starts_with("GET ") {
        connect::open_invite(deps, &token)
            .await
            .map(|landing| match landing {
                InviteLanding::Continue {
                    provider_name,
                    asked_by,
                    vendor_origin,
                } => http::invite_continue_page(&provider_name, &asked_by, &vendor_origin),
                InviteLanding::KeyForm(form) => http::invite_key_form(200, &form),
            })
    } else {
        match http::form_secret(req, "api_key") {
            Some(key) => connect::submit_invite_key(deps, &token, key, &http::request_id(req))
                .await
                .map(|outcome| match outcome {
                    InviteKeyOutcome::Connected {
                        provider_name,
                        vendor_account,
                    } => http::invite_connected_page(&provider_name, vendor_account.as_deref()),
                    InviteKeyOutcome::Held {
                        provider_name,
                        message,
                    } => http::invite_held_page(&provider_name, &message),
                    InviteKeyOutcome::Retry { status, form } => {
                        http::invite_key_form(status, &form)
                    }
                }),
            // The "Continue" button of an OAuth invite.
            None => connect::continue_invite(deps, &token, &http::request_id(req))
                .await
                .map(|started| {
                    // The vendor never learns the invite URL (it carries the token).
                    let mut to = http::with_cookie(
                        http::redirect(&started.authorize_url),
                        &started.binding.set_cookie(deps.config.oauth_cookie_secure),
                    );
                    to.headers_mut().insert(
                        "referrer-policy",
                        lambda_http::http::HeaderValue::from_static("no-referrer"),
                    );
                    to
                }),
        }
    };
    result.unwrap_or_else(|e| match e.status() {
        status if status < 500 => http::standalone_page(
            status,
            "This invite link cannot be used",
            &e.public_message(),
        ),
        _ => {
            tracing::error!(code = e.code(), error = %e.chain(), "invite failed");
            http::standalone_page(
                500,
                "Something went wrong",
                "Something went wrong on our side. Please open the link again in a few minutes.",
            )
        }
    })
}
