//! The dashboard: the page itself and the JSON query API it uses (documented in
//! `openapi.json`, served at `GET /api/openapi.json`).
//!
//! Without sign-in: the page (`GET /`, `/connections`, `/apps/{provider}`,
//! `/signin/callback`), its files (`GET /assets/{file}`), `GET /api/config` (the
//! OIDC client settings) and `GET /api/openapi.json`. Behind the JWT authorizer:
//! `GET /api/overview`, `GET /api/apps/{provider}`, `GET /api/apps/{provider}/seats`,
//! `GET /api/apps/{provider}/export/{file}` (CSV), `GET|PUT /api/apps/{provider}/settings`,
//! `POST /api/connections/{provider}/sync`, `DELETE /api/connections/{provider}[?purge=true]`,
//! `POST|DELETE /api/connections/{provider}/account-change` (a connect that landed on
//! another vendor account: switch, keeping the old data apart or purging it, or cancel),
//! `GET /api/connections/{provider}/runs` (sync history), `GET /api/audit[/export.csv]`,
//! `GET /api/people[/export.csv]` (people across apps).
//! Routing is by API Gateway's route key, so it matches template.yaml exactly. The
//! catch-all `ANY /api/{proxy+}` (no authorizer) answers a method a documented path
//! does not serve with 405 and `Allow`, any other /api path with 404.

pub mod assets;

use lambda_http::{Body, Request, Response};
use seatscope_core::domain::audit::Action;
use seatscope_core::domain::settings::AppSettings;
use seatscope_core::http;
use seatscope_core::ops::audit_trail::{self, attempt, AuditQuery};
use seatscope_core::ops::history::{self, RunsQuery};
use seatscope_core::ops::queries::people::{self, PeopleFilter, PeopleQuery};
use seatscope_core::ops::queries::{self, Range, SeatFilter};
use seatscope_core::ops::settings;
use seatscope_core::ops::{connect, export, sync};
use seatscope_core::{Deps, Error};

/// The query API's OpenAPI document.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

#[tracing::instrument(skip_all, fields(route))]
pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let route = http::route_key(&req).unwrap_or_default();
    tracing::Span::current().record("route", route.as_str());
    let response = match public(deps, &req, &route) {
        Some(response) => response,
        None if route == CATCH_ALL => unserved(&req),
        // Boxed: the operations' state machines live on the heap, not the stack.
        None => Box::pin(api(deps, &req, &route))
            .await
            .unwrap_or_else(|e| http::error(&e)),
    };
    Ok(http::with_security_headers(deps, response))
}

/// The route API Gateway picks when no route serves the method and path.
const CATCH_ALL: &str = "ANY /api/{proxy+}";

/// Each documented path's segments and its methods (upper-case), from openapi.json.
fn documented_paths() -> &'static [(Vec<String>, Vec<String>)] {
    static PATHS: std::sync::OnceLock<Vec<(Vec<String>, Vec<String>)>> = std::sync::OnceLock::new();
    PATHS.get_or_init(|| {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap_or_default();
        let methods = [
            "get", "put", "post", "delete", "patch", "head", "options", "trace",
        ];
        doc["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(path, item)| {
                let segments = path.trim_matches('/').split('/').map(str::to_string);
                let allowed = methods
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| m.to_uppercase());
                (segments.collect(), allowed.collect())
            })
            .collect()
    })
}

/// The methods openapi.json documents for `path` (a concrete request path).
fn allowed_methods(path: &str) -> Option<&'static [String]> {
    let got: Vec<&str> = path.trim_matches('/').split('/').collect();
    documented_paths()
        .iter()
        .find(|(want, _)| {
            want.len() == got.len()
                && want.iter().zip(&got).all(|(w, g)| {
                    if w.starts_with('{') {
                        !g.is_empty()
                    } else {
                        w == g
                    }
                })
        })
        .map(|(_, methods)| methods.as_slice())
}

