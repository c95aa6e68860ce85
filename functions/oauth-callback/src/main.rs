use lambda_http::{run, service_fn};
use seatscope_core::{telemetry, Deps};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let deps = Deps::from_env().await?;
    run(service_fn(|req| oauth_callback::handle(&deps, req))).await
}
