//! A connect that lands on another vendor account than the connection's (README § The
//! Connections page, "Another account"). The connection's history belongs to the old
//! account, so nothing is replaced at once: the new credentials wait in a secret of their
//! own (`vault.account_secret_name`), the connection keeps syncing the old account, and
//! the card asks an admin to choose — keep the old account's data apart (moved into an
//! archive listed on the connection), purge it, or keep the old account (cancel). Either
//! switch starts the new account's history afresh (checkpoints reset, due at once).
//!
//! Identity is the vendor's account (`connectors::Verified::account_id`), never who
//! consented: another admin of the same PagerDuty account is not a change.

use serde::Serialize;

use crate::deps::Deps;
use crate::domain::audit::{Admin, AuditScope, Details};
use crate::domain::catalog::Provider;
use crate::domain::connection::{ArchivedAccount, Connection, OldData, PendingAccountChange};
use crate::domain::time::rfc3339;
use crate::error::{Error, Result};
use crate::store::{ConnectionGrant, Write};
use crate::vault::Credentials;

use super::oauth::connect_details;

/// The code a held connect answers with (API) or redirects with (OAuth).
pub const ACCOUNT_CHANGED: &str = "vendor_account_changed";

/// What a connect did with its grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    Connected,
    /// It landed on another vendor account: held until an admin chooses.
    AwaitingChoice {
        message: String,
    },
}

/// The secret a grant writes: the connection's own when it already has one of this
/// org and app (a Reconnect to the same account after a switch keeps the switched-to
/// secret), else the app's default name.
pub(super) fn grant_secret_name(
    deps: &Deps,
    existing: Option<&Connection>,
    org: &str,
    provider: &str,
) -> String {
    let default = deps.vault.secret_name(org, provider);
    existing
        .map(|c| c.secret_name.clone())
        .filter(|name| name == &default || name.starts_with(&format!("{default}/acct-")))
        .unwrap_or(default)
}

/// What the person who connected is told when the connect is held.
pub fn held_message(provider: &Provider, from: &str, to: &str) -> String {
    format!(
        "This sign-in is to {name} account {to}, but Seatscope holds the history of {name} \
         account {from}. Nothing was replaced: {from} goes on syncing until an admin chooses, \
         on the {name} card of the Connections page, to keep {from}'s data apart or delete it \
         and switch to {to} — or to keep {from}.",
        name = provider.name
    )
}

/// Holds a grant that landed on account `to` of a connection on account `from`: the
/// credentials go to the account's own secret, and the returned write (to be committed
/// with the connect's audit entry, and for an invite with the invite used up) puts the
/// pending change on the connection. The entry's details gain `account_change`.
pub(super) async fn hold(
    deps: &Deps,
    grant: &ConnectionGrant<'_>,
    credentials: &Credentials,
    to: &str,
    details: &mut Details,
) -> Result<Write> {
    let secret_name = deps
        .vault
        .account_secret_name(grant.org, grant.provider, to);
    deps.vault.put(&secret_name, credentials).await?;
    let pending = PendingAccountChange {
        vendor_account_id: to.to_string(),
        vendor_account: grant.vendor_account.map(str::to_string),
        auth_mode: grant.auth_mode,
        secret_name,
        connected_by: grant.connected_by.to_string(),
        invited_by: grant.invited_by.map(str::to_string),
        scopes: grant.scopes.map(<[String]>::to_vec),
        requested_at: rfc3339(grant.now),
        archive_id: None,
        old_data: None,
    };
    details.insert("account_change".into(), "held".into());
    details.insert("vendor_account_id".into(), to.into());
    deps.store
        .hold_account_change(grant.org, grant.provider, &pending)
        .await
}

