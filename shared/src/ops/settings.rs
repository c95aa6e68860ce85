//! An app's settings: read (or the defaults) and changed by an admin, recorded in the
//! audit trail in the same transaction, then the app's summary recomputed with them.

use crate::config::Config;
use crate::domain::audit::{Admin, Details};
use crate::domain::catalog::Provider;
use crate::domain::org::OrgId;
use crate::domain::settings::AppSettings;
use crate::domain::time::rfc3339;
use crate::error::{Error, Result};
use crate::ops::summary::refresh_summary_in;
use crate::store::DynamoDbStore;

/// The stored settings of (org, provider), or the defaults.
pub async fn settings(store: &DynamoDbStore, org: &OrgId, provider: &str) -> Result<AppSettings> {
    Ok(store
        .app_data(org, provider)
        .settings()
        .await?
        .unwrap_or_default())
}

/// Validates and stores the settings, then recomputes the app's summary with them.
pub async fn save_settings(
    store: &DynamoDbStore,
    config: &Config,
    admin: &Admin,
    provider: &Provider,
    settings: AppSettings,
) -> Result<AppSettings> {
    let org = &admin.org;
    settings.validate()?;
    let settings = settings.normalized();
    let old = self::settings(store, org, &provider.id).await?;
    let value = |s: &AppSettings| {
        serde_json::to_value(s).map_err(|e| Error::internal("serializing settings", e))
    };
    let mut details = Details::new();
    details.insert("old".into(), value(&old)?);
    details.insert("new".into(), value(&settings)?);
    let write = store
        .app_data(org, &provider.id)
        .settings_write(&settings, &admin.user, &rfc3339(config.clock.now()))
        .await?;
    store
        .commit(vec![write], &admin.audit().done(details))
        .await?;
    refresh_summary_in(
        store,
        Some(&config.catalog),
        org,
        provider,
        None,
        config.clock.now(),
    )
    .await?;
    Ok(settings)
}
