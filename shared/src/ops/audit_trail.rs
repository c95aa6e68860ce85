//! The audit trail's operations: every change attempt ends as one entry, and admins
//! read the org's entries (`GET /api/audit`, the Activity page, CSV).
//!
//! A change's `done` entry is written by the operation itself, in the transaction
//! that makes the change (`store::commit`). [`attempt`] and [`settle`] record the
//! other endings on the same entry (keyed by the request): refused (a 4xx: the viewer
//! role, bad input, a key the vendor refused) or failed (a 5xx). A failure after the
//! change was committed (a purge's deletes, the summary refresh after a settings
//! change) turns that entry's outcome to failed, with `details.change_committed`.

use std::future::Future;

use serde::Serialize;

use crate::domain::audit::{Action, Actor, Admin, AuditEntry, AuditScope, Details, Outcome};
use crate::domain::caller::{Caller, Role};
use crate::domain::catalog::Catalog;
use crate::error::{Error, Result};
use crate::store::cursor::Position;
use crate::store::DynamoDbStore;
use crate::Deps;

/// Runs the change `op` as `caller`'s attempt at `action` on `provider`: the role
/// check first (a viewer's attempt is refused and recorded), then `op` with the
/// admin capability, whose scope its transaction writes the entry under; any error
/// is recorded on the same entry.
pub async fn attempt<T, F, Fut>(
    deps: &Deps,
    caller: &Caller,
    action: Action,
    provider: Option<&str>,
    op: F,
) -> Result<T>
where
    F: FnOnce(Admin) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let provider = provider
        .and_then(|p| deps.config.catalog.get(p).ok())
        .map(|p| p.id.clone());
    let scope = AuditScope::member(caller, action, provider, deps.config.clock.now());
    let result = match caller.admin(scope.clone()) {
        Ok(admin) => op(admin).await,
        Err(e) => Err(e),
    };
    settle(deps, &scope, result).await
}

/// Records `result`'s error (if any) as the outcome of the attempt `scope`.
pub async fn settle<T>(deps: &Deps, scope: &AuditScope, result: Result<T>) -> Result<T> {
    if let Err(e) = &result {
        record(deps, scope, Outcome::of_error(e), e.code(), Details::new()).await;
    }
    result
}

/// Records a refused or failed ending of `scope`. A fault here is logged, never
/// raised: the attempt's own answer (already an error) is what the caller gets.
pub async fn record(
    deps: &Deps,
    scope: &AuditScope,
    outcome: Outcome,
    code: &str,
    details: Details,
) {
    let entry = scope.entry(outcome, Some(code), details);
    if let Err(e) = deps.store.record_outcome(&entry).await {
        tracing::error!(
            org = %scope.org,
            action = scope.action.as_str(),
            outcome = outcome.as_str(),
            error = %e.chain(),
            "an audit entry was not written"
        );
    }
}

/// What `GET /api/audit` (and its CSV) was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub provider: Option<String>,
    pub action: Option<Action>,
    /// Where the previous page ended.
    pub before: Option<Position>,
    pub limit: usize,
}

pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 200;
/// The CSV holds at most this many entries (newest first).
pub const MAX_EXPORT: usize = 10_000;

