//! The local system: installs and starts the AWS emulators (`services`), serves
//! template.yaml's routes to the four handlers (`gateway`), signs users in through a
//! dev OIDC issuer (`dev_issuer`) and composes the whole
//! stack (`stack`), with a local SQS event source for the sync worker (`worker`),
//! for `cargo xtask dev` and the integration tests; `iam` records which AWS calls
//! each function makes, for the least-privilege test.

pub mod dev_issuer;
pub mod gateway;
pub mod iam;
pub mod script_bench;
pub mod services;
pub mod stack;
pub mod worker;
