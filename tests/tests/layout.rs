//! The core's shape, checked (issue 13): DynamoDB keys are built in `shared/src/store/`
//! only, and the imports inside `shared/` run one way — handlers → `ops` → `domain`,
//! `store`, `connectors` and the adapters — with no circle between files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Words that only a key layout uses: the key attributes and the org and app prefixes.
const KEY_WORDS: [&str; 5] = ["\"pk\"", "\"sk\"", "ORG#", "APP#", "keys::"];

#[test]
fn no_key_is_built_outside_the_store() {
    let root = root();
    let mut files = Vec::new();
    rust_files(&root.join("shared/src"), &mut files);
    for function in std::fs::read_dir(root.join("functions")).expect("functions/") {
        rust_files(
            &function.expect("a function").path().join("src"),
            &mut files,
        );
    }
    let store = root.join("shared/src/store");
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&store)) {
        let text = std::fs::read_to_string(file).expect("a source file");
        for (n, line) in text.lines().enumerate() {
            let words = line.split(|c: char| !(c.is_alphanumeric() || c == '_'));
            let field = words.clone().any(|w| w == "pk" || w == "sk");
            if field || KEY_WORDS.iter().any(|k| line.contains(k)) {
                let path = file.strip_prefix(&root).unwrap_or(file);
                found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(files.len() > 40, "the check read {} files", files.len());
    assert!(
        found.is_empty(),
        "keys belong in shared/src/store/ (keys.rs builds them):\n{}",
        found.join("\n")
    );
}

/// A module path (`["ops", "connect", "invite"]`) for a file under `shared/src`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under shared/src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The file that holds module `path`, or the closest enclosing one that exists.
fn file_of(src: &Path, path: &[String]) -> Option<PathBuf> {
    (1..=path.len()).rev().find_map(|n| {
        let dir = path[..n].iter().fold(src.to_path_buf(), |p, s| p.join(s));
        let as_file = dir.with_extension("rs");
        let as_dir = dir.join("mod.rs");
        [as_file, as_dir].into_iter().find(|p| p.is_file())
    })
}

/// Every `crate::…` and `super::…` reference of `text` (module `module`), as the
/// module path it names.
fn references(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("//") {
            continue;
        }
        for (prefix, base) in [
            ("crate::", Vec::new()),
            ("super::", module[..module.len().saturating_sub(1)].to_vec()),
        ] {
            let mut rest = line;
            while let Some(at) = rest.find(prefix) {
                let before = rest[..at].chars().last();
                rest = &rest[at + prefix.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let mut path = base.clone();
                path.extend(
                    rest.split("::")
                        .map(|s| {
                            s.chars()
                                .take_while(|c| c.is_alphanumeric() || *c == '_')
                                .collect::<String>()
                        })
                        .take_while(|s| {
                            !s.is_empty()
                                && s.chars()
                                    .all(|c| c.is_lowercase() || c == '_' || c.is_ascii_digit())
                        }),
                );
                out.push(path);
            }
        }
    }
    out
}

/// How far down a top-level module sits: a file may name its own or a lower layer.
fn layer(top: &str) -> Option<u8> {
    Some(match top {
        "error" | "aws" | "telemetry" => 0,
        "domain" => 1,
        "config" | "vault" | "store" | "connectors" | "queue" => 2,
        "deps" | "oauth_client" => 3,
        "ops" => 4,
        "http" => 5,
        "lib" | "" => 6,
        _ => return None,
    })
}

#[test]
fn the_core_imports_run_one_way_and_form_no_circle() {
    let src = root().join("shared/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut arrows: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    let mut wrong_way = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        let top = module.first().cloned().unwrap_or_default();
        let Some(own) = layer(&top) else {
            panic!(
                "{} is in no layer of this test: add it to `layer`",
                file.display()
            );
        };
        let text = std::fs::read_to_string(file).expect("a source file");
        // The tests module of a file may reach anything.
        let shipped = text.split("#[cfg(test)]").next().unwrap_or_default();
        for path in references(shipped, &module) {
            let Some(target) = file_of(&src, &path) else {
                continue;
            };
            if target == *file || target.ends_with("lib.rs") {
                continue;
            }
            let target_top = module_of(&src, &target)
                .first()
                .cloned()
                .unwrap_or_default();
            match layer(&target_top) {
                Some(l) if l > own => wrong_way.push(format!(
                    "{} → {}",
                    file.strip_prefix(&src).unwrap().display(),
                    target.strip_prefix(&src).unwrap().display()
                )),
                _ => {}
            }
            arrows.entry(file.clone()).or_default().insert(target);
        }
    }
    assert!(
        arrows.values().map(BTreeSet::len).sum::<usize>() > 40,
        "the check found the imports"
    );
    assert!(
        wrong_way.is_empty(),
        "imports that run up (http → ops → deps → adapters → domain → error):\n{}",
        wrong_way.join("\n")
    );
    // A circle: a file that reaches itself through the arrows.
    fn reaches(
        arrows: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        from: &PathBuf,
        goal: &PathBuf,
        seen: &mut BTreeSet<PathBuf>,
    ) -> bool {
        arrows.get(from).into_iter().flatten().any(|next| {
            next == goal || (seen.insert(next.clone()) && reaches(arrows, next, goal, seen))
        })
    }
    let circles: Vec<String> = arrows
        .keys()
        .filter(|f| reaches(&arrows, f, f, &mut BTreeSet::new()))
        .map(|f| f.strip_prefix(&src).unwrap().display().to_string())
        .collect();
    assert!(circles.is_empty(), "files in an import circle: {circles:?}");
}
