//! Every HTML page of ours, rendered with maud (compile-time templates, every value
//! escaped): the callback's and invite pages (connect-start's forms included) and the document
//! they share.

use lambda_http::{Body, Response};
use maud::{html, Markup, DOCTYPE};

use super::response::*;
use crate::ops::connect::{AskedBy, KeyForm};

/// The frame of a page around `main`. Rendered with maud: every value
/// interpolated here or in `main` is escaped.
pub fn html_document(title: &str, main: Markup) -> Markup {
    maud::html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " — Seatscope" }
                meta name="viewport" content="width=device-width, initial-scale=1";
            }
            body style="font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;line-height:1.5" {
                main { (main) }
            }
        }
    }
}

/// A page for someone without a dashboard account (an invited app admin): no
/// link back into the dashboard.
pub fn standalone_page(status: u16, title: &str, message: &str) -> Response<Body> {
    let main = maud::html! {
        h1 { (title) }
        p { (message) }
    };
    html(status, html_document(title, main))
}

/// A small page for browser flows (the OAuth callback's failures).
pub fn page(status: u16, title: &str, message: &str) -> Response<Body> {
    let main = maud::html! {
        h1 { (title) }
        p { (message) }
        p { a href="/connections" { "Back to Connections" } }
    };
    html(status, html_document(title, main))
}

/// The end of an invite connect: the admin who followed the link has no
/// dashboard account, so there is nowhere to send them but here.
pub fn invite_connected_page(provider_name: &str, vendor_account: Option<&str>) -> Response<Body> {
    let account = vendor_account
        .map(|a| format!(" (account {a})"))
        .unwrap_or_default();
    standalone_page(
        200,
        &format!("{provider_name} is connected"),
        &format!(
            "Seatscope can now read seat and usage data from {provider_name}{account}. \
             Thank you — you can close this tab."
        ),
    )
}

/// The end of an invite connect that landed on another vendor account than the
/// org's connection: held until an admin of the org chooses.
pub fn invite_held_page(provider_name: &str, message: &str) -> Response<Body> {
    standalone_page(
        200,
        &format!("{provider_name}: waiting for the organization's admin"),
        &format!("{message} Thank you — you can close this tab."),
    )
}

/// The landing page of an OAuth invite: one button that posts back to the link
/// (GET uses nothing up, so link previews cannot burn the invite). The form's
/// redirect goes to the vendor's consent page, so CSP `form-action` allows its origin.
pub fn invite_continue_page(
    provider_name: &str,
    asked_by: &AskedBy,
    vendor_origin: &str,
) -> Response<Body> {
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
    let mut page = html(
        200,
        html_document(&format!("Connect {provider_name}"), main),
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
pub fn invite_key_form(status: u16, form: &KeyForm) -> Response<Body> {
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
             AWS Secrets Manager. After " (crate::domain::invite::INVITE_MAX_REFUSED_KEYS)
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
    html(
        status,
        html_document(&format!("Connect {}", form.provider_name), main),
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

    #[test]
    fn every_page_escapes_each_value_it_shows() {
        for (raw, escaped) in HOSTILE {
            for text in [
                body(standalone_page(400, raw, "m")),
                body(standalone_page(400, "t", raw)),
                body(page(400, raw, "m")),
                body(page(400, "t", raw)),
                body(invite_connected_page(raw, None)),
                body(invite_connected_page("PagerDuty", Some(raw))),
            ] {
                assert!(
                    text.contains(escaped) && !text.contains(raw),
                    "{raw}: {text}"
                );
                assert!(
                    text.starts_with("<!DOCTYPE html><html lang=\"en\">"),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn a_page_keeps_its_markup() {
        let r = page(400, "Refused", "It's over");
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert!(r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'; style-src 'unsafe-inline'; form-action 'self';"));
        assert_eq!(
            body(r),
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Refused — Seatscope</title>\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
             <body style=\"font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;line-height:1.5\">\
             <main><h1>Refused</h1><p>It's over</p><p><a href=\"/connections\">Back to Connections</a></p></main></body></html>"
        );
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
                body(invite_continue_page(
                    raw,
                    &asked("acme", "a@acme.example"),
                    origin,
                )),
                body(invite_continue_page(
                    "Zoom",
                    &asked(raw, "a@acme.example"),
                    origin,
                )),
                body(invite_continue_page("Zoom", &asked("acme", raw), origin)),
                body(invite_key_form(200, &form(raw, "acme", "u", "s", "p"))),
                body(invite_key_form(200, &form("Zoom", raw, "u", "s", "p"))),
                body(invite_key_form(200, &form("Zoom", "acme", raw, "s", "p"))),
                body(invite_key_form(200, &form("Zoom", "acme", "u", raw, "p"))),
                body(invite_key_form(400, &form("Zoom", "acme", "u", "s", raw))),
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
        let r = invite_key_form(
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
        let text = body(invite_key_form(200, &first));
        assert!(text.contains("size=\"50\"></p>"), "{text}");
        assert!(
            !text.contains("aria-") && !text.contains("id=\"problem\""),
            "{text}"
        );
    }

    #[test]
    fn the_continue_page_allows_only_the_vendor_origin_to_be_posted_to() {
        let r = invite_continue_page("Zoom", &asked("acme", "u"), "https://zoom.us");
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("form-action 'self' https://zoom.us;"), "{csp}");
        let text = body(r);
        assert!(text.contains(
            "<form method=\"post\"><input type=\"hidden\" name=\"continue\" value=\"1\">\
             <p><button type=\"submit\">Continue to Zoom</button></p></form>"
        ));
        let r = invite_continue_page("Zoom", &asked("acme", "u"), "https://x'; script-src *");
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("form-action 'self';"), "{csp}");
    }
}
