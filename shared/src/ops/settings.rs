//! An app's settings: read (or the defaults) and changed by an admin, recorded in the
//! audit trail in the same transaction, then the app's summary recomputed with them.

use crate::deps::Deps;
use crate::domain::audit::{Admin, Details};
use crate::domain::catalog::Provider;
use crate::domain::org::OrgId;
use crate::domain::settings::AppSettings;
use crate::domain::time::rfc3339;
use crate::error::{Error, Result};
use crate::ops::summary::refresh_summary;

/// The stored settings of (org, provider), or the defaults.
pub async fn settings(deps: &Deps, org: &OrgId, provider: &str) -> Result<AppSettings> {
    Ok(deps
        .store
        .app_data(org, provider)
        .settings()
        .await?
        .unwrap_or_default())
}

/// Validates and stores the settings, then recomputes the app's summary with them.
pub async fn save_settings(
    deps: &Deps,
    admin: &Admin,
    provider: &Provider,
    settings: AppSettings,
) -> Result<AppSettings> {
    let org = &admin.org;
    settings.validate()?;
    let old = self::settings(deps, org, &provider.id).await?;
    let value = |s: &AppSettings| {
        serde_json::to_value(s).map_err(|e| Error::internal("serializing settings", e))
    };
    let mut details = Details::new();
    details.insert("old".into(), value(&old)?);
    details.insert("new".into(), value(&settings)?);
    let write = deps
        .store
        .app_data(org, &provider.id)
        .settings_write(&settings, &admin.user, &rfc3339(deps.config.clock.now()))
        .await?;
    deps.store
        .commit(vec![write], &admin.audit().done(details))
        .await?;
    refresh_summary(deps, org, provider, None, deps.config.clock.now()).await?;
    Ok(settings)
}
