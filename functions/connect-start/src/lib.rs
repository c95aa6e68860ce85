//! `POST /api/connections/{provider}/connect` → `{"authorize_url": …}`: the
//! browser goes there for the vendor's consent screen.

use lambda_http::{Body, Request, Response};
use seatscope_core::web;
use seatscope_core::{connect, App, Error};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    /// Same-origin path to come back to after the consent screen.
    pub return_to: Option<String>,
}

#[tracing::instrument(skip_all, fields(route = "connect"))]
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(respond(app, &req).await.unwrap_or_else(|e| web::error(&e)))
}

async fn respond(app: &App, req: &Request) -> Result<Response<Body>, Error> {
    let caller = web::caller(req, &app.config.org_claim)?;
    let provider = web::path_param(req, "provider")
        .ok_or_else(|| Error::bad_request("missing_provider", "the path names no provider"))?;
    let body: ConnectRequest = web::json_body(req)?;
    let started =
        connect::start_oauth_connect(app, &caller, &provider, body.return_to.as_deref()).await?;
    Ok(web::json(200, &started))
}
