//! The caller's identity from the JWT claims API Gateway's authorizer verified.

use std::collections::HashMap;

use crate::domain::Caller;
use crate::error::{Error, Result};

/// Org ids become part of DynamoDB keys and secret names: keep them to a safe alphabet.
pub fn valid_org(org: &str) -> bool {
    !org.is_empty()
        && org.len() <= 128
        && org
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn caller_from_claims(claims: &HashMap<String, String>, org_claim: &str) -> Result<Caller> {
    let user = claims
        .get("sub")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::Unauthorized("the token has no subject".into()))?;
    let org = claims
        .get(org_claim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::Unauthorized(format!("the token has no '{org_claim}' claim")))?;
    if !valid_org(org) {
        return Err(Error::Unauthorized(format!(
            "the '{org_claim}' claim is not a valid org id"
        )));
    }
    Ok(Caller {
        org: org.clone(),
        user: user.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn caller_needs_subject_and_org() {
        let c =
            caller_from_claims(&claims(&[("sub", "u1"), ("org_id", "acme")]), "org_id").unwrap();
        assert_eq!((c.org.as_str(), c.user.as_str()), ("acme", "u1"));
        assert_eq!(
            caller_from_claims(&claims(&[("sub", "u1")]), "org_id")
                .unwrap_err()
                .status(),
            401
        );
        assert_eq!(
            caller_from_claims(&claims(&[("org_id", "a")]), "org_id")
                .unwrap_err()
                .status(),
            401
        );
    }

    #[test]
    fn org_ids_that_could_break_keys_are_refused() {
        let e = caller_from_claims(&claims(&[("sub", "u"), ("org_id", "a#b")]), "org_id");
        assert_eq!(e.unwrap_err().status(), 401);
    }
}
