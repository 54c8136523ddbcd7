//! `GET /docs`: the document as one self-contained HTML page (no script, no CDN):
//! every operation with its credential, parameters, statuses and the JSON Schemas.

use serde_json::Value;

/// HTML-escapes text for element content and double-quoted attribute values.
fn esc(s: &str) -> String {
    maud::html! { (s) }.into_string()
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330}\
header{background:#1d2330;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}\
main{padding:8px 24px;max-width:1100px}h2{margin-top:28px;border-bottom:1px solid #ddd}\
details{border:1px solid #ddd;border-radius:6px;margin:6px 0;background:#fafbfc}\
summary{cursor:pointer;padding:6px 10px;font-family:ui-monospace,monospace}\
.m{display:inline-block;width:62px;font-weight:700}.GET{color:#1b7f3b}.POST{color:#1c5fb8}\
.PUT{color:#a56400}.PATCH{color:#7a3db8}.DELETE{color:#b3261e}\
.body{padding:4px 14px 10px}pre{background:#f1f3f6;padding:8px;overflow:auto;max-height:320px}\
code{font-family:ui-monospace,monospace}.s{color:#555}";

/// Renders the page from the document.
pub fn render(doc: &Value) -> String {
    let mut html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>stardag-server API</title><style>{STYLE}</style></head><body>\
         <header><h1>stardag-server API {}</h1><div>OpenAPI {} · \
         <a style=\"color:#9cf\" href=\"/openapi.json\">/openapi.json</a></div></header><main>",
        esc(doc["info"]["version"].as_str().unwrap_or("")),
        esc(doc["openapi"].as_str().unwrap_or("")),
    );
    let mut by_tag: std::collections::BTreeMap<String, Vec<(String, String, &Value)>> =
        Default::default();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                let tag = op["tags"][0].as_str().unwrap_or("other").to_string();
                by_tag
                    .entry(tag)
                    .or_default()
                    .push((method.to_uppercase(), path.clone(), op));
            }
        }
    }
    for (tag, ops) in &by_tag {
        html.push_str(&format!("<h2>{}</h2>", esc(tag)));
        for (method, path, op) in ops {
            html.push_str(&operation(method, path, op));
        }
    }
    html.push_str("<h2>Schemas</h2>");
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        html.push_str(&format!(
            "<details id=\"schema-{n}\"><summary>{n}</summary><div class=\"body\"><pre>{}</pre></div></details>",
            esc(&pretty(schema)),
            n = esc(name)
        ));
    }
    html.push_str("</main></body></html>");
    html
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn operation(method: &str, path: &str, op: &Value) -> String {
    let mut body = format!(
        "<p>{}</p><p class=\"s\">{}</p>",
        esc(op["summary"].as_str().unwrap_or("")),
        esc(op["description"].as_str().unwrap_or(""))
    );
    if let Some(params) = op["parameters"].as_array() {
        body.push_str("<p><b>Parameters</b></p><ul>");
        for p in params {
            body.push_str(&format!(
                "<li><code>{}</code> ({}) {}</li>",
                esc(p["name"].as_str().unwrap_or("")),
                esc(p["in"].as_str().unwrap_or("")),
                esc(p["description"].as_str().unwrap_or(""))
            ));
        }
        body.push_str("</ul>");
    }
    if let Some(schema) = op["requestBody"]["content"]["application/json"].get("schema") {
        body.push_str(&format!(
            "<p><b>Request body</b></p><pre>{}</pre>",
            esc(&pretty(schema))
        ));
    }
    body.push_str("<p><b>Responses</b></p><ul>");
    for (code, resp) in op["responses"].as_object().into_iter().flatten() {
        let schema = resp["content"]
            .as_object()
            .and_then(|c| c.values().next())
            .map(|c| pretty(&c["schema"]))
            .unwrap_or_default();
        body.push_str(&format!(
            "<li><code>{}</code> {} <code>{}</code></li>",
            esc(code),
            esc(resp["description"].as_str().unwrap_or("")),
            esc(&schema)
        ));
    }
    body.push_str("</ul>");
    format!(
        "<details><summary><span class=\"m {m}\">{m}</span> {p}</summary><div class=\"body\">{body}</div></details>",
        m = esc(method),
        p = esc(path)
    )
}