/// `CATCH_ALL`: a documented path with a method it does not serve gets 405 and
/// `Allow`; any other path 404. Answered from the document alone: no token is read
/// and no data touched, so the route needs no authorizer.
fn unserved(req: &Request) -> Response<Body> {
    let method = req.method().as_str();
    match allowed_methods(req.uri().path()) {
        Some(allowed) if !allowed.iter().any(|m| m == method) => {
            let allow = allowed.join(", ");
            let shown: String = method.chars().take(20).collect();
            let mut response = http::json(
                405,
                &serde_json::json!({"error": {
                    "code": "method_not_allowed",
                    "message": format!("{shown} is not served on this path; it allows {allow}"),
                }}),
            );
            if let Ok(v) = lambda_http::http::HeaderValue::from_str(&allow) {
                response
                    .headers_mut()
                    .insert(lambda_http::http::header::ALLOW, v);
            }
            response
        }
        // "route not found": the path is not echoed.
        _ => http::error(&Error::NotFound("route".into())),
    }
}

fn provider(req: &Request) -> Result<String, Error> {
    http::path_param(req, "provider")
        .ok_or_else(|| Error::bad_request("missing_provider", "the path names no provider"))
}

/// The routes without sign-in; None for the others.
fn public(deps: &Deps, req: &Request, route: &str) -> Option<Response<Body>> {
    Some(match route {
        "GET /" | "GET /connections" | "GET /apps/{provider}" | "GET /activity"
        | "GET /signin/callback" => {
            http::bytes(200, "text/html; charset=utf-8", assets::INDEX_HTML, false)
                .map(|r| with_page_headers(deps, r))
        }
        "GET /assets/{file}" => {
            let file = http::path_param(req, "file").unwrap_or_default();
            match assets::asset(&file) {
                Some(a) => http::bytes(200, a.content_type, a.bytes, a.immutable),
                None => Err(Error::NotFound(format!("asset '{file}'"))),
            }
        }
        "GET /api/config" => match &deps.config.sign_in {
            Some(sign_in) => Ok(http::json(
                200,
                &serde_json::json!({
                    "oidc": sign_in,
                    "org_claim": deps.config.org_claim,
                    "today": deps.config.clock.today().to_string(),
                }),
            )),
            None => Err(Error::Config(
                "OIDC_ISSUER and OIDC_CLIENT_ID are not set: the dashboard cannot offer sign-in"
                    .into(),
            )),
        },
        "GET /api/openapi.json" => http::bytes(
            200,
            "application/json",
            OPENAPI_JSON.as_bytes(),
            false,
        ),
        _ => return None,
    }
    .unwrap_or_else(|e| http::error(&e)))
}

