//! The shell every HTML report shares: one self-contained document (inline stylesheet with
//! print rules; no script, no external asset, so a saved report renders offline and Chromium
//! prints it to PDF as shown).

use maud::{DOCTYPE, Markup, PreEscaped, html};

/// The stylesheet, inlined into every report.
const CSS: &str = include_str!("report.css");

/// The whole document: `title` in `<title>`, `body` inside `<main>`.
pub fn document(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No favicon request either: a saved report asks nothing of any server.
                link rel="icon" href="data:,";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body { main { (body) } }
        }
    }
    .into_string()
}
