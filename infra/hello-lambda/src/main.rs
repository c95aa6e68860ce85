//! A hello-world `lambda_http` function: what a handler's cold start is measured against
//! (`cargo xtask bench-init`). Same workspace, profile and `lambda_http` features as the
//! four handlers; nothing else.

use lambda_http::{run, service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|_req: Request| async {
        Ok::<_, Error>(Response::new(Body::from("hello")))
    }))
    .await
}
