//! `GET /oauth/callback?code&state` (or `?error=&state=`): the vendor sends the
//! browser back here. A valid state ends in a 302 to the card with the outcome —
//! or, when the connect came through an invite link, in a plain page (the admin
//! who consented has no dashboard account); an unknown, expired or replayed state
//! gets a 400 page and nothing is written. So does a state whose browser binding
//! cookie is missing or another browser's (the state is consumed all the same: a
//! refused attempt cannot be retried), and a token granted other than asked.

use lambda_http::{Body, Request, Response};
use seatscope_core::connect::{self, CallbackOutcome, CallbackParams};
use seatscope_core::web;
use seatscope_core::App;

#[tracing::instrument(skip_all, fields(route = "oauth_callback"))]
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let params = CallbackParams {
        code: web::query_param(&req, "code"),
        state: web::query_param(&req, "state"),
        error: web::query_param(&req, "error"),
        error_description: web::query_param(&req, "error_description"),
        browser_nonce: connect::oauth_cookie(
            web::cookie_headers(&req),
            app.config.oauth_cookie_secure,
        ),
        request_id: web::request_id(&req),
    };
    // Boxed: the operation's state machine lives on the heap, not the stack.
    let response = match Box::pin(connect::finish_oauth_connect(app, params)).await {
        Ok(outcome) if outcome.invited() => invite_page(app, &outcome),
        Ok(outcome) => web::redirect(&outcome.location()),
        Err(e) if e.status() < 500 => {
            tracing::info!(code = e.code(), "callback refused");
            let title = match e.code() {
                "browser_mismatch" => "This connection was started in another browser",
                connect::TOKEN_REFUSED => "The vendor granted other access than asked",
                _ => "This connection link cannot be used",
            };
            web::page(400, title, &e.public_message())
        }
        Err(e) => {
            tracing::error!(error = %e.chain(), "callback failed");
            web::page(
                500,
                "The connection could not be completed",
                "Something went wrong on our side. Please start the connection again.",
            )
        }
    };
    // The binding cookie has served its purpose, whatever the outcome.
    let response = web::with_cookie(
        response,
        &connect::clear_oauth_cookie(app.config.oauth_cookie_secure),
    );
    Ok(web::with_security_headers(app, response))
}

fn invite_page(app: &App, outcome: &CallbackOutcome) -> Response<Body> {
    let name = app
        .config
        .catalog
        .get(outcome.provider())
        .map(|p| p.name.clone())
        .unwrap_or_else(|_| outcome.provider().to_string());
    match outcome {
        CallbackOutcome::Connected { .. } => web::invite_connected_page(&name, None),
        CallbackOutcome::NotConnected { message, .. } => web::standalone_page(
            400,
            &format!("{name} was not connected"),
            &format!(
                "{message} This invite link has now been used: ask the person who sent it \
                 for a new one if you want to try again."
            ),
        ),
    }
}
