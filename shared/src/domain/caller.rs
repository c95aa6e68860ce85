//! The caller's identity from the JWT claims API Gateway's authorizer verified.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::domain::org::{valid_org, OrgId};
use crate::error::{Error, Result};

/// Which claim carries the role and which of its values mean admin (`ROLE_CLAIM`,
/// `ADMIN_VALUES`). Without a claim every member is an admin.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RolePolicy {
    pub claim: Option<String>,
    pub admin_values: Vec<String>,
}

impl RolePolicy {
    /// `claim`: the claim name, or None (roles off); `admin_values`: comma-separated.
    pub fn new(claim: Option<String>, admin_values: Option<&str>) -> RolePolicy {
        RolePolicy {
            claim: claim
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty()),
            admin_values: admin_values
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    /// The caller's role from the verified claims: admin when roles are off; with a
    /// claim configured, admin only when the claim holds one of the admin values (a
    /// token without the claim is a viewer).
    pub fn role(&self, claims: &HashMap<String, String>) -> Role {
        let Some(claim) = &self.claim else {
            return Role::Admin;
        };
        let values = claims
            .get(claim)
            .map(|v| claim_values(v))
            .unwrap_or_default();
        if values
            .iter()
            .any(|v| self.admin_values.iter().any(|a| a == v))
        {
            Role::Admin
        } else {
            Role::Viewer
        }
    }

    /// What grants the admin role, for messages; empty when roles are off.
    pub fn admin_grant(&self) -> String {
        match &self.claim {
            None => String::new(),
            Some(claim) if self.admin_values.is_empty() => {
                format!("the '{claim}' claim holding an admin value (ADMIN_VALUES is empty: nobody is an admin)")
            }
            Some(claim) => format!(
                "the '{claim}' claim holding {}",
                self.admin_values.join(" or ")
            ),
        }
    }
}

/// The values of one claim as API Gateway hands it over, every claim a string: a
/// plain string is one value; an array arrives as `[a b c]` (the HTTP API JWT
/// authorizer's form) or as JSON (`["a","b"]`).
pub fn claim_values(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    if raw.starts_with('[') && raw.ends_with(']') {
        if let Ok(list) = serde_json::from_str::<Vec<serde_json::Value>>(raw) {
            return list
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect();
        }
        return raw[1..raw.len() - 1]
            .split_whitespace()
            .map(str::to_string)
            .collect();
    }
    if raw.is_empty() {
        Vec::new()
    } else {
        vec![raw.to_string()]
    }
}

/// The caller of request `request_id` from its verified claims.
pub fn caller_from_claims(
    claims: &HashMap<String, String>,
    org_claim: &str,
    roles: &RolePolicy,
    request_id: &str,
) -> Result<Caller> {
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
        org: OrgId::parse(org)?,
        user: user.clone(),
        role: roles.role(claims),
        admin_grant: roles.admin_grant(),
        // Shown in the audit trail: only a plausible address is kept.
        email: claims
            .get("email")
            .filter(|e| e.len() <= 320 && e.contains('@') && !e.chars().any(char::is_control))
            .cloned(),
        request_id: request_id.to_string(),
    })
}

// --- who is calling -------------------------------------------------------------

/// Who is calling, from the JWT claims API Gateway's authorizer verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub org: OrgId,
    pub user: String,
    /// From the configured role claim (`ROLE_CLAIM`, `ADMIN_VALUES`); every member
    /// is an admin when no role claim is configured.
    pub role: Role,
    /// What grants the admin role, for refusals ("the 'groups' claim containing
    /// seatscope-admins"); empty when roles are off.
    pub admin_grant: String,
    /// The `email` claim, where the token has one (the audit trail shows it).
    pub email: Option<String>,
    /// The id of the request being served (API Gateway's), keying its audit entry.
    pub request_id: String,
}

/// The two roles: an admin may change things, a viewer reads everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Viewer,
}

impl Caller {
    /// A member of `org` with roles off (every member an admin): for tools and
    /// tests that act outside a request.
    pub fn member(org: &OrgId, user: &str) -> Caller {
        Caller {
            org: org.clone(),
            user: user.to_string(),
            email: None,
            role: Role::Admin,
            admin_grant: String::new(),
            request_id: new_request_id(),
        }
    }
}

