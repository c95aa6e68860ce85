//! The app's stored summary: recomputed when a sync finishes or settings change; then
//! the org's people snapshot is rebuilt with it (`ops/queries/people.rs`).

use std::sync::OnceLock;

use time::OffsetDateTime;

use crate::domain::catalog::{Catalog, Provider};
use crate::domain::org::OrgId;
use crate::domain::rules::{headline_rollup, summarize};
use crate::domain::seat::Seat;
use crate::domain::summary::Summary;
use crate::error::Result;
use crate::ops::queries::people::refresh_people_snapshot;
use crate::store::DynamoDbStore;

/// Rollups read for the headline: a sync rewrites every day from its checkpoint's
/// day on, so only the latest one or two can be partial; a few more cost nothing.
const HEADLINE_LOOKBACK: i32 = 4;

/// The embedded catalog (its URL overrides do not matter here): where
/// [`refresh_summary`] finds the org's other apps for the people snapshot.
fn embedded_catalog() -> Option<&'static Catalog> {
    static CATALOG: OnceLock<Option<Catalog>> = OnceLock::new();
    CATALOG
        .get_or_init(|| match Catalog::load(|_| None) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e.chain(), "the embedded catalog did not load");
                None
            }
        })
        .as_ref()
}

/// Recomputes and stores the app's summary (after a sync and when settings change),
/// then the org's people snapshot (the org's apps as the embedded catalog lists them).
/// `seats`: the app's seats where the caller holds them already (a sync that just
/// wrote them); None reads them.
pub async fn refresh_summary(
    store: &DynamoDbStore,
    org: &OrgId,
    provider: &Provider,
    seats: Option<&[Seat]>,
    now: OffsetDateTime,
) -> Result<Summary> {
    refresh_summary_in(store, embedded_catalog(), org, provider, seats, now).await
}

/// [`refresh_summary`] with the catalog the org's apps are listed in (the bench's
/// own). The people snapshot is written only when `catalog` has `provider`; failing
/// to write it is logged, not an error: readers rebuild the list when the stored one
/// is missing or of another version.
pub async fn refresh_summary_in(
    store: &DynamoDbStore,
    catalog: Option<&Catalog>,
    org: &OrgId,
    provider: &Provider,
    seats: Option<&[Seat]>,
    now: OffsetDateTime,
) -> Result<Summary> {
    let data = store.app_data(org, &provider.id);
    let read_seats = async {
        match seats {
            Some(_) => Ok(Vec::new()),
            None => data.seats().await,
        }
    };
    // The latest rollups: today's (partial) and the last complete day's before it.
    let (latest, read, settings, before) = tokio::try_join!(
        data.latest_rollups(HEADLINE_LOOKBACK),
        read_seats,
        data.settings(),
        data.summary(),
    )?;
    let settings = settings.unwrap_or_default();
    let seats = seats.unwrap_or(&read);
    let summary = summarize(
        provider,
        latest.first(),
        headline_rollup(&latest),
        seats,
        &settings,
        now,
    );
    data.save_summary(&summary, seats, before.as_ref()).await?;
    match catalog.filter(|c| c.get(&provider.id).is_ok()) {
        Some(catalog) => {
            if let Err(e) = refresh_people_snapshot(store, catalog, org, now).await {
                tracing::warn!(%org, provider = %provider.id, error = %e.chain(),
                    "the people snapshot was not written");
            }
        }
        None => tracing::warn!(%org, provider = %provider.id,
            "the people snapshot was not written: the app is not in the catalog"),
    }
    Ok(summary)
}
