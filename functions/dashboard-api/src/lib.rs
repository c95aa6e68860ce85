//! The dashboard's JSON API: `GET /api/overview`, `GET /api/apps/{provider}`,
//! `GET /api/apps/{provider}/seats`, `POST /api/connections/{provider}/sync`,
//! `DELETE /api/connections/{provider}[?purge=true]` (disconnect).
//! Routing is by API Gateway's route key, so it matches template.yaml exactly.

use lambda_http::{Body, Request, Response};
use seatscope_core::queries::{self, Range};
use seatscope_core::web;
use seatscope_core::{connect, App, Error};

#[tracing::instrument(skip_all, fields(route))]
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(respond(app, &req).await.unwrap_or_else(|e| web::error(&e)))
}

fn provider(req: &Request) -> Result<String, Error> {
    web::path_param(req, "provider")
        .ok_or_else(|| Error::bad_request("missing_provider", "the path names no provider"))
}

async fn respond(app: &App, req: &Request) -> Result<Response<Body>, Error> {
    let caller = web::caller(req, &app.config.org_claim)?;
    let route = web::route_key(req).unwrap_or_default();
    tracing::Span::current().record("route", route.as_str());
    let today = time::OffsetDateTime::now_utc().date();
    match route.as_str() {
        "GET /api/overview" => Ok(web::json(200, &queries::overview(app, &caller).await?)),
        "GET /api/apps/{provider}" => {
            let range = Range::parse(
                web::query_param(req, "from").as_deref(),
                web::query_param(req, "to").as_deref(),
                today,
            )?;
            let inactive =
                queries::parse_inactive_days(web::query_param(req, "inactive_days").as_deref())?;
            let detail =
                queries::app_detail(app, &caller, &provider(req)?, range, inactive).await?;
            Ok(web::json(200, &detail))
        }
        "GET /api/apps/{provider}/seats" => {
            let inactive =
                queries::parse_inactive_days(web::query_param(req, "inactive_days").as_deref())?;
            let only_inactive = match web::query_param(req, "only").as_deref() {
                None | Some("all") => false,
                Some("inactive") => true,
                Some(_) => {
                    return Err(Error::bad_request(
                        "invalid_only",
                        "only must be 'all' or 'inactive'",
                    ))
                }
            };
            let seats =
                queries::seats(app, &caller, &provider(req)?, inactive, only_inactive).await?;
            Ok(web::json(200, &seats))
        }
        "POST /api/connections/{provider}/sync" => {
            let provider = provider(req)?;
            queries::request_sync(app, &caller, &provider).await?;
            Ok(web::json(
                202,
                &serde_json::json!({"provider": provider, "sync": "requested", "message": "the next scheduled tick syncs this connection"}),
            ))
        }
        "DELETE /api/connections/{provider}" => {
            let purge = connect::parse_purge(web::query_param(req, "purge").as_deref())?;
            let done = connect::disconnect(app, &caller, &provider(req)?, purge).await?;
            Ok(web::json(200, &done))
        }
        other => Err(Error::NotFound(format!("route '{other}'"))),
    }
}
