//! Gathers the dashboard page's static files into OUT_DIR, where `src/assets.rs`
//! embeds them: our own page (web/index.html, app.js, app.css) and the two browser
//! libraries from npm (chart.js, oidc-client-ts), pinned by web/package-lock.json.
//! The libraries are installed with `npm ci` when web/node_modules lacks them, so
//! the build output carries them and nothing is fetched from a CDN at run time.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (file served under /assets/, where it comes from under web/)
const VENDORED: [(&str, &str); 2] = [
    (
        "chart.umd.min.js",
        "node_modules/chart.js/dist/chart.umd.min.js",
    ),
    (
        "oidc-client-ts.min.js",
        "node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js",
    ),
];
const OWN: [&str; 3] = ["index.html", "app.js", "app.css"];

fn main() -> Result<(), String> {
    let var = |k: &str| std::env::var(k).map_err(|_| format!("cargo did not set {k}"));
    let web = PathBuf::from(var("CARGO_MANIFEST_DIR")?).join("web");
    let out = PathBuf::from(var("OUT_DIR")?);
    println!("cargo:rerun-if-changed=web/package-lock.json");
    for f in OWN {
        println!("cargo:rerun-if-changed=web/{f}");
    }
    if VENDORED.iter().any(|(_, from)| !web.join(from).is_file()) {
        npm_ci(&web);
    }
    for (name, from) in VENDORED {
        copy(&web.join(from), &out.join(name));
    }
    for f in OWN {
        copy(&web.join(f), &out.join(f));
    }
    Ok(())
}

fn npm_ci(web: &Path) {
    let npm = std::env::var("NPM").unwrap_or_else(|_| "npm".into());
    let status = Command::new(&npm)
        .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
        .current_dir(web)
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => panic!(
            "the dashboard's browser libraries are missing and `{npm} ci` in {} failed ({other:?}); \
             install Node.js and npm, or run `npm ci` there yourself",
            web.display()
        ),
    }
}

fn copy(from: &Path, to: &Path) {
    if let Err(e) = std::fs::copy(from, to) {
        panic!("copying {} for the dashboard page: {e}", from.display());
    }
}
