//! The HTML shell every page shares, escaping, URLs, and small formatting helpers.
//!
//! Subjects, slugs, claim text, run ids and messages come from signed but untrusted
//! producers: every such string reaches the page through [`esc`] (text and attribute values
//! alike, attributes always double-quoted) or, inside URLs, through [`enc`] / [`enc_path`]
//! first.

use std::fmt::Write;

use assay_projections::audit::Verdict;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The pages of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Home,
    Artifacts,
    Queue,
    Gpus,
    Kernels,
    Events,
    /// A page outside the bar (a run, an error).
    None,
}

const NAV: &[(Nav, &str, &str)] = &[
    (Nav::Home, "/", "Overview"),
    (Nav::Artifacts, "/artifacts", "Artifacts"),
    (Nav::Queue, "/queue", "Queue"),
    (Nav::Gpus, "/gpus", "GPUs"),
    (Nav::Kernels, "/kernels", "Kernels"),
    (Nav::Events, "/events", "Events"),
];

/// Escapes text for HTML text and double- or single-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Everything but RFC 3986 unreserved characters (ASCII letters, digits, `-._~`).
pub const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// [`NOT_UNRESERVED`] but `/`.
const NOT_UNRESERVED_OR_SLASH: &AsciiSet = &NOT_UNRESERVED.remove(b'/');

/// Percent-encodes everything but RFC 3986 unreserved characters (a query value, a segment).
pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

/// Like [`enc`] but keeps `/` (slugs and run ids may hold slashes; the routes take the rest
/// of the path).
pub fn enc_path(s: &str) -> String {
    utf8_percent_encode(s, NOT_UNRESERVED_OR_SLASH).to_string()
}

/// `?k=v&…` of the pairs whose value is not empty (`""` when none is).
pub fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> =
        pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

/// The link to an artifact's page.
pub fn artifact_href(slug: &str) -> String {
    format!("/artifacts/{}", enc_path(slug))
}

/// The link to a run's page.
pub fn run_href(run: &str) -> String {
    format!("/runs/{}", enc_path(run))
}

/// The link to an event's page.
pub fn event_href(digest: &str) -> String {
    format!("/events/{}", enc(digest))
}

/// `<a href="…">text</a>`, both escaped.
pub fn link(href: &str, text: &str) -> String {
    format!(r#"<a href="{}">{}</a>"#, esc(href), esc(text))
}

/// A digest shortened for tables, linked to its event; the full digest in the title.
pub fn digest_link(digest: &str) -> String {
    let short: String = digest.chars().take(12).collect();
    format!(
        r#"<a class="mono" href="{}" title="{}">{}…</a>"#,
        esc(&event_href(digest)),
        esc(digest),
        esc(&short)
    )
}

/// A verdict as a coloured badge that also says its name (colour is never the only cue).
pub fn verdict_badge(v: Verdict) -> String {
    let (mark, name) = match v {
        Verdict::Supported => ("✓", "supported"),
        Verdict::Contradicted => ("✗", "contradicted"),
        Verdict::Unsupported => ("?", "unsupported"),
        Verdict::Tainted => ("!", "tainted"),
    };
    format!(r#"<span class="badge v-{name}"><span aria-hidden="true">{mark}</span> {name}</span>"#)
}

/// PASS or FAIL, badged.
pub fn pass_badge(passes: bool) -> String {
    if passes {
        r#"<span class="badge pass"><span aria-hidden="true">✓</span> PASS</span>"#.to_owned()
    } else {
        r#"<span class="badge fail"><span aria-hidden="true">✗</span> FAIL</span>"#.to_owned()
    }
}

/// A time in nanoseconds as `YYYY-MM-DD HH:MM:SSZ`.
pub fn time_ns(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// An RFC 3339 time as [`time_ns`] shows it (verbatim if it does not parse).
pub fn time_text(rfc3339: &str) -> String {
    parse_time_ns(rfc3339).map_or_else(|| rfc3339.to_owned(), time_ns)
}

/// An RFC 3339 time in Unix nanoseconds.
pub fn parse_time_ns(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?.timestamp_nanos_opt()
}

/// Bytes in binary units.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// A number for people: at most four decimals, no trailing zeros, exponent when huge or tiny.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e9).contains(&a) {
        return format!("{v:.3e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".to_owned() } else { s.to_owned() }
}

/// How a run ended: its exit code, else the signal that killed it, else a dash.
pub fn exit_text(exit_code: Option<i64>, signal: Option<i64>) -> String {
    match (exit_code, signal) {
        (Some(c), _) => c.to_string(),
        (None, Some(s)) => format!("signal {s}"),
        _ => "—".to_owned(),
    }
}

/// An optional value, or an em dash.
pub fn or_dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "—".to_owned())
}

/// Previous/next links for page `page` (1-based) of `pages`, keeping the other parameters.
pub fn pager(path: &str, params: &[(&str, &str)], page: u64, pages: u64) -> String {
    if pages <= 1 {
        return String::new();
    }
    let href = |p: u64| {
        let p = p.to_string();
        let mut all: Vec<(&str, &str)> = params.to_vec();
        all.push(("page", &p));
        format!("{path}{}", query(&all))
    };
    let mut out = String::from(r#"<nav class="pager" aria-label="pages">"#);
    if page > 1 {
        let _ = write!(out, r#"<a rel="prev" href="{}">← previous</a>"#, esc(&href(page - 1)));
    }
    let _ = write!(out, "<span>page {page} of {pages}</span>");
    if page < pages {
        let _ = write!(out, r#"<a rel="next" href="{}">next →</a>"#, esc(&href(page + 1)));
    }
    out.push_str("</nav>");
    out
}

/// The whole document: head, navigation bar (with a sign-out button when the sign-in cookie
/// authorized the page), `body` (already escaped markup).
pub fn document(title: &str, active: Nav, body: &str) -> String {
    let mut nav = String::new();
    for (which, href, name) in NAV {
        let current = if *which == active { r#" aria-current="page""# } else { "" };
        let _ = write!(nav, r#"<li><a href="{href}"{current}>{name}</a></li>"#);
    }
    // Only a page that the sign-in cookie authorized offers to sign out.
    let sign_out = if super::login::signed_in() { super::login::SIGN_OUT_FORM } else { "" };
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Assay</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/app.css">
<script src="/assets/live.js" defer></script>
</head>
<body>
<header class="top"><a class="brand" href="/">Assay</a><nav aria-label="main"><ul>{nav}</ul></nav>{sign_out}</header>
<main>
{body}
</main>
<footer>Read-only views of the ledger; the same data as <a href="/v1/openapi.json">/v1</a>.</footer>
</body>
</html>
"#,
        title = esc(title),
    )
}

/// A `<table>` head row from column names.
pub fn thead(columns: &[&str]) -> String {
    let mut out = String::from("<thead><tr>");
    for c in columns {
        let _ = write!(out, r#"<th scope="col">{}</th>"#, esc(c));
    }
    out.push_str("</tr></thead>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>"x"&'y'</script>"#),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn encodes_urls() {
        assert_eq!(enc("a/b c&d"), "a%2Fb%20c%26d");
        assert_eq!(enc_path("a/b c"), "a/b%20c");
        assert_eq!(query(&[("q", "x y"), ("verdict", "")]), "?q=x%20y");
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(1e-9), "1.000e-9");
        assert_eq!(bytes(2048), "2.0 KiB");
    }
}
