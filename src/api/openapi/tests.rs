//! The document against the router, both ways.

use std::collections::BTreeSet;

use http::Method;

use super::operations::all;
use super::{document, sample_path};
use crate::http::router;

/// Every documented path and method routes to the endpoint the row names, and none
/// is a web UI page.
#[test]
fn every_documented_operation_routes_to_its_endpoint() {
    for op in all() {
        assert!(!op.name.starts_with("ui_"), "{} is a UI page", op.path);
        let method = Method::from_bytes(op.method.as_bytes()).unwrap();
        let path = sample_path(op.path);
        match router::route(&method, &path) {
            Ok(endpoint) => assert_eq!(
                endpoint.name(),
                op.name,
                "{} {} routes to {}",
                op.method,
                op.path,
                endpoint.name()
            ),
            Err(e) => panic!(
                "{} {} is documented but not routed: {e:?}",
                op.method, op.path
            ),
        }
    }
}

/// The endpoint names of the router's `name()` functions: they are exhaustive
/// matches, so a new endpoint cannot be added without a name listed here. The web UI's
/// HTML pages (`ui_*`) are left out: they are not API operations.
fn routed_names() -> BTreeSet<String> {
    let src = include_str!("../../http/router.rs");
    let mut names = BTreeSet::new();
    for line in src.lines() {
        let Some((_, rhs)) = line.split_once("=> \"") else {
            continue;
        };
        let Some(name) = rhs.strip_suffix("\",") else {
            continue;
        };
        if !name.starts_with("ui_")
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            names.insert(name.to_string());
        }
    }
    names
}

/// Every endpoint of the router is in the document (as `x-endpoint`).
#[test]
fn every_routed_endpoint_is_documented() {
    let doc = document();
    let mut documented = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            documented.insert(op["x-endpoint"].as_str().unwrap().to_string());
        }
    }
    let routed = routed_names();
    assert!(routed.len() > 100, "name extraction found {}", routed.len());
    let missing: Vec<_> = routed.difference(&documented).collect();
    assert!(missing.is_empty(), "routed but not documented: {missing:?}");
    let unknown: Vec<_> = documented.difference(&routed).collect();
    assert!(
        unknown.is_empty(),
        "documented but no such endpoint: {unknown:?}"
    );
}

/// Both mounts of a mirrored route are documented (D6, the auth router at `/api/v1`).
#[test]
fn mirrors_are_documented() {
    let doc = document();
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/workspaces/{workspace_id}/environments/{environment_id}/api-keys",
        "/api/v1/ui/workspaces/{workspace_id}/environments/{environment_id}/api-keys",
        "/auth/exchange",
        "/api/v1/auth/exchange",
    ] {
        assert!(paths.contains_key(p), "{p}");
    }
    let ids: Vec<_> = paths
        .values()
        .flat_map(|i| i.as_object().unwrap().values())
        .map(|o| o["operationId"].as_str().unwrap().to_string())
        .collect();
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "operationIds are unique");
}

/// Every `$ref` points at a schema the document holds.
#[test]
fn every_reference_resolves() {
    let doc = document();
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }
}
