//! The HTML shell every page shares, URLs, badges, and small formatting helpers.
//!
//! Markup is written with `maud`'s `html!`: every interpolated value — subjects, slugs,
//! claim text, run ids and messages from signed but untrusted producers, and URLs — is
//! escaped by construction (attributes are always double-quoted). Values inside URLs are
//! percent-encoded first ([`enc`], [`enc_path`], [`query`]), then escaped like any other.
//! Nothing here writes markup by string formatting, so no page can forget an escape.

use std::time::Duration;

use assay_projections::audit::Verdict;
use maud::{DOCTYPE, Markup, html};
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

/// The link to a claim's row on its artifact's page (the row's id is `claim-<claim>`).
pub fn claim_href(artifact: &str, claim: &str) -> String {
    format!("{}#claim-{}", artifact_href(artifact), enc(claim))
}

/// The link to a run's page.
pub fn run_href(run: &str) -> String {
    format!("/runs/{}", enc_path(run))
}

/// The link to an event's page.
pub fn event_href(digest: &str) -> String {
    format!("/events/{}", enc(digest))
}

/// `<a href="…">text</a>`.
pub fn link(href: &str, text: &str) -> Markup {
    html! { a href=(href) { (text) } }
}

/// A digest shortened for tables, linked to its event; the full digest in the title.
pub fn digest_link(digest: &str) -> Markup {
    let short: String = digest.chars().take(12).collect();
    html! { a.mono href=(event_href(digest)) title=(digest) { (short) "…" } }
}

/// A verdict as a coloured badge that also says its name (colour is never the only cue).
pub fn verdict_badge(v: Verdict) -> Markup {
    let (mark, name) = match v {
        Verdict::Supported => ("✓", "supported"),
        Verdict::Contradicted => ("✗", "contradicted"),
        Verdict::Unsupported => ("?", "unsupported"),
        Verdict::Tainted => ("!", "tainted"),
    };
    html! { span.badge.{ "v-" (name) } { span aria-hidden="true" { (mark) } " " (name) } }
}

/// A badge with a mark and a word, in the colour of `class` (`pass` or `fail`).
pub fn badge(class: &str, mark: &str, word: &str) -> Markup {
    html! { span.badge.(class) { span aria-hidden="true" { (mark) } " " (word) } }
}

/// `1 GPU needs a reset`, `2 GPUs need a reset`.
pub fn gpus_need_reset(n: usize) -> String {
    if n == 1 { "1 GPU needs a reset".to_owned() } else { format!("{n} GPUs need a reset") }
}

/// A badge of one word, in the colour of `class` (`pass` or `fail`).
pub fn badge_word(class: &str, word: &str) -> Markup {
    html! { span.badge.(class) { (word) } }
}

/// PASS or FAIL, badged.
pub fn pass_badge(passes: bool) -> Markup {
    if passes { badge("pass", "✓", "PASS") } else { badge("fail", "✗", "FAIL") }
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

/// A duration for people, the one duration format of every page: `850 µs`, `12.5 ms`,
/// `4.2 s`, `3 min 12 s`, `25 h 29 min`, `3 d 4 h` (the two largest units, rounded at the
/// smaller; days from 48 h on).
pub fn duration(d: Duration) -> String {
    /// `v` with one decimal, but none when it is `.0`.
    fn one_decimal(v: f64) -> String {
        let s = format!("{v:.1}");
        s.strip_suffix(".0").map_or_else(|| s.clone(), str::to_owned)
    }
    /// `a unit_a b unit_b`, or `a unit_a` when b is 0.
    fn two(a: u128, unit_a: &str, b: u128, unit_b: &str) -> String {
        if b == 0 { format!("{a} {unit_a}") } else { format!("{a} {unit_a} {b} {unit_b}") }
    }
    let ns = d.as_nanos();
    let rounded = |unit_ns: u128| (ns + unit_ns / 2) / unit_ns;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 999_950 {
        format!("{} µs", one_decimal(ns as f64 / 1e3))
    } else if ns < 999_950_000 {
        format!("{} ms", one_decimal(ns as f64 / 1e6))
    } else if ns < 59_950_000_000 {
        format!("{} s", one_decimal(ns as f64 / 1e9))
    } else if rounded(1_000_000_000) < 3_600 {
        let s = rounded(1_000_000_000);
        two(s / 60, "min", s % 60, "s")
    } else if rounded(60_000_000_000) < 48 * 60 {
        let m = rounded(60_000_000_000);
        two(m / 60, "h", m % 60, "min")
    } else {
        let h = rounded(3_600_000_000_000);
        two(h / 24, "d", h % 24, "h")
    }
}

/// [`duration`] of a count of milliseconds.
pub fn duration_ms(ms: u64) -> String {
    duration(Duration::from_millis(ms))
}

/// A reason code in words with the code beside it (`assay_projections::reasons`); the code
/// alone when it has no sentence. Details come from producers: both are escaped as text.
pub fn reason(code: &str) -> Markup {
    html! {
        span.reason {
            @if let Some(words) = assay_projections::reasons::explain(code) {
                span.why { (words) } " "
            }
            code { (code) }
        }
    }
}

/// Reasons in words, one per line; `none` when there are none.
pub fn reasons<'a>(codes: impl IntoIterator<Item = &'a String>, none: &str) -> Markup {
    lines(codes.into_iter().map(|c| reason(c)), none)
}

