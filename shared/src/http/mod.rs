//! Glue shared by the HTTP handlers (feature `lambda`): the caller from API
//! Gateway's verified JWT claims, and results mapped to responses. Expected
//! failures become `Ok(Response)` with a status and a JSON or HTML body; a
//! handler never lets an error reach API Gateway as a bare 500.

mod pages;
mod request;
mod response;

pub use pages::*;
pub use request::*;
pub use response::*;