/// A request id for work no API Gateway request carries (tools, hand-made events):
/// `seatscope-` and 16 random hex characters.
pub fn new_request_id() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("seatscope-{hex}")
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

    fn off() -> RolePolicy {
        RolePolicy::default()
    }

    fn groups() -> RolePolicy {
        RolePolicy::new(Some("groups".into()), Some(" seatscope-admins , owners"))
    }

    #[test]
    fn claim_values_read_a_string_an_array_and_api_gateways_stringified_array() {
        assert_eq!(claim_values("seatscope-admins"), vec!["seatscope-admins"]);
        assert_eq!(claim_values(r#"["a","b c"]"#), vec!["a", "b c"]);
        assert_eq!(claim_values("[a b]"), vec!["a", "b"]);
        assert_eq!(claim_values("[seatscope-admins]"), vec!["seatscope-admins"]);
        assert_eq!(claim_values("[]"), Vec::<String>::new());
        assert_eq!(claim_values(""), Vec::<String>::new());
    }

    #[test]
    fn the_role_comes_from_the_configured_claim() {
        let p = groups();
        assert_eq!(p.admin_values, vec!["seatscope-admins", "owners"]);
        let role = |v: Option<&str>| {
            let mut c = claims(&[("sub", "u"), ("org_id", "acme")]);
            if let Some(v) = v {
                c.insert("groups".into(), v.into());
            }
            p.role(&c)
        };
        assert_eq!(role(Some("seatscope-admins")), Role::Admin);
        assert_eq!(role(Some(r#"["staff","owners"]"#)), Role::Admin);
        assert_eq!(role(Some("[staff seatscope-admins]")), Role::Admin);
        assert_eq!(role(Some("[staff]")), Role::Viewer);
        assert_eq!(role(Some("staff")), Role::Viewer);
        // A value is matched whole, not as a substring.
        assert_eq!(role(Some("seatscope-admins-not")), Role::Viewer);
        // Missing claim while one is configured: viewer.
        assert_eq!(role(None), Role::Viewer);
        // Roles off: everyone is an admin, whatever the token says.
        assert_eq!(off().role(&claims(&[("groups", "staff")])), Role::Admin);
        assert_eq!(RolePolicy::new(Some("  ".into()), None), off());
    }

    #[test]
    fn a_viewer_is_refused_a_change_with_403_naming_the_grant() {
        let c = caller_from_claims(
            &claims(&[("sub", "u"), ("org_id", "acme"), ("groups", "[staff]")]),
            "org_id",
            &groups(),
            "r-1",
        )
        .unwrap();
        assert_eq!(c.role, Role::Viewer);
        let e = c
            .admin_for(crate::domain::audit::Action::Disconnect)
            .unwrap_err();
        assert_eq!((e.status(), e.code()), (403, "admin_role_required"));
        let m = e.public_message();
        assert!(
            m.contains("disconnect") && m.contains("'groups'") && m.contains("seatscope-admins"),
            "{m}"
        );
        assert!(Caller::member(&OrgId::parse("acme").unwrap(), "u")
            .admin_for(crate::domain::audit::Action::Disconnect)
            .is_ok());
    }

    #[test]
    fn caller_needs_subject_and_org() {
        let c = caller_from_claims(
            &claims(&[("sub", "u1"), ("org_id", "acme")]),
            "org_id",
            &off(),
            "r-1",
        )
        .unwrap();
        assert_eq!((c.org.as_str(), c.user.as_str()), ("acme", "u1"));
        assert_eq!(
            caller_from_claims(&claims(&[("sub", "u1")]), "org_id", &off(), "r-1")
                .unwrap_err()
                .status(),
            401
        );
        assert_eq!(
            caller_from_claims(&claims(&[("org_id", "a")]), "org_id", &off(), "r-1")
                .unwrap_err()
                .status(),
            401
        );
    }

    #[test]
    fn org_ids_that_could_break_keys_are_refused() {
        let e = caller_from_claims(
            &claims(&[("sub", "u"), ("org_id", "a#b")]),
            "org_id",
            &off(),
            "r-1",
        );
        assert_eq!(e.unwrap_err().status(), 401);
    }
}
