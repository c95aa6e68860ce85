//! The app's stored summary: recomputed when a sync finishes or settings change.

use time::OffsetDateTime;

use crate::domain::catalog::Provider;
use crate::domain::org::OrgId;
use crate::domain::rules::{headline_rollup, summarize};
use crate::domain::seat::Seat;
use crate::domain::summary::Summary;
use crate::error::Result;
use crate::store::DynamoDbStore;

/// Rollups read for the headline: a sync rewrites every day from its checkpoint's
/// day on, so only the latest one or two can be partial; a few more cost nothing.
const HEADLINE_LOOKBACK: i32 = 4;

/// Recomputes and stores the app's summary (after a sync and when settings change).
/// `seats`: the app's seats where the caller holds them already (a sync that just
/// wrote them); None reads them.
pub async fn refresh_summary(
    store: &DynamoDbStore,
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
    Ok(summary)
}
