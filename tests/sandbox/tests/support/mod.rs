//! Helpers shared by the sandbox's HTTP tests, for every vendor: an HTTP client and JSON
//! responses ([`http`]), the consent form driven without a browser ([`consent`]), OpenAPI
//! specs as JSON Schema ([`spec`]), and each vendor's sandbox, credentials and flows
//! ([`pagerduty`], [`pandadoc`], [`sendgrid`]).
//!
//! Each test file includes it with `mod support;`; not every file uses every helper.

#![allow(dead_code, unused_imports)]

pub mod consent;
pub mod http;
pub mod pagerduty;
pub mod pandadoc;
pub mod sendgrid;
pub mod spec;