impl AuditQuery {
    pub fn parse(
        catalog: &Catalog,
        app: Option<&str>,
        action: Option<&str>,
        cursor: Option<&str>,
        limit: Option<&str>,
    ) -> Result<AuditQuery> {
        // An empty value is refused like any value not in the list.
        let provider = match app {
            None => None,
            Some(a) => Some(
                catalog
                    .get(a)
                    .map_err(|_| {
                        Error::bad_request(
                            "invalid_app",
                            format!(
                                "app must be one of: {}",
                                catalog
                                    .providers()
                                    .iter()
                                    .map(|p| p.id.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                    })?
                    .id
                    .clone(),
            ),
        };
        let action = match action {
            None => None,
            Some(a) => Some(Action::parse(a).ok_or_else(|| {
                Error::bad_request(
                    "invalid_action",
                    format!(
                        "action must be one of: {}",
                        Action::ALL.map(Action::as_str).join(", ")
                    ),
                )
            })?),
        };
        let before = cursor.map(Position::in_audit).transpose()?;
        let limit = match limit {
            None => DEFAULT_PAGE,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_PAGE).contains(l))
                .ok_or_else(|| {
                    Error::bad_request(
                        "invalid_limit",
                        format!("limit must be a whole number from 1 to {MAX_PAGE}"),
                    )
                })?,
        };
        Ok(AuditQuery {
            provider,
            action,
            before,
            limit,
        })
    }
}

/// An entry as the API shows it (no keys).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditView {
    pub at: String,
    pub action: Action,
    pub app: Option<String>,
    pub outcome: Outcome,
    pub actor: Actor,
    pub error_code: Option<String>,
    pub request_id: String,
    pub details: Details,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> AuditView {
        AuditView {
            at: e.at,
            action: e.action,
            app: e.provider,
            outcome: e.outcome,
            actor: e.actor,
            error_code: e.error_code,
            request_id: e.request_id,
            details: e.details,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditList {
    pub entries: Vec<AuditView>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The audit trail is for admins: a viewer reads every number but not who changed what.
fn require_admin(caller: &Caller) -> Result<()> {
    match caller.role {
        Role::Admin => Ok(()),
        Role::Viewer => Err(Error::Forbidden {
            code: "admin_role_required",
            message: format!(
                "reading the audit trail needs the admin role: a token with {}; ask your identity provider's admin",
                caller.admin_grant
            ),
        }),
    }
}

/// Up to `limit` of the caller's org's entries that `query` selects, older than `before`.
async fn entries(
    store: &DynamoDbStore,
    caller: &Caller,
    query: &AuditQuery,
    before: Option<&Position>,
    limit: usize,
) -> Result<crate::store::AuditPage> {
    let (app, action) = (query.provider.as_deref(), query.action);
    store
        .audit_entries(&caller.org, app, action, before, limit)
        .await
}

/// `GET /api/audit`: one page of the caller's org's entries, newest first.
pub async fn list(store: &DynamoDbStore, caller: &Caller, query: &AuditQuery) -> Result<AuditList> {
    require_admin(caller)?;
    let page = entries(store, caller, query, query.before.as_ref(), query.limit).await?;
    Ok(AuditList {
        entries: page.entries.into_iter().map(AuditView::from).collect(),
        next_cursor: page.next.as_ref().map(Position::cursor),
    })
}

/// `GET /api/audit/export.csv`: the entries the filters select (the cursor and limit
/// ignored), newest first, up to [`MAX_EXPORT`]; whether more were left out.
pub async fn export(
    store: &DynamoDbStore,
    caller: &Caller,
    query: &AuditQuery,
) -> Result<(Vec<AuditView>, bool)> {
    require_admin(caller)?;
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let limit = 1000.min(MAX_EXPORT + 1 - out.len());
        let page = entries(store, caller, query, before.as_ref(), limit).await?;
        out.extend(page.entries.into_iter().map(AuditView::from));
        if out.len() > MAX_EXPORT {
            out.truncate(MAX_EXPORT);
            return Ok((out, true));
        }
        match page.next {
            Some(next) => before = Some(next),
            None => return Ok((out, false)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::load(|_| None).unwrap()
    }

    #[test]
    fn a_query_is_checked_and_its_cursor_round_trips() {
        let c = catalog();
        let q = AuditQuery::parse(&c, Some("pagerduty"), Some("purge"), None, Some("20")).unwrap();
        assert_eq!(
            (q.provider.as_deref(), q.action, q.limit),
            (Some("pagerduty"), Some(Action::Purge), 20)
        );
        let cursor = "MjAyNi0xMS0yM1QxMDowMDowMC4wMDAwMDBaI3ItMQ";
        let q = AuditQuery::parse(&c, None, None, Some(cursor), None).unwrap();
        assert_eq!(
            (q.before.as_ref().map(Position::cursor).as_deref(), q.limit),
            (Some(cursor), DEFAULT_PAGE)
        );
        // Any string of the documented pattern is a position.
        for made_up in [
            "00",
            "000",
            "AAAA_-",
            &"0".repeat(crate::store::cursor::MAX_CURSOR),
        ] {
            let q = AuditQuery::parse(&c, None, None, Some(made_up), None).unwrap();
            assert!(q.before.is_some(), "{made_up}");
        }
        for (app, action, cursor, limit, code) in [
            (Some("jira"), None, None, None, "invalid_app"),
            (Some(""), None, None, None, "invalid_app"),
            (None, Some("drop"), None, None, "invalid_action"),
            (None, Some(""), None, None, "invalid_action"),
            (None, None, Some("%%%"), None, "invalid_cursor"),
            (None, None, Some(""), None, "invalid_cursor"),
            (None, None, Some("00000"), None, "invalid_cursor"),
            (
                None,
                None,
                Some(&"0".repeat(crate::store::cursor::MAX_CURSOR + 1)),
                None,
                "invalid_cursor",
            ),
            (None, None, None, Some("0"), "invalid_limit"),
            (None, None, None, Some("201"), "invalid_limit"),
            (None, None, None, Some("ten"), "invalid_limit"),
        ] {
            let e = AuditQuery::parse(&c, app, action, cursor, limit).unwrap_err();
            assert_eq!((e.status(), e.code()), (400, code));
        }
    }
}