/// A newer hold (of account `to`) replaced one of a third account: that one's secret is
/// scheduled for deletion, so no credentials stay behind unreferenced. Logged, never
/// raised: the new hold is committed.
pub(super) async fn drop_replaced_hold(
    deps: &Deps,
    existing: Option<&Connection>,
    grant: &ConnectionGrant<'_>,
    to: &str,
) {
    let Some(connection) = existing else {
        return;
    };
    let Some(replaced) = &connection.pending_account_change else {
        return;
    };
    let held = deps
        .vault
        .account_secret_name(grant.org, grant.provider, to);
    if replaced.secret_name == held || replaced.secret_name == connection.secret_name {
        return;
    }
    if let Err(e) = deps.vault.delete(&replaced.secret_name).await {
        tracing::warn!(org = %grant.org, provider = %grant.provider, error = %e.chain(), "a replaced hold's secret was not scheduled for deletion");
    }
}

/// Commits a grant, or holds it when it lands on another vendor account than the
/// existing connection's (one transaction with the entry either way).
pub(super) async fn commit_grant(
    deps: &Deps,
    scope: &AuditScope,
    provider: &Provider,
    existing: Option<&Connection>,
    grant: &ConnectionGrant<'_>,
    credentials: &Credentials,
) -> Result<Stored> {
    let mut details = connect_details(grant);
    if let Some((from, to)) =
        crate::domain::connection::account_change(existing, grant.vendor_account_id)
    {
        let write = hold(deps, grant, credentials, to, &mut details).await?;
        deps.store.commit(vec![write], &scope.done(details)).await?;
        drop_replaced_hold(deps, existing, grant, to).await;
        tracing::info!(org = %grant.org, provider = %grant.provider, "connect held: another vendor account");
        return Ok(Stored::AwaitingChoice {
            message: held_message(provider, from, to),
        });
    }
    deps.vault.put(grant.secret_name, credentials).await?;
    deps.store
        .save_connection(grant, &scope.done(details))
        .await?;
    Ok(Stored::Connected)
}

/// The answer to an admin's choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountSwitched {
    pub provider: String,
    pub status: &'static str,
    pub vendor_account: Option<String>,
    pub vendor_account_id: String,
    /// The account whose data was kept apart or purged.
    pub previous_account_id: Option<String>,
    /// `keep_apart` or `purge` (a retry finishes the first choice made).
    pub old_data: &'static str,
    /// Items moved into the archive or deleted.
    pub items: usize,
    /// The archive the old data is in (keep_apart).
    pub archive_id: Option<String>,
}

/// Nothing to decide: no connect of `provider` is waiting on another account (a 409: the
/// connection's state, not the request, is what is missing).
fn nothing_pending(provider: &Provider) -> Error {
    Error::Conflict(format!(
        "no connect of {} is waiting on another account: there is nothing to decide",
        provider.name
    ))
}

