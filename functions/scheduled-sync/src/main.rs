use lambda_runtime::{run, service_fn, Error};
use seatscope_core::{telemetry, App};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = App::from_env().await?;
    // Both event sources need the queue (the tick sends, a paused run re-enqueues).
    app.sync_queue()?;
    run(service_fn(|event| scheduled_sync::handle(&app, event))).await
}
