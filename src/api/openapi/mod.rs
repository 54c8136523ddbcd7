//! `GET /openapi.json` and `GET /docs`: the API describes itself.
//!
//! The operations are one table ([`operations::all`]): method, path template, the
//! router's endpoint name, and the Rust types of the body and the answer. Schemas come
//! from those types (`utoipa::ToSchema` derives on the wire structs), and each
//! operation's credential comes from the router (`Endpoint::auth()` of a sample path),
//! so the document follows the code. Tests check the table against the router both
//! ways (every documented path routes to its endpoint, every endpoint name is
//! documented).

mod docs_page;
mod errors;
pub mod operations;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::http::response::HttpResponse;
use crate::http::router::{self, AuthKind};
use operations::Op;

/// Schemas collected while the document is built, by component name.
#[derive(Default)]
pub struct Schemas(BTreeMap<String, Value>);

impl Schemas {
    /// A `$ref` to `T`, registering `T` and every schema it refers to.
    pub fn reff<T: ToSchema>(&mut self) -> Value {
        let mut nested = Vec::new();
        T::schemas(&mut nested);
        for (name, schema) in nested {
            self.0.insert(name, to_value(&schema));
        }
        let name = T::name().into_owned();
        self.0.insert(name.clone(), to_value(&T::schema()));
        json!({ "$ref": format!("#/components/schemas/{name}") })
    }
}

fn to_value(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).expect("a schema serialises")
}

/// A sample value for a path parameter: the router takes any segment, so one id does.
pub const SAMPLE_ID: &str = "0190a000-0000-7000-8000-000000000001";

/// The concrete path for a template, every `{param}` replaced by [`SAMPLE_ID`].
pub fn sample_path(template: &str) -> String {
    template
        .split('/')
        .map(|s| if s.starts_with('{') { SAMPLE_ID } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

fn path_params(template: &str) -> Vec<&str> {
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// The web UI's HTML pages (the `Ui` family of the router) are not part of the API
/// document; `tests.rs` checks that the operation table holds none of them.
const UI_NOT_DOCUMENTED: &str = "UI pages are not operations of the API document";

/// The credential of an operation, asked of the router.
fn auth_of(op: &Op) -> AuthKind {
    let method = http::Method::from_bytes(op.method.as_bytes()).expect("a method");
    router::route(&method, &sample_path(op.path))
        .unwrap_or_else(|e| panic!("{} {} does not route: {e:?}", op.method, op.path))
        .auth()
}

fn security(auth: AuthKind) -> Value {
    match auth {
        AuthKind::None => json!([]),
        AuthKind::Sdk => json!([{ "ApiKey": [] }, { "BearerToken": [], "EnvironmentId": [] }]),
        AuthKind::Internal | AuthKind::Flexible | AuthKind::Exchange => {
            json!([{ "BearerToken": [] }])
        }
        AuthKind::UiSession => unreachable!("{}", UI_NOT_DOCUMENTED),
    }
}

fn auth_note(auth: AuthKind) -> &'static str {
    match auth {
        AuthKind::None => "No credential.",
        AuthKind::Internal => "An internal token (from /auth/exchange); membership of the workspace in the path decides access.",
        AuthKind::Flexible => "An internal token, or the identity token (OIDC token or local session token).",
        AuthKind::Exchange => "The identity token only (OIDC token or local session token).",
        AuthKind::Sdk => "An API key (X-API-Key), or an internal token plus ?environment_id=.",
        AuthKind::UiSession => unreachable!("{}", UI_NOT_DOCUMENTED),
    }
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn operation(op: &Op, schemas: &mut Schemas) -> Value {
    let auth = auth_of(op);
    let v2 = op.path.starts_with("/api/v2");
    let mut params: Vec<Value> = path_params(op.path)
        .into_iter()
        .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    for (name, ty, doc) in op.query {
        params.push(json!({"name": name, "in": "query", "required": false,
            "description": doc, "schema": {"type": ty}}));
    }
    let mut responses = Map::new();
    let ok_schema = op.response.map(|shape| shape(schemas));
    let ok_content = match (ok_schema, op.content_type) {
        (Some(s), "application/json") => json_content(s),
        (Some(s), ct) => json!({ ct: { "schema": s } }),
        (None, _) => Value::Null,
    };
    let mut ok = json!({ "description": "Success" });
    if !ok_content.is_null() {
        ok["content"] = ok_content;
    }
    responses.insert(op.status.to_string(), ok);
    let detail = schemas.reff::<errors::Detail>();
    let refusal = schemas.reff::<errors::Refusal>();
    let validation = schemas.reff::<errors::ValidationError>();
    let mut err = |code: u16, what: &str, schema: &Value| {
        responses.insert(
            code.to_string(),
            json!({ "description": what, "content": json_content(schema.clone()) }),
        );
    };
    if auth != AuthKind::None {
        err(401, "Missing or invalid credential", &detail);
    }
    if v2 {
        err(
            400,
            "Refused (`detail.code` names the rule, v2-registry §8)",
            &refusal,
        );
        err(
            404,
            "Not found, or outside the caller's scope (D9)",
            &refusal,
        );
        err(
            409,
            "Refused by the current state (`detail.code`)",
            &refusal,
        );
    } else if !path_params(op.path).is_empty() {
        err(
            404,
            "Not found, or outside the caller's scope (D9)",
            &detail,
        );
    }
    if op.body.is_some() || !op.query.is_empty() || !path_params(op.path).is_empty() {
        err(422, "Validation failed (FastAPI list form)", &validation);
    }
    err(
        429,
        "Rate limited (`detail.code` is RATE_LIMIT; Retry-After header)",
        &refusal,
    );
    let mut out = json!({
        "operationId": op.operation_id(),
        "x-endpoint": op.name,
        "summary": op.summary,
        "description": auth_note(auth),
        "tags": [op.tag()],
        "security": security(auth),
        "responses": responses,
    });
    if !params.is_empty() {
        out["parameters"] = Value::Array(params);
    }
    if let Some(shape) = op.body {
        out["requestBody"] = json!({ "required": true, "content": json_content(shape(schemas)) });
    }
    out
}

/// The OpenAPI 3.1 document of every route.
pub fn document() -> Value {
    let mut schemas = Schemas::default();
    let mut paths = Map::new();
    for op in operations::all() {
        let item = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        item[op.method.to_ascii_lowercase()] = operation(&op, &mut schemas);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "stardag-server",
            "version": crate::VERSION,
            "description": "The Stardag registry API: /api/v1 (stardag==0.1.0) and /api/v2 (stardag==0.28.0), identity and workspace routes.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.0,
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                    "description": "An environment's API key (sk_…)."},
                "BearerToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "An internal token (from /auth/exchange), or on identity routes the OIDC or local session token."},
                "EnvironmentId": {"type": "apiKey", "in": "query", "name": "environment_id",
                    "description": "With an internal token on SDK routes: the environment to act in."},
            },
        },
    })
}

/// The document as served (built once).
fn document_bytes() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_vec(&document()).expect("the document serialises"))
}

pub fn openapi_json() -> HttpResponse {
    bytes_response(document_bytes(), "application/json")
}

pub fn docs() -> HttpResponse {
    static PAGE: OnceLock<Vec<u8>> = OnceLock::new();
    let page = PAGE.get_or_init(|| docs_page::render(&document()).into_bytes());
    bytes_response(page, "text/html; charset=utf-8")
}

fn bytes_response(body: &'static [u8], content_type: &'static str) -> HttpResponse {
    let mut resp = http::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(body)));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

#[cfg(test)]
mod tests;
