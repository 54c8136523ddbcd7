//! Markdown assets rendered safely (ui.md P6): raw HTML in the source becomes escaped
//! text, links keep only safe schemes and get `rel="noopener nofollow"`, and images
//! show only when they are `data:` or same-origin (never a request off the origin).

use pulldown_cmark::{html, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Link targets allowed through: web, mail, same-origin paths and fragments.
fn safe_link(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("mailto:")
        || lower.starts_with('#')
        || (lower.starts_with('/') && !lower.starts_with("//"))
}

/// Image sources allowed: inline data, or a same-origin path.
fn safe_image(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("data:image/") || (lower.starts_with('/') && !lower.starts_with("//"))
}

/// Escapes a double-quoted attribute value (maud's escaper: `&`, `<`, `>`, `"`).
fn escape_attr(s: &str) -> String {
    maud::html! { (s) }.into_string()
}

/// An asset's headings sit two levels down (`#` → `<h3>`), under the page's `<h1>` and
/// its "Assets" `<h2>`: a page has one `<h1>`, and the outline stays in order.
fn demote(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H3,
        HeadingLevel::H2 => HeadingLevel::H4,
        HeadingLevel::H3 => HeadingLevel::H5,
        _ => HeadingLevel::H6,
    }
}

/// Markdown (GFM tables, strikethrough, task lists) to HTML that runs nothing.
pub fn to_html(source: &str) -> String {
    let opts = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut in_image = false;
    let events = Parser::new_ext(source, opts).map(move |ev| match ev {
        // Raw HTML is shown as text, never interpreted.
        Event::Html(s) | Event::InlineHtml(s) => Event::Text(s),
        Event::Start(Tag::Link { dest_url, .. }) => {
            let href = if safe_link(&dest_url) {
                dest_url.to_string()
            } else {
                "#".to_owned()
            };
            Event::InlineHtml(CowStr::from(format!(
                "<a href=\"{}\" rel=\"noopener nofollow\">",
                escape_attr(&href)
            )))
        }
        Event::End(TagEnd::Link) => Event::InlineHtml(CowStr::from("</a>")),
        Event::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs,
        }) => Event::Start(Tag::Heading {
            level: demote(level),
            id,
            classes,
            attrs,
        }),
        Event::End(TagEnd::Heading(level)) => Event::End(TagEnd::Heading(demote(level))),
        Event::Start(Tag::Image { dest_url, .. }) if !safe_image(&dest_url) => {
            // The alt text follows as text events; the image itself is dropped.
            in_image = true;
            Event::Text(CowStr::from("[image: "))
        }
        Event::End(TagEnd::Image) if in_image => {
            in_image = false;
            Event::Text(CowStr::from("]"))
        }
        other => other,
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_and_script_urls_are_inert() {
        let out = to_html(
            "<script>alert(1)</script>\n\n[x](javascript:alert(1)) <img src=x onerror=alert(1)>",
        );
        assert!(!out.contains("<script"), "{out}");
        assert!(!out.contains("<img"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
        assert!(out.contains("href=\"#\""), "{out}");
        assert!(!out.contains("javascript:"), "{out}");
    }

    #[test]
    fn tables_code_and_safe_links_render() {
        let out = to_html(
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode\n```\n\n[site](https://example.org)",
        );
        assert!(
            out.contains("<table>") && out.contains("<pre><code>"),
            "{out}"
        );
        assert!(
            out.contains("<a href=\"https://example.org\" rel=\"noopener nofollow\">site</a>"),
            "{out}"
        );
    }

    #[test]
    fn headings_sit_below_the_page_outline() {
        let out = to_html("# Report\n\n## Part\n\n#### Deep\n\n###### Deepest");
        assert!(
            out.contains("<h3>Report</h3>") && out.contains("<h4>Part</h4>"),
            "{out}"
        );
        assert!(
            out.contains("<h6>Deep</h6>") && out.contains("<h6>Deepest</h6>"),
            "{out}"
        );
        assert!(!out.contains("<h1") && !out.contains("<h2"), "{out}");
    }

    #[test]
    fn off_origin_images_are_not_loaded() {
        let out = to_html("![chart](https://evil.example/x.png) ![ok](data:image/png;base64,AAAA)");
        assert!(!out.contains("evil.example/x.png\""), "{out}");
        assert!(out.contains("[image: chart]"), "{out}");
        assert!(
            out.contains("<img src=\"data:image/png;base64,AAAA\""),
            "{out}"
        );
    }
}
