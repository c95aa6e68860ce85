//! PandaDoc (REST API v1, OAuth 2.0 or a legacy `API-Key`). Seats are the
//! organization's users (with their license); activity is read from documents and
//! templates: who created, sent and completed documents and who created templates,
//! and when (the catalog's `feature_sources` says which field defines each feature).
//!
//! PandaDoc has no activity feed and its lists carry no owner, so the connector
//! lists what changed since the window start (`modified_from`; a document created,
//! sent or completed at `t` has `date_modified >= t`) and reads each one's details.
//! Lists page with `count`/`page` and say nothing about more pages: a short page is
//! the last. 429s carry no rate-limit headers; `VendorHttp` backs off and reads the
//! "Expected available in N seconds" hint from the body.

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::http::VendorHttp;
use super::{refused, ActivityEvent, Connector, EventSink, SeatRecord, Span, Verified};
use crate::domain::catalog::Provider;
use crate::error::{Error, Result};

/// `/public/v1/users` takes at most 50 per page.
const USERS_PAGE_MAX: u32 = 50;

pub struct PandaDocApi {
    http: VendorHttp,
    page_size: u32,
}

#[derive(Deserialize)]
struct Member {
    #[serde(default)]
    email: String,
    /// The member's current workspace: the account's identity.
    #[serde(default)]
    workspace: Option<String>,
}

#[derive(Deserialize)]
struct UsersPage {
    #[serde(default)]
    results: Vec<User>,
}

#[derive(Deserialize)]
struct User {
    user_id: String,
    #[serde(flatten)]
    person: super::Person,
    #[serde(default)]
    license: Option<String>,
    #[serde(default)]
    is_organization_owner: bool,
    #[serde(default)]
    workspaces: Vec<Workspace>,
}

#[derive(Deserialize)]
struct Workspace {
    #[serde(default)]
    role: Option<String>,
}

#[derive(Deserialize)]
struct ListPage {
    #[serde(default)]
    results: Vec<Listed>,
}

#[derive(Deserialize)]
struct Listed {
    id: String,
    #[serde(default)]
    date_created: Option<String>,
}

#[derive(Deserialize)]
struct Person {
    id: String,
}

#[derive(Deserialize)]
struct DocumentDetails {
    #[serde(default)]
    date_created: Option<String>,
    #[serde(default)]
    date_sent: Option<String>,
    #[serde(default)]
    date_completed: Option<String>,
    #[serde(default)]
    created_by: Option<Person>,
    #[serde(default)]
    sent_by: Option<Person>,
}

#[derive(Deserialize)]
struct TemplateDetails {
    #[serde(default)]
    date_created: Option<String>,
    #[serde(default)]
    created_by: Option<Person>,
}

impl PandaDocApi {
    pub fn new(http: VendorHttp, page_size: u32) -> Self {
        PandaDocApi {
            http,
            page_size: page_size.clamp(1, 100),
        }
    }

    fn provider(&self) -> &str {
        self.http.provider_id()
    }

    fn parse_time(&self, what: &str, value: &str) -> Result<OffsetDateTime> {
        OffsetDateTime::parse(value, &Rfc3339).map_err(|e| {
            Error::vendor_source(self.provider(), format!("unreadable {what} '{value}'"), e)
        })
    }

    /// Ids (and creation times) of every item of a list endpoint, page by page.
    async fn list_all(&self, path: &str, filters: &[(&str, String)]) -> Result<Vec<Listed>> {
        let mut all = Vec::new();
        for page in 1u32.. {
            let mut query = filters.to_vec();
            query.push(("count", self.page_size.to_string()));
            query.push(("page", page.to_string()));
            let listed: ListPage = self.http.get_json(path, &query).await?;
            let n = listed.results.len() as u32;
            all.extend(listed.results);
            if n < self.page_size {
                break;
            }
        }
        Ok(all)
    }
}

/// The vendor answered 403 Forbidden (not allowed, rather than not authenticated).
fn forbidden(e: &Error) -> bool {
    matches!(e, Error::Vendor { message, .. } if message.contains(" answered 403"))
}

/// Makes the connector of a catalog provider: its line in `connectors::REGISTRY`.
pub fn connector(provider: &Provider, http: VendorHttp) -> Box<dyn Connector> {
    Box::new(PandaDocApi::new(http, provider.page_size))
}

#[async_trait::async_trait]
impl Connector for PandaDocApi {
    /// The request loop, for its counters.
    fn http(&self) -> &VendorHttp {
        &self.http
    }

