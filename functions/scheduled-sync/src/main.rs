use lambda_runtime::{run, service_fn, Error};
use seatscope_core::{telemetry, Deps};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let deps = Deps::from_env().await?;
    // Both event sources need the queue (the tick sends, a paused run re-enqueues).
    deps.sync_queue()?;
    run(service_fn(|event| scheduled_sync::handle(&deps, event))).await
}