/// The page may load scripts, styles and data from its own origin only, and talk
/// to the OIDC issuer (discovery, token endpoint).
fn with_page_headers(deps: &Deps, mut response: Response<Body>) -> Response<Body> {
    let issuer = deps
        .config
        .sign_in
        .as_ref()
        .and_then(|s| url::Url::parse(&s.issuer).ok())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' {issuer}; form-action 'self' {issuer}; frame-ancestors 'none'; \
         base-uri 'none'"
    );
    for (name, value) in [
        ("content-security-policy", csp.as_str()),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        if let Ok(v) = lambda_http::http::HeaderValue::from_str(value) {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

/// `GET /api/audit`'s filters and page.
fn audit_query(deps: &Deps, req: &Request) -> Result<AuditQuery, Error> {
    AuditQuery::parse(
        &deps.config.catalog,
        http::query_param(req, "app").as_deref(),
        http::query_param(req, "action").as_deref(),
        http::query_param(req, "cursor").as_deref(),
        http::query_param(req, "limit").as_deref(),
    )
}

/// `GET /api/people`'s and its CSV's filters.
fn people_filter(req: &Request) -> Result<PeopleFilter, Error> {
    PeopleFilter::parse(
        http::query_param(req, "inactive_everywhere").as_deref(),
        http::query_param(req, "active_in_none").as_deref(),
        http::query_param(req, "min_apps").as_deref(),
        http::query_param(req, "q").as_deref(),
    )
}

fn range(deps: &Deps, req: &Request) -> Result<Range, Error> {
    Range::parse(
        http::query_param(req, "from").as_deref(),
        http::query_param(req, "to").as_deref(),
        deps.config.clock.today(),
    )
}

async fn api(deps: &Deps, req: &Request, route: &str) -> Result<Response<Body>, Error> {
    let caller = http::caller(req, &deps.config)?;
    match route {
        "GET /api/me" => Ok(http::json(
            200,
            &serde_json::json!({
                "org": caller.org,
                "role": caller.role,
                "role_claim": deps.config.roles.claim,
                "admin_values": deps.config.roles.admin_values,
            }),
        )),
        "GET /api/overview" => Ok(http::json(
            200,
            &queries::overview(&deps.store, &deps.config, &caller).await?,
        )),
        "GET /api/apps/{provider}" => {
            let detail = queries::app_detail(
                &deps.store,
                &deps.config,
                &caller,
                &provider(req)?,
                range(deps, req)?,
            )
            .await?;
            Ok(http::json(200, &detail))
        }
        "GET /api/apps/{provider}/seats" => {
            let inactive_days =
                queries::parse_inactive_days(http::query_param(req, "inactive_days").as_deref())?;
            let filter = SeatFilter::parse(http::query_param(req, "only").as_deref())?;
            let seats = queries::seats(
                &deps.store,
                &deps.config,
                &caller,
                &provider(req)?,
                inactive_days,
                filter,
            )
            .await?;
            Ok(http::json(200, &seats))
        }
        "GET /api/apps/{provider}/export/{file}" => {
            let provider = provider(req)?;
            let provider = provider.as_str();
            let file = http::path_param(req, "file").unwrap_or_default();
            // Checked for every file, though only trends.csv covers a range: a
            // malformed from/to is refused, never silently ignored.
            let range = range(deps, req)?;
            let csv = match file.as_str() {
                "seats.csv" | "inactive-seats.csv" => {
                    let filter = if file == "seats.csv" {
                        SeatFilter::All
                    } else {
                        SeatFilter::Inactive
                    };
                    let list =
                        queries::seats(&deps.store, &deps.config, &caller, provider, None, filter)
                            .await?;
                    export::seats_csv(&list.seats)?
                }
                "trends.csv" => {
                    let trends =
                        queries::trends(&deps.store, &deps.config, &caller, provider, range)
                            .await?;
                    export::trends_csv(&trends.days, &trends.daily)?
                }
                other => {
                    return Err(Error::NotFound(format!(
                        "export '{other}' (there are seats.csv, inactive-seats.csv and trends.csv)"
                    )))
                }
            };
            Ok(http::attachment(
                &format!("{provider}-{file}"),
                "text/csv; charset=utf-8",
                csv,
            ))
        }
        "GET /api/apps/{provider}/settings" => {
            let provider = deps.config.catalog.get(&provider(req)?)?;
            Ok(http::json(
                200,
                &settings::settings(&deps.store, &caller.org, &provider.id).await?,
            ))
        }
        "PUT /api/apps/{provider}/settings" => {
            let provider = provider(req)?;
            let provider = provider.as_str();
            let saved = attempt(deps, &caller, Action::Settings, Some(provider), |admin| async move {
                let provider = deps.config.catalog.get(provider)?;
                let settings: AppSettings = http::required_json_body(
                    req,
                    r#"{"inactive_days": 30, "grace_days": 14, "exempt_seats": [], "seat_price": null}"#,
                )?;
                settings::save_settings(&deps.store, &deps.config, &admin, provider, settings).await
            })
            .await?;
            Ok(http::json(200, &saved))
        }
        "POST /api/connections/{provider}/sync" => {
            let provider = provider(req)?;
            let provider = provider.as_str();
            attempt(
                deps,
                &caller,
                Action::SyncNow,
                Some(provider),
                |admin| async move { sync::request_sync(deps, &admin, provider).await },
            )
            .await?;
            Ok(http::json(
                202,
                &serde_json::json!({"provider": provider, "sync": "requested", "message": "the next scheduled tick syncs this connection"}),
            ))
        }
        "DELETE /api/connections/{provider}" => {
            let provider = provider(req)?;
            let provider = provider.as_str();
            let purge = http::query_param(req, "purge");
            // A malformed ?purge= is a refused disconnect.
            let action = match purge.as_deref() {
                Some("true") => Action::Purge,
                _ => Action::Disconnect,
            };
            let done = attempt(deps, &caller, action, Some(provider), |admin| async move {
                let purge = connect::parse_purge(purge.as_deref())?;
                connect::disconnect(deps, &admin, provider, purge).await
            })
            .await?;
            Ok(http::json(200, &done))
        }
        "POST /api/connections/{provider}/account-change" => {
            let provider = provider(req)?;
            let provider = provider.as_str();
            let switched = attempt(
                deps,
                &caller,
                Action::AccountChange,
                Some(provider),
                |admin| async move {
                    let choice: connect::AccountChoice =
                        http::required_json_body(req, r#"{"old_data": "keep_apart"}"#)?;
                    connect::switch_account(deps, &admin, provider, choice.old_data).await
                },
            )
            .await?;
            Ok(http::json(200, &switched))
        }
        "DELETE /api/connections/{provider}/account-change" => {
            let provider = provider(req)?;
            let provider = provider.as_str();
            let cancelled = attempt(
                deps,
                &caller,
                Action::AccountChange,
                Some(provider),
                |admin| async move { connect::cancel_account_change(deps, &admin, provider).await },
            )
            .await?;
            Ok(http::json(200, &cancelled))
        }
        "GET /api/connections/{provider}/runs" => {
            let query = RunsQuery::parse(
                http::query_param(req, "cursor").as_deref(),
                http::query_param(req, "limit").as_deref(),
            )?;
            let runs =
                history::runs(&deps.store, &deps.config, &caller, &provider(req)?, &query).await?;
            Ok(http::json(200, &runs))
        }
        "GET /api/audit" => {
            let list = audit_trail::list(&deps.store, &caller, &audit_query(deps, req)?).await?;
            Ok(http::json(200, &list))
        }
        "GET /api/renewals/export.csv" => {
            let overview = queries::overview(&deps.store, &deps.config, &caller).await?;
            Ok(http::attachment(
                "renewals.csv",
                "text/csv; charset=utf-8",
                export::renewals_csv(&overview.renewals)?,
            ))
        }
        "GET /api/people" => {
            let query = PeopleQuery::parse(
                people_filter(req)?,
                http::query_param(req, "cursor").as_deref(),
                http::query_param(req, "limit").as_deref(),
            )?;
            let list = people::people(&deps.store, &deps.config, &caller, &query).await?;
            Ok(http::json(200, &list))
        }
        "GET /api/people/export.csv" => {
            let filter = people_filter(req)?;
            Ok(http::attachment(
                "people.csv",
                "text/csv; charset=utf-8",
                people::people_csv(&deps.store, &deps.config, &caller, &filter).await?,
            ))
        }
        "GET /api/audit/export.csv" => {
            let (entries, truncated) =
                audit_trail::export(&deps.store, &caller, &audit_query(deps, req)?).await?;
            let mut response = http::attachment(
                "audit.csv",
                "text/csv; charset=utf-8",
                export::audit_csv(&entries)?,
            );
            if truncated {
                response.headers_mut().insert(
                    "x-seatscope-truncated",
                    lambda_http::http::HeaderValue::from_static("true"),
                );
            }
            Ok(response)
        }
        other => Err(Error::NotFound(format!("route '{other}'"))),
    }
}
