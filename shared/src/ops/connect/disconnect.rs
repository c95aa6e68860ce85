//! Disconnecting an app: the secret is deleted, syncs stop, the data stays unless
//! the admin purges it.

use serde::Serialize;

use crate::deps::Deps;
use crate::domain::audit::{Admin, Details};
use crate::error::{Error, Result};

// --- disconnect ----------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disconnected {
    pub provider: String,
    /// `disconnected` (data kept) or `not_connected` (purged).
    pub status: &'static str,
    pub purged_items: usize,
}

/// `?purge=` of a disconnect: absent or `false` keeps the data, `true` deletes it.
pub fn parse_purge(value: Option<&str>) -> Result<bool> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(Error::bad_request(
            "invalid_purge",
            "purge must be 'true' or 'false'",
        )),
    }
}

/// `DELETE /api/connections/{provider}`: unscheduled first (out of the DueIndex,
/// lease dropped so a run in flight writes nothing on the connection), then the
/// secret is scheduled for deletion (recoverable by a Reconnect for 7 days).
/// The synced data stays unless `purge`, which deletes the app's whole partition,
/// the archives of earlier vendor accounts, the connection item and the org's people
/// snapshot (rebuilt by the next people request). A connect held
/// for another account is dropped (its secret scheduled for deletion too).
pub async fn disconnect(
    deps: &Deps,
    caller: &Admin,
    provider_id: &str,
    purge: bool,
) -> Result<Disconnected> {
    let provider = deps.config.catalog.get(provider_id)?;
    let now = deps.config.clock.now();
    let mut details = Details::new();
    details.insert("purge".into(), purge.into());
    let entry = caller.audit().done(details);
    let connection = deps
        .store
        .mark_disconnected(&caller.org, &provider.id, &caller.user, now, &entry)
        .await?
        .ok_or_else(|| Error::NotFound(format!("connection to {}", provider.name)))?;
    deps.vault.delete(&connection.secret_name).await?;
    // A connect held for another vendor account goes too.
    if let Some(pending) = &connection.pending_account_change {
        deps.vault.delete(&pending.secret_name).await?;
    }
    let mut purged_items = 0;
    if purge {
        purged_items += deps
            .store
            .app_data(&caller.org, &provider.id)
            .delete_all()
            .await?;
        // The data of earlier vendor accounts, kept apart by account changes.
        for archive in &connection.archives {
            purged_items += deps
                .store
                .delete_archive(&caller.org, &provider.id, &archive.id)
                .await?;
        }
        if deps
            .store
            .delete_connection(&caller.org, &provider.id)
            .await?
        {
            purged_items += 1;
        }
        // The org's people snapshot holds the purged app's people (emails, names): it goes
        // too, and the next people request rebuilds it from the apps left.
        deps.store.delete_people_snapshot(&caller.org).await?;
        let count = i64::try_from(purged_items).unwrap_or(i64::MAX);
        if let Err(e) = deps
            .store
            .annotate_entry(&entry, "purged_items", count)
            .await
        {
            tracing::warn!(error = %e.chain(), "the purge's item count was not added to its audit entry");
        }
    }
    tracing::info!(org = %caller.org, provider = %provider.id, purge, purged_items, "disconnected");
    Ok(Disconnected {
        provider: provider.id.clone(),
        status: if purge {
            "not_connected"
        } else {
            "disconnected"
        },
        purged_items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_is_true_false_or_absent() {
        assert!(!parse_purge(None).unwrap());
        assert!(!parse_purge(Some("false")).unwrap());
        assert!(parse_purge(Some("true")).unwrap());
        for bad in ["1", "yes", "TRUE", ""] {
            assert_eq!(parse_purge(Some(bad)).unwrap_err().status(), 400, "{bad}");
        }
    }
}
