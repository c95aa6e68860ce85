//! The route table the whole-class tests walk: template.yaml's HttpApi routes
//! (`TemplateRoutes`) and `openapi.json`'s operations, as one list, so a route added
//! to either is walked without anyone remembering to add it to a test.

#![allow(dead_code)]

use std::collections::BTreeSet;

use seatscope_local::stack::Stack;

/// One route: `method` upper-case, `path` with `{name}` parameters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteSpec {
    pub method: String,
    pub path: String,
    /// Behind the JWT authorizer (from the template; openapi-only routes count as
    /// authorized when under /api/).
    pub authorized: bool,
}

impl RouteSpec {
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The `{name}` path parameters, in order.
    pub fn params(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect()
    }

    /// Whether the route carries a request body a client would send.
    pub fn takes_body(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH")
    }
}

/// `METHOD /path` of every operation in the dashboard API's openapi.json.
pub fn openapi_routes() -> BTreeSet<String> {
    let doc: serde_json::Value =
        serde_json::from_str(dashboard_api::OPENAPI_JSON).expect("openapi.json parses");
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("openapi.json has paths") {
        for method in ops.as_object().expect("a path item is an object").keys() {
            if matches!(
                method.as_str(),
                "get" | "put" | "post" | "delete" | "patch" | "head" | "options"
            ) {
                out.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    out
}

/// The union of the template's routes and openapi.json's operations. Fails (panics)
/// if either lists an /api route the other does not.
pub fn route_table(stack: &Stack) -> Vec<RouteSpec> {
    let template: BTreeSet<String> = stack.routes.routes.iter().map(|r| r.key()).collect();
    let openapi = openapi_routes();
    // A greedy catch-all (`ANY /api/{proxy+}`: API Gateway's answer for a path no
    // operation has) is not an operation of the API: walked, not documented.
    let api = |k: &&String| {
        k.split(' ')
            .nth(1)
            .is_some_and(|p| p.starts_with("/api/") && !p.contains("+}"))
    };
    let only_template: Vec<&String> = template.difference(&openapi).filter(api).collect();
    let only_openapi: Vec<&String> = openapi.difference(&template).filter(api).collect();
    assert!(
        only_template.is_empty() && only_openapi.is_empty(),
        "template.yaml and openapi.json disagree on the /api routes: only in the template \
         {only_template:?}, only in openapi.json {only_openapi:?}"
    );
    // `ANY` is walked as each method a client sends.
    let mut routes: Vec<RouteSpec> = stack
        .routes
        .routes
        .iter()
        .flat_map(|r| {
            let methods: Vec<String> = if r.method == "ANY" {
                ["GET", "POST", "PUT", "PATCH", "DELETE"]
                    .map(String::from)
                    .to_vec()
            } else {
                vec![r.method.clone()]
            };
            methods.into_iter().map(|method| RouteSpec {
                method,
                path: r.path.clone(),
                authorized: r.authorized,
            })
        })
        .collect();
    for key in openapi.difference(&template) {
        let (method, path) = key.split_once(' ').expect("METHOD /path");
        routes.push(RouteSpec {
            method: method.to_string(),
            path: path.to_string(),
            authorized: path.starts_with("/api/"),
        });
    }
    routes.sort();
    routes.dedup();
    routes
}

/// Replaces each `{name}` of `path` with `value(name)`.
pub fn fill(path: &str, value: impl Fn(&str) -> String) -> String {
    path.split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => value(name),
                None => seg.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// Every combination of the candidate values of each of the route's parameters.
pub fn fill_all(route: &RouteSpec, candidates: impl Fn(&str) -> Vec<String>) -> Vec<String> {
    let mut paths = vec![route.path.clone()];
    for name in route.params() {
        let needle = format!("{{{name}}}");
        let values = candidates(&name);
        paths = paths
            .iter()
            .flat_map(|p| values.iter().map(|v| p.replacen(&needle, v, 1)))
            .collect();
    }
    paths
}
