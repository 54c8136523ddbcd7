//! The shapes list pages share (builds list, task explorer): the page number from the
//! query, URLs whose query string is the page's whole state (defaults left out, so
//! links stay short and shareable), and the pager.

use maud::{html, Markup};

use super::layout::url_encode;
use super::response::UiReq;

/// Pages beyond this are this one (no arithmetic overflow from a hand-made URL).
pub const MAX_PAGE: usize = 1_000_000;

/// `?page=` (1-based); anything unreadable is page 1.
pub fn page_no(rq: &UiReq) -> usize {
    rq.query
        .get("page")
        .and_then(|p| p.trim().parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1)
        .min(MAX_PAGE)
}

/// A trimmed query value; absent and blank are `""`.
pub fn param(rq: &UiReq, key: &str) -> String {
    rq.query.get(key).unwrap_or("").trim().to_owned()
}

/// `path?k=v&…` of the non-empty values, in the order given; page 1 is left out.
pub fn url(path: &str, pairs: &[(&str, &str)], page: usize) -> String {
    let mut q: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect();
    if page > 1 {
        q.push(format!("page={page}"));
    }
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

/// "← prev · label · next →" when there is somewhere to go.
pub fn pager(prev: Option<(String, &str)>, label: Markup, next: Option<(String, &str)>) -> Markup {
    if prev.is_none() && next.is_none() {
        return html! {};
    }
    html! {
        nav.pager aria-label="Pages" {
            @if let Some((href, text)) = prev { a rel="prev" href=(href) { (text) } }
            span { (label) }
            @if let Some((href, text)) = next { a rel="next" href=(href) { (text) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::url;

    #[test]
    fn urls_leave_out_defaults_and_encode_values() {
        assert_eq!(url("/b", &[("status", ""), ("q", "")], 1), "/b");
        assert_eq!(
            url("/b", &[("status", "failed"), ("q", "a b&c")], 3),
            "/b?status=failed&q=a%20b%26c&page=3"
        );
    }
}
