//! The provider catalog (`providers.toml`, embedded at build time): per vendor, the
//! auth modes, endpoints, paging, rate limit and feature names. Endpoints can be
//! overridden from the environment so the same code talks to the sandboxes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const CATALOG_TOML: &str = include_str!("../../providers.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    Oauth2,
    ApiKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// client id and secret in an HTTP Basic header
    Basic,
    /// client id and secret as form fields
    Body,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OAuth2Spec {
    pub authorize_url: String,
    pub token_url: String,
    pub scopes: Vec<String>,
    /// Identity-only scopes the vendor documents granting whatever is asked (PagerDuty
    /// always adds `openid`): accepted in a token response besides `scopes`.
    #[serde(default)]
    pub always_granted: Vec<String>,
    pub pkce: bool,
    pub client_auth: ClientAuth,
    #[serde(default)]
    pub refresh_rotates: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeySpec {
    /// Authorization header value with `{key}` in place of the key.
    pub header: String,
    /// Scopes (permissions) the key must carry, where the vendor can tell.
    #[serde(default)]
    pub required_scopes: Vec<String>,
}

fn one() -> u32 {
    1
}

/// How a vendor counts its rate limit, which decides how the client keeps to it
/// (`connectors::http`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateWindow {
    /// Fixed windows per credential, one count for every endpoint, reported on each
    /// response (`remaining`, `reset`): PagerDuty's `ratelimit-*`.
    #[default]
    Fixed,
    /// Fixed windows per credential and endpoint (path), reported the same way:
    /// SendGrid's `X-RateLimit-*`.
    FixedPerEndpoint,
    /// A sliding 60 s window and no header (PandaDoc): each budget keeps a log of its
    /// last minute's requests.
    Sliding,
}

/// A budget for a class of endpoints (e.g. PandaDoc's details operations).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateClass {
    pub name: String,
    /// Path patterns relative to the API base; `*` stands for one path segment
    /// (`/public/v1/documents/*/details`).
    pub paths: Vec<String>,
    pub per_minute: u32,
    #[serde(default = "one")]
    pub burst: u32,
}

impl RateClass {
    pub fn matches(&self, path: &str) -> bool {
        self.paths.iter().any(|p| path_matches(p, path))
    }
}

