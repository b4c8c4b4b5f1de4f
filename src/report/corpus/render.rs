//! The corpus report as a self-contained HTML page (with an SVG chart of the trend) and as
//! Markdown: the same sections, numbers and sentences in both.

use maud::{Markup, html};

use super::{CorpusReport, Failing};
use crate::report::{Format, page};
use crate::web::svg::{Axis, Scale, Series, line_chart};

const TITLE: &str = "Claim/evidence audit of the corpus";

impl CorpusReport {
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Html => self.html(),
            Format::Md => self.markdown(),
        }
    }

    fn sampled(&self) -> String {
        format!(
            "The headline at {} of the ledger's {} signed checkpoints ({}), the latest included.",
            self.trend.len(),
            self.checkpoints,
            if self.trend.len() as u64 == self.checkpoints { "every one" } else { "evenly sampled" }
        )
    }

    fn failing_lead(&self) -> String {
        format!(
            "{} of {} canonical artifacts fail; each is listed under every reason it fails for.",
            self.failing, self.canonical
        )
    }

    pub fn html(&self) -> String {
        let passing: Vec<(f64, f64)> = self.trend.iter().map(|t| (t.size as f64, t.passing as f64)).collect();
        let canonical: Vec<(f64, f64)> =
            self.trend.iter().map(|t| (t.size as f64, t.canonical as f64)).collect();
        let chart = line_chart(
            "The headline over the ledger's history",
            &[Series { name: "passing", points: &passing }, Series { name: "canonical", points: &canonical }],
            &Axis { label: "checkpoint size (records)", scale: Scale::Number },
            &Axis { label: "artifacts", scale: Scale::Number },
        );
        let body = html! {
            h1 { (TITLE) }
            p.lead #headline data-passing=(self.passing) data-canonical=(self.canonical) { (self.headline) "." }
            p.note { "Built at the signed checkpoint of tree size " (self.size) ":" }
            pre.proof { (self.checkpoint) }
            h2 { "Trend" }
            figure {
                (chart)
                figcaption { (self.sampled()) }
            }
            table #trend {
                thead { tr { th.num { "Checkpoint size" } th.num { "Passing" } th.num { "Canonical" } } }
                tbody {
                    @for t in &self.trend {
                        tr data-size=(t.size) {
                            td.num { (t.size) } td.num { (t.passing) } td.num { (t.canonical) }
                        }
                    }
                }
            }
            h2 { "Failing artifacts, by reason" }
            p { (self.failing_lead()) }
            @for g in &self.reasons {
                section.reason data-code=(g.code) {
                    h3 { (g.words) }
                    p.note { code { (g.code) } " — " (g.artifacts.len()) " artifact" (plural(g.artifacts.len())) }
                    (failing_table(&g.artifacts))
                }
            }
        };
        page::document(TITLE, body)
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("# {TITLE}\n\n**{}.**\n\n", self.headline);
        out.push_str(&format!(
            "Built at the signed checkpoint of tree size {}:\n\n```\n{}\n```\n\n",
            self.size,
            self.checkpoint.trim_end()
        ));
        out.push_str(&format!("## Trend\n\n{}\n\n", self.sampled()));
        out.push_str("| Checkpoint size | Passing | Canonical |\n|---:|---:|---:|\n");
        for t in &self.trend {
            out.push_str(&format!("| {} | {} | {} |\n", t.size, t.passing, t.canonical));
        }
        out.push_str(&format!("\n## Failing artifacts, by reason\n\n{}\n", self.failing_lead()));
        for g in &self.reasons {
            let n = g.artifacts.len();
            out.push_str(&format!("\n### {}\n\n`{}` — {n} artifact{}\n\n", g.words, g.code, plural(n)));
            out.push_str("| Artifact | Version | Claims | Why |\n|---|---:|---|---|\n");
            for a in &g.artifacts {
                out.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    md_cell(&a.slug),
                    version(a),
                    md_cell(&a.details.join(", ")),
                    md_cell(&a.why.join(" "))
                ));
            }
        }
        out
    }
}

fn failing_table(artifacts: &[Failing]) -> Markup {
    html! {
        table {
            thead { tr { th { "Artifact" } th.num { "Version" } th { "Claims" } th { "Why" } } }
            tbody {
                @for a in artifacts {
                    tr data-slug=(a.slug) {
                        td { code { (a.slug) } } td.num { (version(a)) } td { (a.details.join(", ")) }
                        td.why { @for w in &a.why { span { (w) } " " } }
                    }
                }
            }
        }
    }
}

fn version(a: &Failing) -> String {
    a.version.map_or_else(|| "—".to_owned(), |v| format!("v{v}"))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Text safe in a Markdown table cell.
fn md_cell(text: &str) -> String {
    text.replace('\\', "\\\\").replace('|', "\\|").replace('\n', " ")
}