/// Markup, one per line (`<br>` between); `none` when there is none.
pub fn lines(items: impl IntoIterator<Item = Markup>, none: &str) -> Markup {
    joined(items, html! { br; }, none)
}

/// Markup with `separator` between; `none` when there is none.
pub fn joined(items: impl IntoIterator<Item = Markup>, separator: Markup, none: &str) -> Markup {
    let items: Vec<Markup> = items.into_iter().collect();
    html! {
        @if items.is_empty() { (none) }
        @for (i, item) in items.iter().enumerate() {
            @if i > 0 { (separator) }
            (item)
        }
    }
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
pub fn pager(path: &str, params: &[(&str, &str)], page: u64, pages: u64) -> Markup {
    let href = |p: u64| {
        let p = p.to_string();
        let mut all: Vec<(&str, &str)> = params.to_vec();
        all.push(("page", &p));
        format!("{path}{}", query(&all))
    };
    html! {
        @if pages > 1 {
            nav.pager aria-label="pages" {
                @if page > 1 { a rel="prev" href=(href(page - 1)) { "← previous" } }
                span { "page " (page) " of " (pages) }
                @if page < pages { a rel="next" href=(href(page + 1)) { "next →" } }
            }
        }
    }
}

/// The sign-out button of the navigation bar (and of the sign-in page).
pub fn sign_out_form() -> Markup {
    html! {
        form.signout method="post" action="/logout" { button type="submit" { "Sign out" } }
    }
}

/// The whole document: head, navigation bar, `body`. `signed_in`: the sign-in cookie
/// authorized this page, so the bar offers to sign out (a page authorized otherwise, by a
/// bearer token or open reads, has nothing to sign out of).
pub fn document(title: &str, active: Nav, signed_in: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Assay" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/live.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "Assay" }
                    nav aria-label="main" {
                        ul {
                            @for (which, href, name) in NAV {
                                @let current = (*which == active).then_some("page");
                                li { a href=(href) aria-current=[current] { (name) } }
                            }
                        }
                    }
                    @if signed_in { (sign_out_form()) }
                }
                main { (body) }
                footer {
                    "Read-only views of the ledger; the same data as "
                    a href="/v1/openapi.json" { "/v1" } "."
                }
            }
        }
    }
}

/// A `<table>` head row from column names.
pub fn thead(columns: &[&str]) -> Markup {
    html! {
        thead { tr { @for c in columns { th scope="col" { (c) } } } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_escape_their_text_and_href() {
        assert_eq!(
            link(r#"/x?a=1&b="2""#, "<script>'y'</script>").into_string(),
            r#"<a href="/x?a=1&amp;b=&quot;2&quot;">&lt;script&gt;'y'&lt;/script&gt;</a>"#
        );
    }

    #[test]
    fn the_bar_offers_to_sign_out_only_when_signed_in() {
        let page = |signed_in| document("<t>", Nav::Home, signed_in, html! { p { "x" } }).into_string();
        assert!(page(true).contains(r#"<form class="signout" method="post" action="/logout">"#));
        assert!(!page(false).contains("/logout"));
        assert!(page(false).contains("<title>&lt;t&gt; · Assay</title>"));
        assert!(page(false).contains(r#"<a href="/" aria-current="page">Overview</a>"#));
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

    #[test]
    fn formats_durations_in_the_two_largest_units() {
        let ms = |n: u64| duration(Duration::from_millis(n));
        assert_eq!(duration_ms(91_734_000), "25 h 29 min", "1528.9 min");
        assert_eq!(duration(Duration::from_nanos(850)), "850 ns");
        assert_eq!(duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(duration(Duration::from_micros(12_500)), "12.5 ms");
        assert_eq!(ms(4_200), "4.2 s");
        assert_eq!(ms(4_000), "4 s");
        assert_eq!(ms(59_990), "1 min", "rounding up moves to the next unit");
        assert_eq!(ms(192_000), "3 min 12 s");
        assert_eq!(ms(3_599_700), "1 h");
        assert_eq!(ms(7_200_000), "2 h");
        assert_eq!(ms(48 * 3_600_000), "2 d");
        assert_eq!(ms(76 * 3_600_000 + 1_000), "3 d 4 h");
        assert_eq!(ms(0), "0 ns");
    }

    #[test]
    fn reasons_read_in_words_with_their_code_escaped() {
        let html = reason("run_not_finished:<b>r</b>").into_string();
        assert!(html.contains("Run &lt;b&gt;r&lt;/b&gt; has not finished."), "{html}");
        assert!(html.contains("<code>run_not_finished:&lt;b&gt;r&lt;/b&gt;</code>"), "{html}");
        assert_eq!(reason("what<").into_string(), r#"<span class="reason"><code>what&lt;</code></span>"#);
    }
}
