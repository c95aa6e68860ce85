//! Plain records and rules: no AWS, no HTTP, no DynamoDB keys (those are built in
//! `store/keys.rs`). Items are (de)serialized with serde_dynamo by the store; optional
//! fields are omitted rather than written as NULL (a NULL GSI key attribute is rejected).

pub mod audit;
pub mod caller;
pub mod catalog;
pub mod connection;
pub mod invite;
pub mod metrics;
pub mod oauth_state;
pub mod org;
pub mod plan;
pub mod rollup;
pub mod rules;
pub mod run;
pub mod seat;
pub mod settings;
pub mod summary;
pub mod time;

pub use caller::{new_request_id, Caller, Role};
pub use connection::{Connection, ConnectionStatus, SyncSummary};
pub use invite::{Invite, InviteEntry};
pub use oauth_state::OAuthState;
pub use org::OrgId;
pub use plan::{PlanItem, PlanUsage};
pub use rollup::DailyRollup;
pub use run::{RequestCounts, RunSoFar, RunStatus, SyncRun};
pub use seat::{OnCall, Seat, SeatDay, SeatStatus};
pub use time::{day, parse_day, rfc3339};