/// `pattern` and `path` have the same segments, `*` matching any one segment.
fn path_matches(pattern: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let mut pat = pattern.trim_end_matches('/').split('/');
    let mut got = path.trim_end_matches('/').split('/');
    loop {
        match (pat.next(), got.next()) {
            (None, None) => return true,
            (Some("*"), Some(seg)) if !seg.is_empty() => {}
            (Some(p), Some(seg)) if p == seg => {}
            _ => return false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provider {
    pub id: String,
    pub name: String,
    pub auth_modes: Vec<AuthMode>,
    pub api_base: String,
    #[serde(default)]
    pub accept: Option<String>,
    pub page_size: u32,
    #[serde(default)]
    pub max_offset: Option<u32>,
    /// The client-side request budget of one connection (vendors limit per token or
    /// user, which is what one connection is): requests per minute for every path no
    /// `rate_classes` entry names.
    pub rate_limit_per_minute: u32,
    /// How many requests may go out back to back before pacing starts (the GCRA
    /// burst). The vendor's whole window where it counts fixed windows and says when
    /// one is spent (headers). Unused for a sliding window, where the log of the last
    /// minute lets a whole window's worth through at once.
    #[serde(default = "one")]
    pub rate_burst: u32,
    /// How the vendor counts: fixed windows it reports in headers (per credential or
    /// per endpoint), or a sliding window it does not report.
    #[serde(default)]
    pub rate_window: RateWindow,
    /// Endpoint classes the vendor limits differently; the first whose pattern
    /// matches a path wins.
    #[serde(default)]
    pub rate_classes: Vec<RateClass>,
    pub features: Vec<String>,
    #[serde(default)]
    pub feature_sources: BTreeMap<String, String>,
    pub seat_source: String,
    /// False where the vendor has no per-seat activity (the dashboard says so).
    pub per_seat_activity: bool,
    /// How the vendor bills: per seat (cost and savings follow seats) or by usage
    /// (the dashboard compares volume with the plan's credits).
    #[serde(default)]
    pub pricing: Pricing,
    /// The feature that spends the plan's credits (usage-priced apps): its pace over
    /// the last 30 complete days projects the credits to the reset.
    #[serde(default)]
    pub plan_metric: Option<String>,
    /// Cheaper plans and the catalog features they include, for the tier hint.
    /// Only tiers with a published source are listed.
    #[serde(default)]
    pub tiers: Vec<Tier>,
    /// A cheaper license a seat's activity may fit (the downgrade hint).
    #[serde(default)]
    pub downgrade: Option<Downgrade>,
    #[serde(default)]
    pub oauth2: Option<OAuth2Spec>,
    #[serde(default)]
    pub api_key: Option<ApiKeySpec>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pricing {
    #[default]
    PerSeat,
    Usage,
}

/// A license a seat could move down to: a seat whose license name contains `from`,
/// on no on-call schedule and with none of `responder_features` in the app's
/// inactivity threshold, though active (else it is reclaimable), could be a `to`
/// seat. The saving is the difference of the two license prices.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Downgrade {
    /// A substring of the current license's name, e.g. "Full User".
    pub from: String,
    /// A substring of the cheaper license's name, e.g. "Stakeholder".
    pub to: String,
    /// The features only the `from` license allows.
    pub responder_features: Vec<String>,
    /// Where the facts come from.
    pub source: String,
}

/// A vendor plan: which catalog features it includes and how many users it allows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tier {
    pub name: String,
    pub features: Vec<String>,
    #[serde(default)]
    pub max_seats: Option<u32>,
    /// Where the facts come from.
    pub source: String,
}

impl Provider {
    pub fn supports(&self, mode: AuthMode) -> bool {
        self.auth_modes.contains(&mode)
    }

    /// The rate class a request path falls in, if any (else the provider's budget).
    pub fn rate_class(&self, path: &str) -> Option<&RateClass> {
        self.rate_classes.iter().find(|c| c.matches(path))
    }

    /// Upper-case id used as the prefix of this provider's environment variables.
    pub fn env_prefix(&self) -> String {
        self.id.to_ascii_uppercase().replace('-', "_")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Catalog {
    #[serde(rename = "provider")]
    providers: Vec<Provider>,
}

impl Catalog {
    /// The embedded catalog, with URL overrides read through `lookup`
    /// (`<ID>_API_BASE`, `<ID>_AUTHORIZE_URL`, `<ID>_TOKEN_URL`).
    pub fn load(lookup: impl Fn(&str) -> Option<String>) -> Result<Catalog> {
        let mut catalog: Catalog = toml::from_str(CATALOG_TOML)
            .map_err(|e| Error::Config(format!("providers.toml is invalid: {e}")))?;
        for p in &mut catalog.providers {
            let prefix = p.env_prefix();
            if let Some(v) = lookup(&format!("{prefix}_API_BASE")) {
                p.api_base = v;
            }
            if let Some(o) = p.oauth2.as_mut() {
                if let Some(v) = lookup(&format!("{prefix}_AUTHORIZE_URL")) {
                    o.authorize_url = v;
                }
                if let Some(v) = lookup(&format!("{prefix}_TOKEN_URL")) {
                    o.token_url = v;
                }
            }
        }
        Ok(catalog)
    }

    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    pub fn get(&self, id: &str) -> Result<&Provider> {
        self.providers
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| Error::NotFound(format!("provider '{id}'")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_parses_and_every_oauth_provider_has_endpoints() {
        let c = Catalog::load(|_| None).unwrap();
        let pd = c.get("pagerduty").unwrap();
        assert!(pd.supports(AuthMode::Oauth2));
        assert!(pd.oauth2.as_ref().unwrap().pkce);
        assert_eq!(pd.rate_limit_per_minute, 960);
        for p in c.providers() {
            assert_eq!(p.supports(AuthMode::Oauth2), p.oauth2.is_some(), "{}", p.id);
            assert_eq!(
                p.supports(AuthMode::ApiKey),
                p.api_key.is_some(),
                "{}",
                p.id
            );
            for t in &p.tiers {
                for f in &t.features {
                    assert!(
                        p.features.contains(f),
                        "{}: tier {} lists {f}",
                        p.id,
                        t.name
                    );
                }
            }
            for f in p.feature_sources.keys() {
                assert!(
                    p.features.contains(f),
                    "{}: source for unknown feature {f}",
                    p.id
                );
            }
        }
    }

    #[test]
    fn environment_overrides_point_a_provider_at_a_sandbox() {
        let c = Catalog::load(|k| match k {
            "PAGERDUTY_API_BASE" => Some("http://127.0.0.1:9".into()),
            "PAGERDUTY_TOKEN_URL" => Some("http://127.0.0.1:9/oauth/token".into()),
            _ => None,
        })
        .unwrap();
        let pd = c.get("pagerduty").unwrap();
        assert_eq!(pd.api_base, "http://127.0.0.1:9");
        assert_eq!(
            pd.oauth2.as_ref().unwrap().token_url,
            "http://127.0.0.1:9/oauth/token"
        );
        assert!(pd
            .oauth2
            .as_ref()
            .unwrap()
            .authorize_url
            .starts_with("https://identity"));
    }

    #[test]
    fn rate_budgets_follow_each_vendors_limits() {
        let c = Catalog::load(|_| None).unwrap();
        let pd = c.get("pagerduty").unwrap();
        assert_eq!((pd.rate_limit_per_minute, pd.rate_burst), (960, 960));
        assert!(pd.rate_class("/log_entries").is_none());
        assert_eq!(pd.rate_window, RateWindow::Fixed);
        let doc = c.get("pandadoc").unwrap();
        assert_eq!(doc.rate_limit_per_minute, 2000);
        assert_eq!(doc.rate_window, RateWindow::Sliding);
        let details = doc
            .rate_class("/public/v1/documents/abc123/details")
            .expect("details class");
        assert_eq!(
            (details.name.as_str(), details.per_minute),
            ("document_details", 600)
        );
        // PandaDoc counts per operation: template details have their own 600.
        let templates = doc
            .rate_class("/public/v1/templates/t1/details")
            .expect("template details class");
        assert_eq!(
            (templates.name.as_str(), templates.per_minute),
            ("template_details", 600)
        );
        let sg = c.get("sendgrid").unwrap();
        assert_eq!(sg.rate_window, RateWindow::FixedPerEndpoint);
        assert!(doc.rate_class("/public/v1/documents").is_none());
        assert!(doc.rate_class("/public/v1/documents//details").is_none());
        assert!(doc.rate_class("/public/v1/documents/a/b/details").is_none());
        for p in c.providers() {
            assert!(p.rate_limit_per_minute > 0 && p.rate_burst > 0, "{}", p.id);
            assert!(p.rate_burst <= p.rate_limit_per_minute, "{}", p.id);
        }
    }

    #[test]
    fn unknown_provider_is_not_found() {
        let c = Catalog::load(|_| None).unwrap();
        assert_eq!(c.get("nope").unwrap_err().status(), 404);
    }
}
