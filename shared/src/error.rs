//! One error type for the core, with a stable machine code and an HTTP status.
//! Messages are for humans and never carry secrets or internal detail; the source
//! chain is kept for logs.

use std::error::Error as StdError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

type Source = Box<dyn StdError + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller sent something we cannot accept (4xx).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// Well-formed input the vendor or our rules refuse (422), e.g. an API key the
    /// vendor rejects or one missing required scopes.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// A request body over what the call accepts (413).
    #[error("{0}")]
    TooLarge(String),
    /// No verified identity (or no org claim) on the request.
    #[error("authentication required: {0}")]
    Unauthorized(String),
    /// A verified caller whose role does not allow the action (403).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{0} not found")]
    NotFound(String),
    /// Something that existed and can no longer be used (410): an unknown, expired or
    /// used invite link.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    #[error("{0}")]
    Conflict(String),
    /// A vendor answered with an error or nonsense (502).
    #[error("{provider}: {message}")]
    Vendor {
        provider: String,
        message: String,
        #[source]
        source: Option<Source>,
    },
    /// The vendor refused our credentials (HTTP 401): refresh once, else reconnect.
    #[error("{provider}: the vendor refused the credentials ({message})")]
    VendorAuth { provider: String, message: String },
    /// The vendor said the grant is gone (revoked, expired refresh token).
    #[error("{provider}: access was revoked or expired ({reason})")]
    NeedsReconnect { provider: String, reason: String },
    /// Configuration missing or invalid at start-up.
    #[error("configuration: {0}")]
    Config(String),
    /// Our own storage or AWS failed (500).
    #[error("{context}")]
    Internal {
        context: String,
        #[source]
        source: Option<Source>,
    },
}

impl Error {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Error::Unprocessable {
            code,
            message: message.into(),
        }
    }

    pub fn internal(context: impl Into<String>, source: impl Into<Source>) -> Self {
        Error::Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    pub fn vendor(provider: &str, message: impl Into<String>) -> Self {
        Error::Vendor {
            provider: provider.to_string(),
            message: message.into(),
            source: None,
        }
    }

    pub fn vendor_source(
        provider: &str,
        message: impl Into<String>,
        source: impl Into<Source>,
    ) -> Self {
        Error::Vendor {
            provider: provider.to_string(),
            message: message.into(),
            source: Some(source.into()),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest { .. } => 400,
            Error::Unprocessable { .. } => 422,
            Error::TooLarge(_) => 413,
            Error::Unauthorized(_) => 401,
            Error::Forbidden { .. } => 403,
            Error::NotFound(_) => 404,
            Error::Gone { .. } => 410,
            Error::Conflict(_) => 409,
            Error::Vendor { .. } | Error::VendorAuth { .. } | Error::NeedsReconnect { .. } => 502,
            Error::Config(_) | Error::Internal { .. } => 500,
        }
    }

    /// Stable, machine-readable code for API bodies and redirects.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { code, .. }
            | Error::Unprocessable { code, .. }
            | Error::Forbidden { code, .. }
            | Error::Gone { code, .. } => code,
            Error::TooLarge(_) => "body_too_large",
            Error::Unauthorized(_) => "unauthorized",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::Vendor { .. } => "vendor_error",
            Error::VendorAuth { .. } => "vendor_auth",
            Error::NeedsReconnect { .. } => "needs_reconnect",
            Error::Config(_) => "configuration",
            Error::Internal { .. } => "internal",
        }
    }

    /// What a client may see: internal failures are not described.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal { .. } | Error::Config(_) => {
                "internal error; the request id in the logs has the detail".to_string()
            }
            other => other.to_string(),
        }
    }

    /// Worth retrying later (a vendor or AWS hiccup), as opposed to a permanent refusal.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Vendor { .. } | Error::Internal { .. })
    }

    /// The full source chain as one line, for logs (never contains secrets: our
    /// messages are built without them and vendor bodies are not included).
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cur = StdError::source(self);
        while let Some(s) = cur {
            out.push_str(": ");
            out.push_str(&s.to_string());
            cur = s.source();
        }
        out
    }
}
