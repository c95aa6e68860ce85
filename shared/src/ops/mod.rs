//! The operations a handler calls: each takes the dependencies it uses and the
//! caller (or the admin capability, for a change), and returns a plain result.

pub mod audit_trail;
pub mod connect;
pub mod credentials;
pub mod export;
pub mod history;
pub mod queries;
pub mod settings;
pub mod summary;
pub mod sync;
