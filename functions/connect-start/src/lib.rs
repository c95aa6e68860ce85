//! Connecting an app. Routing is by API Gateway's route key, so it matches
//! template.yaml exactly:
//!
//! - `POST /api/connections/{provider}/connect` → `{"authorize_url"}` and the OAuth
//!   binding cookie: the browser goes there for the vendor's consent screen, and only
//!   this browser can finish the connect;
//! - `POST /api/connections/{provider}/api-key` with `{"api_key"}` → the key is
//!   checked with the vendor, then kept: `{"provider", "status", "vendor_account"}`;
//! - `POST /api/connections/{provider}/invites` → `{"url", "expires_at"}`: a
//!   single-use link for the app's admin;
//! - `GET /api/connections/{provider}/invites` → `{"invites": [...]}`: the pending
//!   ones (never their tokens); `DELETE …/invites/{id}` → 204: revoked;
//! - `GET /connect/invite/{token}` (no sign-in: the token is the capability) →
//!   a page naming the org and who asked: "Continue" or the API-key form;
//! - `POST /connect/invite/{token}` without a key ("Continue") → 302 to the vendor's
//!   consent page with the binding cookie;
//! - `POST /connect/invite/{token}` with the form's `api_key` → a page.

use lambda_http::{Body, Request, Response};
use maud::{html, Markup};
use seatscope_core::domain::audit::Action;
use seatscope_core::http;
use seatscope_core::ops::audit_trail::attempt;
use seatscope_core::ops::connect::{self, AskedBy, InviteKeyOutcome, InviteLanding, KeyForm};
use seatscope_core::{Deps, Error};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    /// Same-origin path to come back to after the consent screen.
    pub return_to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRequest {
    pub api_key: SecretString,
}

#[tracing::instrument(skip_all, fields(route))]
pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let route = http::route_key(&req).unwrap_or_default();
    tracing::Span::current().record("route", route.as_str());
    let response = match route.as_str() {
        "GET /connect/invite/{token}" | "POST /connect/invite/{token}" => {
            // Boxed: the operations' state machines live on the heap, not the stack.
            Box::pin(invite(deps, &req, &route)).await
        }
        _ => Box::pin(api(deps, &req, &route))
            .await
            .unwrap_or_else(|e| http::error(&e)),
    };
    Ok(http::with_security_headers(deps, response))
}

fn provider(req: &Request) -> Result<String, Error> {
    http::path_param(req, "provider")
        .ok_or_else(|| Error::bad_request("missing_provider", "the path names no provider"))
}

