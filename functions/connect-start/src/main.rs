use lambda_http::{run, service_fn};
use seatscope_core::{telemetry, App};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let app = App::from_env().await?;
    run(service_fn(|req| connect_start::handle(&app, req))).await
}
