//! `OrgId`: a tenant's id, valid by construction. Org ids become part of DynamoDB keys
//! and secret names, so only a safe alphabet gets in: every store method that reads or
//! writes an org's items takes an `OrgId`, never a bare string.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgId(String);

impl OrgId {
    /// 1–128 characters of `A-Z a-z 0-9 - _ .`; anything else is refused.
    pub fn parse(org: &str) -> Result<OrgId> {
        if valid_org(org) {
            Ok(OrgId(org.to_string()))
        } else {
            Err(Error::bad_request("invalid_org", "not a valid org id"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `org` may be an org id (see [`OrgId::parse`]).
pub fn valid_org(org: &str) -> bool {
    !org.is_empty()
        && org.len() <= 128
        && org
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl TryFrom<String> for OrgId {
    type Error = Error;
    fn try_from(org: String) -> Result<OrgId> {
        OrgId::parse(&org)
    }
}

impl From<OrgId> for String {
    fn from(org: OrgId) -> String {
        org.0
    }
}

impl From<&OrgId> for String {
    fn from(org: &OrgId) -> String {
        org.0.clone()
    }
}

impl std::fmt::Display for OrgId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for OrgId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for OrgId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for OrgId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for OrgId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_safe_alphabet_makes_an_org_id() {
        for good in ["acme", "acme-corp_1.eu", &"a".repeat(128)] {
            assert_eq!(OrgId::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "a#b", "x#y", "a/b", "a b", "é", &"a".repeat(129)] {
            assert!(OrgId::parse(bad).is_err(), "{bad:?}");
        }
        let from_json: std::result::Result<OrgId, _> = serde_json::from_str("\"x#y#z\"");
        assert!(from_json.is_err(), "a stored or sent org id is checked too");
    }
}
