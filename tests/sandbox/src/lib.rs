//! Vendor API sandboxes served over real HTTP on loopback.
//!
//! Each sandbox is a faithful fake of one vendor's REST API and OAuth endpoints, with data
//! generated deterministically from a seed and the exact counts a correct client must
//! compute (the ground truth). Integration tests and the local dev stack run the same code
//! against a sandbox that they would run against the vendor.

pub mod clock;
pub mod faults;
pub mod handle;
mod oauth;
pub mod pagerduty;
pub mod pandadoc;
mod rate;
mod seeded;
pub mod sendgrid;
mod server;

pub use faults::{Fault, FaultKind, FaultStats};
pub use handle::{SandboxHandle, Vendor};
pub use pagerduty::{
    DayCount, GroundTruth, OnCallTruth, PagerDutyConfig, PagerDutySandbox, PagerDutyState,
    SeatTruth, TokenOverride,
};
pub use pandadoc::{
    PandaDocConfig, PandaDocGroundTruth, PandaDocSandbox, PandaDocSeatTruth, PandaDocState,
    PandaDocStats,
};
pub use sendgrid::{
    SandboxKey as SendGridSandboxKey, SendGridConfig, SendGridCreditsTruth, SendGridDayTruth,
    SendGridGroundTruth, SendGridMetrics, SendGridSandbox, SendGridSeatTruth, SendGridState,
};
