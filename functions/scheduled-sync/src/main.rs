use lambda_runtime::{run, service_fn, Error};
use seatscope_core::{telemetry, App};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = App::from_env().await?;
    run(service_fn(|event| scheduled_sync::handle(&app, event))).await
}
