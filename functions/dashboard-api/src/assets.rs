//! The dashboard page's static files, embedded at build time (see build.rs).

pub struct Asset {
    pub bytes: &'static [u8],
    pub content_type: &'static str,
    /// Our own files change with each deploy; the pinned libraries do not.
    pub immutable: bool,
}

macro_rules! embedded {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $name))
    };
}

/// The HTML shell of every page (`/`, `/connections`, `/apps/{provider}`, `/signin/callback`).
pub const INDEX_HTML: &[u8] = embedded!("index.html");

/// A file under `/assets/`, by name.
pub fn asset(name: &str) -> Option<Asset> {
    let (bytes, content_type, immutable): (&'static [u8], &'static str, bool) = match name {
        "app.js" => (embedded!("app.js"), "text/javascript; charset=utf-8", false),
        "app.css" => (embedded!("app.css"), "text/css; charset=utf-8", false),
        "chart.umd.min.js" => (
            embedded!("chart.umd.min.js"),
            "text/javascript; charset=utf-8",
            true,
        ),
        "oidc-client-ts.min.js" => (
            embedded!("oidc-client-ts.min.js"),
            "text/javascript; charset=utf-8",
            true,
        ),
        _ => return None,
    };
    Some(Asset {
        bytes,
        content_type,
        immutable,
    })
}
