use lambda_http::{run, service_fn};
use seatscope_core::{telemetry, Deps};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let deps = Deps::from_env().await?;
    run(service_fn(|req| connect_start::handle(&deps, req))).await
}