    /// `GET /public/v1/members/current`: works for OAuth tokens and API keys.
    /// Who the credentials are, that the plan includes API access, and that they may
    /// read the member list seats are counted from (an organization admin's): each
    /// refusal says which, and what to do, at connect time rather than in a failed
    /// first sync.
    async fn verify(&self) -> Result<Verified> {
        let name = self.http.provider_name();
        let me: Member = self
            .http
            .get_json("/public/v1/members/current", &[])
            .await
            .map_err(|e| match e {
                e if forbidden(&e) => Error::unprocessable(
                    "api_access_missing",
                    format!(
                        "{name} refused API access for this account: the {name} API needs the \
                         Enterprise plan (or an Enterprise trial). Ask your {name} admin to \
                         enable it, then connect again."
                    ),
                ),
                e => refused(name, e),
            })?;
        let account = Some(me.email).filter(|e| !e.is_empty());
        let probe = [
            ("count", "1".to_string()),
            ("show_removed", "false".to_string()),
        ];
        match self
            .http
            .get_json::<UsersPage>("/public/v1/users", &probe)
            .await
        {
            Ok(_) => Ok(Verified {
                account_label: account,
                account_id: me.workspace.filter(|w| !w.is_empty()),
            }),
            Err(e) if forbidden(&e) => Err(Error::unprocessable(
                "admin_required",
                format!(
                    "{} can use {name} but is not an organization admin, and only admins may \
                     read the member list Seatscope counts seats from. Connect as a {name} \
                     organization admin, or send an invite link to one.",
                    account.as_deref().unwrap_or("This account")
                ),
            )),
            Err(e) => Err(refused(name, e)),
        }
    }

    async fn seats(&self) -> Result<Vec<SeatRecord>> {
        let count = self.page_size.min(USERS_PAGE_MAX);
        let mut seats = Vec::new();
        for page in 1u32.. {
            let users: UsersPage = self
                .http
                .get_json(
                    "/public/v1/users",
                    &[
                        ("count", count.to_string()),
                        ("page", page.to_string()),
                        ("show_removed", "false".to_string()),
                    ],
                )
                .await?;
            let n = users.results.len() as u32;
            seats.extend(users.results.into_iter().map(|u| {
                SeatRecord {
                    role: u
                        .workspaces
                        .iter()
                        .find_map(|w| w.role.clone())
                        .unwrap_or_else(|| {
                            if u.is_organization_owner {
                                "Owner".into()
                            } else {
                                "Member".into()
                            }
                        }),
                    name: u.person.name(),
                    id: u.user_id,
                    email: u.person.email,
                    license: u.license,
                    invited: false,
                }
            }));
            if n < count {
                break;
            }
        }
        Ok(seats)
    }

    async fn activity(&self, (since, until): Span, sink: EventSink<'_>) -> Result<u64> {
        let in_window = |t: OffsetDateTime| t >= since && t < until;
        let mut events = 0u64;
        let mut emit = |seat: &str, at: OffsetDateTime, feature: &'static str| {
            events += 1;
            sink(ActivityEvent {
                seat_id: seat.to_string(),
                at,
                feature,
            });
        };

        let documents = self
            .list_all(
                "/public/v1/documents",
                &[("modified_from", crate::domain::rfc3339(since))],
            )
            .await?;
        for doc in documents {
            let d: DocumentDetails = self
                .http
                .get_json(&format!("/public/v1/documents/{}/details", doc.id), &[])
                .await?;
            let creator = d.created_by.as_ref().map(|p| p.id.as_str());
            if let (Some(at), Some(who)) = (d.date_created.as_deref(), creator) {
                let at = self.parse_time("date_created", at)?;
                if in_window(at) {
                    emit(who, at, "document_created");
                }
            }
            if let (Some(at), Some(who)) = (d.date_sent.as_deref(), d.sent_by.as_ref()) {
                let at = self.parse_time("date_sent", at)?;
                if in_window(at) {
                    emit(&who.id, at, "document_sent");
                }
            }
            if let (Some(at), Some(who)) = (d.date_completed.as_deref(), creator) {
                let at = self.parse_time("date_completed", at)?;
                if in_window(at) {
                    emit(who, at, "document_completed");
                }
            }
        }

        // Templates cannot be filtered by date: only those created in the window
        // are read in detail.
        let templates = self.list_all("/public/v1/templates", &[]).await?;
        for template in templates {
            let Some(created) = template.date_created.as_deref() else {
                continue;
            };
            if !in_window(self.parse_time("date_created", created)?) {
                continue;
            }
            let t: TemplateDetails = self
                .http
                .get_json(
                    &format!("/public/v1/templates/{}/details", template.id),
                    &[],
                )
                .await?;
            if let (Some(at), Some(who)) = (t.date_created.as_deref(), t.created_by.as_ref()) {
                let at = self.parse_time("date_created", at)?;
                if in_window(at) {
                    emit(&who.id, at, "template_created");
                }
            }
        }
        Ok(events)
    }
}