/// The dashboard's JSON calls (behind the JWT authorizer).
async fn api(deps: &Deps, req: &Request, route: &str) -> Result<Response<Body>, Error> {
    let caller = http::caller(req, &deps.config)?;
    match route {
        "POST /api/connections/{provider}/connect" => {
            let provider = provider(req)?;
            let provider = provider.as_str();
            let started = attempt(
                deps,
                &caller,
                Action::Connect,
                Some(provider),
                |admin| async move {
                    let body: ConnectRequest = http::json_body(req)?;
                    connect::start_oauth_connect(deps, &admin, provider, body.return_to.as_deref())
                        .await
                },
            )
            .await?;
            let cookie = started.binding.set_cookie(deps.config.oauth_cookie_secure);
            Ok(http::with_cookie(http::json(200, &started), &cookie))
        }
        "POST /api/connections/{provider}/api-key" => {
            let provider = provider(req)?;
            let provider = provider.as_str();
            let connected = attempt(
                deps,
                &caller,
                Action::ApiKey,
                Some(provider),
                |admin| async move {
                    let body: ApiKeyRequest = http::secret_json_body(req, r#"{"api_key": "…"}"#)?;
                    connect::connect_api_key(deps, &admin, provider, body.api_key).await
                },
            )
            .await?;
            Ok(http::json(200, &connected))
        }
        "POST /api/connections/{provider}/invites" => {
            let provider = provider(req)?;
            let provider = provider.as_str();
            let invite = attempt(
                deps,
                &caller,
                Action::InviteCreated,
                Some(provider),
                |admin| async move { connect::create_invite(deps, &admin, provider).await },
            )
            .await?;
            Ok(http::json(201, &invite))
        }
        "GET /api/connections/{provider}/invites" => {
            let invites = connect::list_invites(deps, &caller, &provider(req)?).await?;
            Ok(http::json(200, &invites))
        }
        "DELETE /api/connections/{provider}/invites/{id}" => {
            let provider = provider(req)?;
            let provider = provider.as_str();
            let id = http::path_param(req, "id").unwrap_or_default();
            attempt(
                deps,
                &caller,
                Action::InviteRevoked,
                Some(provider),
                |admin| async move { connect::revoke_invite(deps, &admin, provider, &id).await },
            )
            .await?;
            Ok(http::no_content())
        }
        other => Err(Error::NotFound(format!("route '{other}'"))),
    }
}

/// The invite link, opened by an app admin in a browser: every answer is a page.
async fn invite(deps: &Deps, req: &Request, route: &str) -> Response<Body> {
    let token = http::path_param(req, "token").unwrap_or_default();
    let result = if route.starts_with("GET ") {
        connect::open_invite(deps, &token)
            .await
            .map(|landing| match landing {
                InviteLanding::Continue {
                    provider_name,
                    asked_by,
                    vendor_origin,
                } => continue_page(&provider_name, &asked_by, &vendor_origin),
                InviteLanding::KeyForm(form) => key_form(200, &form),
            })
    } else {
        match http::form_secret(req, "api_key") {
            Some(key) => connect::submit_invite_key(deps, &token, key, &http::request_id(req))
                .await
                .map(|outcome| match outcome {
                    InviteKeyOutcome::Connected {
                        provider_name,
                        vendor_account,
                    } => http::invite_connected_page(&provider_name, vendor_account.as_deref()),
                    InviteKeyOutcome::Retry { status, form } => key_form(status, &form),
                }),
            // The "Continue" button of an OAuth invite.
            None => connect::continue_invite(deps, &token, &http::request_id(req))
                .await
                .map(|started| {
                    // The vendor never learns the invite URL (it carries the token).
                    let mut to = http::with_cookie(
                        http::redirect(&started.authorize_url),
                        &started.binding.set_cookie(deps.config.oauth_cookie_secure),
                    );
                    to.headers_mut().insert(
                        "referrer-policy",
                        lambda_http::http::HeaderValue::from_static("no-referrer"),
                    );
                    to
                }),
        }
    };
    result.unwrap_or_else(|e| match e.status() {
        status if status < 500 => http::standalone_page(
            status,
            "This invite link cannot be used",
            &e.public_message(),
        ),
        _ => {
            tracing::error!(code = e.code(), error = %e.chain(), "invite failed");
            http::standalone_page(
                500,
                "Something went wrong",
                "Something went wrong on our side. Please open the link again in a few minutes.",
            )
        }
    })
}

/// The landing page of an OAuth invite: one button that posts back to the link
/// (GET uses nothing up, so link previews cannot burn the invite). The form's
/// redirect goes to the vendor's consent page, so CSP `form-action` allows its origin.
fn continue_page(provider_name: &str, asked_by: &AskedBy, vendor_origin: &str) -> Response<Body> {
    let name = provider_name;
    let main = html! {
        h1 { "Connect " (name) " to Seatscope" }
        (asked_line(asked_by, name))
        p {
            "Seatscope reports how " (name) "'s seats are used. You will sign in at " (name)
            " and approve read access there, in this browser; the access is stored only in \
             your organization's AWS Secrets Manager."
        }
        form method="post" {
            input type="hidden" name="continue" value="1";
            p { button type="submit" { "Continue to " (name) } }
        }
        p { "This link works once and expires 7 days after it was created." }
    };
    let mut page = http::html(
        200,
        http::html_document(&format!("Connect {provider_name}"), main),
    );
    let origin_ok = !vendor_origin.is_empty()
        && vendor_origin
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":/.-[]".contains(c));
    if origin_ok {
        let csp = format!(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {vendor_origin}; \
             frame-ancestors 'none'; base-uri 'none'"
        );
        if let Ok(v) = lambda_http::http::HeaderValue::from_str(&csp) {
            page.headers_mut().insert("content-security-policy", v);
        }
    }
    page
}

/// "<org> — <user> asked you to connect <App>".
fn asked_line(asked_by: &AskedBy, provider_name: &str) -> Markup {
    html! {
        p id="asked-by" {
            strong { (asked_by.org) } " — " (asked_by.user) " asked you to connect " (provider_name) "."
        }
    }
}

