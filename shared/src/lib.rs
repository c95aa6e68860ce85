//! Seatscope's core: everything the four Lambda functions share.
//!
//! Arrows run one way: handlers → `ops` → `domain`, `store`, `connectors` and the
//! adapters. `domain` holds plain records and rules (no AWS, no HTTP, no keys);
//! `store` is DynamoDB (the only place a key is built, every method scoped to an
//! `OrgId`), `vault` Secrets Manager, `queue` SQS, `oauth_client` the vendors' token
//! endpoints, `connectors` the vendors' APIs (one file each); `ops` are the operations
//! a handler calls (connect, sync, queries, settings, audit trail, history, exports);
//! `http` is the Lambda HTTP glue. `deps` builds the dependencies once per cold start.

pub mod aws;
pub mod config;
pub mod connectors;
pub mod deps;
pub mod domain;
pub mod error;
#[cfg(feature = "lambda")]
pub mod http;
pub mod oauth_client;
pub mod ops;
pub mod queue;
pub mod store;
pub mod telemetry;
pub mod vault;

pub use deps::Deps;
pub use error::{Error, Result};
