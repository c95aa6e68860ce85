//! Seatscope's core: everything the four Lambda functions share.
//!
//! Dependencies point inward: `domain`, `metrics` and `catalog` know nothing of AWS
//! or HTTP; the adapters (`store` for DynamoDB, `vault` for Secrets Manager, `queue`
//! for SQS,
//! `connectors` for the vendors' APIs) sit at the edge; `connect`, `sync` and
//! `queries` are the operations a handler calls.

pub mod app;
pub mod audit;
pub mod audit_trail;
pub mod aws;
pub mod catalog;
pub mod claims;
pub mod clock;
pub mod config;
pub mod connect;
pub mod connectors;
pub mod cursor;
pub mod domain;
pub mod error;
pub mod export;
pub mod history;
pub mod metrics;
pub mod oauth;
pub mod queries;
pub mod queue;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod usage;
pub mod vault;
#[cfg(feature = "lambda")]
pub mod web;

pub use app::App;
pub use error::{Error, Result};