/// `POST /api/connections/{provider}/account-change` `{"old_data": "keep_apart" |
/// "purge"}`: the connection leaves the schedule (refused while a run holds the lease),
/// the old account's data (every app item but the settings) is moved into an archive or
/// deleted, the connection takes the pending grant and its secret with a fresh history,
/// and the old account's secret is scheduled for deletion. Each step can be retried: a
/// fault leaves the change pending, and the same request finishes it.
pub async fn switch_account(
    deps: &Deps,
    caller: &Admin,
    provider_id: &str,
    choice: OldData,
) -> Result<AccountSwitched> {
    let provider = deps.config.catalog.get(provider_id)?;
    let now = deps.config.clock.now();
    let archive_id = format!("{}-{:04x}", now.unix_timestamp(), rand::random::<u16>());
    let connection = deps
        .store
        .begin_account_switch(&caller.org, &provider.id, &archive_id, choice, now)
        .await?
        .ok_or_else(|| nothing_pending(provider))?;
    let pending = connection
        .pending_account_change
        .clone()
        .ok_or_else(|| nothing_pending(provider))?;
    let archive_id = pending.archive_id.clone().unwrap_or(archive_id);
    let choice = pending.old_data.unwrap_or(choice);
    let items = match choice {
        OldData::KeepApart => {
            deps.store
                .archive_app_data(&caller.org, &provider.id, &archive_id)
                .await?
        }
        OldData::Purge => {
            deps.store
                .purge_app_data_but_settings(&caller.org, &provider.id)
                .await?
        }
    };
    // The org's people snapshot joined the old account's seats: it goes, whatever the
    // choice (the next people request rebuilds it without them).
    deps.store.delete_people_snapshot(&caller.org).await?;
    let archive = (choice == OldData::KeepApart).then(|| ArchivedAccount {
        id: archive_id.clone(),
        vendor_account_id: connection.vendor_account_id.clone(),
        vendor_account: connection.vendor_account.clone(),
        connected_at: connection.connected_at.clone(),
        archived_at: rfc3339(now),
        archived_by: caller.user.clone(),
        items: items as u64,
    });
    let grant = ConnectionGrant {
        org: &caller.org,
        provider: &provider.id,
        auth_mode: pending.auth_mode,
        secret_name: &pending.secret_name,
        connected_by: &pending.connected_by,
        invited_by: pending.invited_by.as_deref(),
        vendor_account: pending.vendor_account.as_deref(),
        vendor_account_id: Some(&pending.vendor_account_id),
        scopes: pending.scopes.as_deref(),
        now,
    };
    let mut details = connect_details(&grant);
    details.insert("old_data".into(), choice.as_str().into());
    details.insert("items".into(), items.into());
    details.insert(
        "vendor_account_id".into(),
        pending.vendor_account_id.clone().into(),
    );
    if let Some(from) = &connection.vendor_account_id {
        details.insert("previous_account_id".into(), from.clone().into());
    }
    if let Some(a) = &archive {
        details.insert("archive_id".into(), a.id.clone().into());
    }
    deps.store
        .finish_account_switch(&grant, archive.as_ref(), &caller.audit().done(details))
        .await?;
    if connection.secret_name != pending.secret_name {
        if let Err(e) = deps.vault.delete(&connection.secret_name).await {
            tracing::warn!(org = %caller.org, provider = %provider.id, error = %e.chain(), "the old account's secret was not scheduled for deletion");
        }
    }
    tracing::info!(org = %caller.org, provider = %provider.id, old_data = choice.as_str(), items, "switched to another vendor account");
    Ok(AccountSwitched {
        provider: provider.id.clone(),
        status: "connected",
        vendor_account: pending.vendor_account,
        vendor_account_id: pending.vendor_account_id,
        previous_account_id: connection.vendor_account_id,
        old_data: choice.as_str(),
        items,
        archive_id: archive.map(|a| a.id),
    })
}

/// The answer to a cancelled account change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountChangeCancelled {
    pub provider: String,
    /// The account that stays connected.
    pub vendor_account_id: Option<String>,
    /// The account that was not switched to.
    pub dropped_account_id: String,
}

/// `DELETE /api/connections/{provider}/account-change`: the connection keeps its
/// account (and is scheduled again), the held credentials' secret is scheduled for
/// deletion.
pub async fn cancel_account_change(
    deps: &Deps,
    caller: &Admin,
    provider_id: &str,
) -> Result<AccountChangeCancelled> {
    let provider = deps.config.catalog.get(provider_id)?;
    let mut details = Details::new();
    details.insert("old_data".into(), "kept_connected".into());
    let pending = deps
        .store
        .drop_account_change(&caller.org, &provider.id, &caller.audit().done(details))
        .await?
        .ok_or_else(|| nothing_pending(provider))?;
    let connection = deps.store.connection(&caller.org, &provider.id).await?;
    if connection
        .as_ref()
        .is_none_or(|c| c.secret_name != pending.secret_name)
    {
        deps.vault.delete(&pending.secret_name).await?;
    }
    tracing::info!(org = %caller.org, provider = %provider.id, "account change cancelled");
    Ok(AccountChangeCancelled {
        provider: provider.id.clone(),
        vendor_account_id: connection.and_then(|c| c.vendor_account_id),
        dropped_account_id: pending.vendor_account_id,
    })
}

/// Parses the choice's body: `{"old_data": "keep_apart" | "purge"}`.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountChoice {
    pub old_data: OldData,
}
