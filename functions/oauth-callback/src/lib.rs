//! `GET /oauth/callback?code&state` (or `?error=&state=`): the vendor sends the
//! browser back here. A valid state ends in a 302 to the card with the outcome;
//! an unknown, expired or replayed state gets a 400 page and nothing is written.

use lambda_http::{Body, Request, Response};
use seatscope_core::connect::{self, CallbackParams};
use seatscope_core::web;
use seatscope_core::App;

#[tracing::instrument(skip_all, fields(route = "oauth_callback"))]
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let params = CallbackParams {
        code: web::query_param(&req, "code"),
        state: web::query_param(&req, "state"),
        error: web::query_param(&req, "error"),
        error_description: web::query_param(&req, "error_description"),
    };
    Ok(match connect::finish_oauth_connect(app, params).await {
        Ok(outcome) => web::redirect(&outcome.location()),
        Err(e) if e.status() < 500 => {
            tracing::info!(code = e.code(), "callback refused");
            web::page(
                400,
                "This connection link cannot be used",
                &e.public_message(),
            )
        }
        Err(e) => {
            tracing::error!(error = %e.chain(), "callback failed");
            web::page(
                500,
                "The connection could not be completed",
                "Something went wrong on our side. Please start the connection again.",
            )
        }
    })
}
