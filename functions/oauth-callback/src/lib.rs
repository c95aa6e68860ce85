//! `GET /oauth/callback?code&state` (or `?error=&state=`): the vendor sends the
//! browser back here. A valid state ends in a 302 to the card with the outcome —
//! or, when the connect came through an invite link, in a plain page (the admin
//! who consented has no dashboard account); an unknown, expired or replayed state
//! gets a 400 page and nothing is written. So does a state whose browser binding
//! cookie is missing or another browser's (the state is consumed all the same: a
//! refused attempt cannot be retried), and a token granted other than asked.

use lambda_http::{Body, Request, Response};
use seatscope_core::http;
use seatscope_core::ops::connect::{self, CallbackOutcome, CallbackParams};
use seatscope_core::Deps;

#[tracing::instrument(skip_all, fields(route = "oauth_callback"))]
pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let params = CallbackParams {
        code: http::query_param(&req, "code"),
        state: http::query_param(&req, "state"),
        error: http::query_param(&req, "error"),
        error_description: http::query_param(&req, "error_description"),
        browser_nonce: connect::oauth_cookie(
            http::cookie_headers(&req),
            deps.config.oauth_cookie_secure,
        ),
        request_id: http::request_id(&req),
    };
    // Boxed: the operation's state machine lives on the heap, not the stack.
    let response = match Box::pin(connect::finish_oauth_connect(deps, params)).await {
        Ok(outcome) if outcome.invited() => invite_page(deps, &outcome),
        Ok(outcome) => http::redirect(&outcome.location()),
        Err(e) if e.status() < 500 => {
            tracing::info!(code = e.code(), "callback refused");
            http::page(400, connect::refusal_title(&e), &e.public_message())
        }
        Err(e) => {
            tracing::error!(error = %e.chain(), "callback failed");
            http::page(
                500,
                "The connection could not be completed",
                "Something went wrong on our side. Please start the connection again.",
            )
        }
    };
    // The binding cookie has served its purpose, whatever the outcome.
    let response = http::with_cookie(
        response,
        &connect::clear_oauth_cookie(deps.config.oauth_cookie_secure),
    );
    Ok(http::with_security_headers(deps, response))
}

fn invite_page(deps: &Deps, outcome: &CallbackOutcome) -> Response<Body> {
    let name = deps
        .config
        .catalog
        .get(outcome.provider())
        .map(|p| p.name.clone())
        .unwrap_or_else(|_| outcome.provider().to_string());
    match outcome {
        CallbackOutcome::Connected { .. } => http::invite_connected_page(&name, None),
        CallbackOutcome::NotConnected {
            reason, message, ..
        } if reason == connect::ACCOUNT_CHANGED => http::invite_held_page(&name, message),
        CallbackOutcome::NotConnected { message, .. } => http::standalone_page(
            400,
            &format!("{name} was not connected"),
            &format!(
                "{message} This invite link has now been used: ask the person who sent it \
                 for a new one if you want to try again."
            ),
        ),
    }
}
