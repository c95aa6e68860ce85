//! Every HTML page of ours, rendered with maud (compile-time templates, every value
//! escaped): the callback's and invite pages and the document they share.

use lambda_http::{Body, Response};
use maud::{Markup, DOCTYPE};

use super::response::*;

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
}