/// The API-key form of an invite. It posts back to the link itself (no
/// `action`), so the token appears nowhere in the page.
fn key_form(status: u16, form: &KeyForm) -> Response<Body> {
    let name = &form.provider_name;
    let mut described_by = Vec::new();
    if form.problem.is_some() {
        described_by.push("problem");
    }
    if !form.required_scopes.is_empty() {
        described_by.push("scopes");
    }
    let described_by = (!described_by.is_empty()).then(|| described_by.join(" "));
    let invalid = form.problem.is_some();
    let main = html! {
        h1 { "Connect " (name) " to Seatscope" }
        (asked_line(&form.asked_by, name))
        p {
            "Seatscope reports how " (name) "'s seats are used. Paste an API key below: it is \
             checked with " (name) " before it is kept, and stored only in your organization's \
             AWS Secrets Manager. After " (seatscope_core::domain::invite::INVITE_MAX_REFUSED_KEYS)
            " keys that are not accepted, this link stops working."
        }
        @if let Some(problem) = &form.problem {
            p id="problem" role="alert" style="color:#a40000" {
                strong { "The key was not accepted." } " " (problem)
            }
        }
        @if !form.required_scopes.is_empty() {
            div id="scopes" {
                p { "The key needs these permissions (read access):" }
                ul {
                    @for scope in &form.required_scopes {
                        li { code { (scope) } }
                    }
                }
            }
        }
        form method="post" {
            p {
                label for="api_key" { (name) " API key" }
                br;
                input id="api_key" name="api_key" type="password" required maxlength="512"
                    autocomplete="off" spellcheck="false" size="50"
                    aria-describedby=[described_by] aria-invalid=[invalid.then_some("true")]
                    autofocus[invalid];
            }
            p { button type="submit" { "Connect " (name) } }
        }
    };
    http::html(
        status,
        http::html_document(&format!("Connect {}", form.provider_name), main),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values that would break out of text or an attribute if pasted in raw, and
    /// how they must appear.
    const HOSTILE: [(&str, &str); 3] = [
        (
            "<script>alert(1)</script>",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
        ),
        (
            "\"onmouseover=alert(1) x=\"",
            "&quot;onmouseover=alert(1) x=&quot;",
        ),
        ("a & b", "a &amp; b"),
    ];

    fn body(r: Response<Body>) -> String {
        String::from_utf8(r.body().to_vec()).unwrap()
    }

    fn asked(org: &str, user: &str) -> AskedBy {
        AskedBy {
            org: org.into(),
            user: user.into(),
        }
    }

    fn form(name: &str, org: &str, user: &str, scope: &str, problem: &str) -> KeyForm {
        KeyForm {
            provider_name: name.into(),
            asked_by: asked(org, user),
            required_scopes: vec!["user.read".into(), scope.into()],
            problem: Some(problem.into()),
        }
    }

    #[test]
    fn the_invite_pages_escape_each_value_they_show() {
        let origin = "https://vendor.example";
        for (raw, escaped) in HOSTILE {
            for text in [
                body(continue_page(raw, &asked("acme", "a@acme.example"), origin)),
                body(continue_page("Zoom", &asked(raw, "a@acme.example"), origin)),
                body(continue_page("Zoom", &asked("acme", raw), origin)),
                body(key_form(200, &form(raw, "acme", "u", "s", "p"))),
                body(key_form(200, &form("Zoom", raw, "u", "s", "p"))),
                body(key_form(200, &form("Zoom", "acme", raw, "s", "p"))),
                body(key_form(200, &form("Zoom", "acme", "u", raw, "p"))),
                body(key_form(400, &form("Zoom", "acme", "u", "s", raw))),
            ] {
                assert!(
                    text.contains(escaped) && !text.contains(raw),
                    "{raw}: {text}"
                );
            }
        }
    }

    #[test]
    fn the_key_form_keeps_its_fields() {
        let r = key_form(
            400,
            &form("SendGrid", "acme", "admin@acme.example", "s", "No."),
        );
        assert_eq!(r.status(), 400);
        let text = body(r);
        for part in [
            "<title>Connect SendGrid — Seatscope</title>",
            "<p id=\"asked-by\"><strong>acme</strong> — admin@acme.example asked you to connect SendGrid.</p>",
            "<p id=\"problem\" role=\"alert\" style=\"color:#a40000\"><strong>The key was not accepted.</strong> No.</p>",
            "<div id=\"scopes\"><p>The key needs these permissions (read access):</p><ul><li><code>user.read</code></li><li><code>s</code></li></ul></div>",
            "<form method=\"post\"><p><label for=\"api_key\">SendGrid API key</label><br>\
             <input id=\"api_key\" name=\"api_key\" type=\"password\" required maxlength=\"512\" \
             autocomplete=\"off\" spellcheck=\"false\" size=\"50\" aria-describedby=\"problem scopes\" \
             aria-invalid=\"true\" autofocus></p><p><button type=\"submit\">Connect SendGrid</button></p></form>",
            "After 5 keys that are not accepted",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        let first = KeyForm {
            problem: None,
            required_scopes: vec![],
            ..form("SendGrid", "acme", "u", "s", "p")
        };
        let text = body(key_form(200, &first));
        assert!(text.contains("size=\"50\"></p>"), "{text}");
        assert!(
            !text.contains("aria-") && !text.contains("id=\"problem\""),
            "{text}"
        );
    }

    #[test]
    fn the_continue_page_allows_only_the_vendor_origin_to_be_posted_to() {
        let r = continue_page("Zoom", &asked("acme", "u"), "https://zoom.us");
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("form-action 'self' https://zoom.us;"), "{csp}");
        let text = body(r);
        assert!(text.contains(
            "<form method=\"post\"><input type=\"hidden\" name=\"continue\" value=\"1\">\
             <p><button type=\"submit\">Continue to Zoom</button></p></form>"
        ));
        let r = continue_page("Zoom", &asked("acme", "u"), "https://x'; script-src *");
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("form-action 'self';"), "{csp}");
    }
}
