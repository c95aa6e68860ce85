//! Page cursors: the sort key a page ended at, without its item-type prefix, in
//! unpadded URL-safe base64. Opaque to clients; any well-formed cursor is a position
//! (older items follow), read in the caller's own partition only.

use base64::Engine as _;

use super::keys;
use crate::error::{Error, Result};

/// The longest cursor accepted (a sort key is at most 1,024 bytes; ours are under 200).
pub const MAX_CURSOR: usize = 400;

/// Base64url without padding, lenient about the unused bits of the last character:
/// every string of the documented pattern decodes.
const ENGINE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
);

/// A position in a listing newest first (the sort key a page ended at): made from a
/// client's cursor, given back as one. Outside the store it is opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    sk: String,
    prefix: &'static str,
}

impl Position {
    /// A position in an app's sync runs; a malformed cursor is 400 `invalid_cursor`.
    pub fn in_runs(cursor: &str) -> Result<Position> {
        Ok(Position::at(
            &decode(cursor, keys::RUN_PREFIX)?,
            keys::RUN_PREFIX,
        ))
    }

    /// A position in an org's audit trail; a malformed cursor is 400 `invalid_cursor`.
    pub fn in_audit(cursor: &str) -> Result<Position> {
        Ok(Position::at(
            &decode(cursor, keys::AUDIT_PREFIX)?,
            keys::AUDIT_PREFIX,
        ))
    }

    pub(super) fn at(sk: &str, prefix: &'static str) -> Position {
        Position {
            sk: sk.to_string(),
            prefix,
        }
    }

    pub(super) fn sort_key(&self) -> &str {
        &self.sk
    }

    /// The cursor a client sends back for the page after this position.
    pub fn cursor(&self) -> String {
        encode(&self.sk, self.prefix)
    }
}

/// The cursor of a page that ended at sort key `sk` (under `prefix`).
fn encode(sk: &str, prefix: &str) -> String {
    encode_text(sk.strip_prefix(prefix).unwrap_or(sk))
}

/// The sort key (under `prefix`) a cursor stands for; a malformed one is 400
/// `invalid_cursor`.
fn decode(cursor: &str, prefix: &str) -> Result<String> {
    Ok(format!("{prefix}{}", decode_text(cursor)?))
}

/// An opaque cursor for a position given as text (a listing not read page by page
/// from the table, e.g. the people list's last email).
pub fn encode_text(text: &str) -> String {
    ENGINE.encode(text)
}

/// The text a cursor of [`encode_text`] stands for; a malformed one is 400
/// `invalid_cursor`. Any well-formed cursor is a position.
pub fn decode_text(cursor: &str) -> Result<String> {
    let invalid = || {
        Error::bad_request(
            "invalid_cursor",
            "cursor must be the next_cursor of a previous page",
        )
    };
    if cursor.is_empty() || cursor.len() > MAX_CURSOR {
        return Err(invalid());
    }
    let bytes = ENGINE.decode(cursor).map_err(|_| invalid())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_anything_else_is_refused_or_a_position() {
        let sk = "RUN#2026-11-23T10:00:00Z#r-1";
        assert_eq!(decode(&encode(sk, "RUN#"), "RUN#").unwrap(), sk);
        assert!(decode("AAAA", "RUN#").unwrap().starts_with("RUN#"));
        for bad in ["", "0", "00000", "%%", &"0".repeat(MAX_CURSOR + 1)] {
            assert_eq!(
                decode(bad, "RUN#").unwrap_err().code(),
                "invalid_cursor",
                "{bad}"
            );
        }
    }
}
