//! Aligned text tables for people: a header row in capitals, columns two spaces apart, no
//! trailing blanks. Numbers are right-aligned.

use std::fmt::Write as _;

pub struct Table {
    header: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Columns named `header`; a name starting with `>` is right-aligned (the `>` is dropped).
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.iter().map(|h| h.trim_start_matches('>')).collect(),
            right: header.iter().map(|h| h.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .chain([self.header[i].chars().count()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.header.len()).map(width).collect();
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths[i].saturating_sub(cell.chars().count());
                if self.right[i] {
                    let _ = write!(line, "{}{cell}", " ".repeat(pad));
                } else {
                    let _ = write!(line, "{cell}{}", " ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A time for a table: RFC 3339 text shown as `YYYY-MM-DD HH:MM:SS` in UTC; text that is not
/// RFC 3339 as it is; `-` for none.
pub fn time_text(text: Option<&str>) -> String {
    match text {
        None => "-".to_owned(),
        Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
            Ok(d) => d.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S").to_string(),
            Err(_) => t.to_owned(),
        },
    }
}

/// A ledger time (Unix ns) as [`time_text`] shows it.
pub fn time_ns(ns: Option<i64>) -> String {
    match ns {
        None => "-".to_owned(),
        Some(ns) => chrono::DateTime::from_timestamp_nanos(ns).format("%Y-%m-%d %H:%M:%S").to_string(),
    }
}

/// `-` for none.
pub fn or_dash(text: Option<&str>) -> String {
    text.unwrap_or("-").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut t = Table::new(&["RUN", "STATE", ">N"]);
        t.row(vec!["r-1".into(), "queued".into(), "7".into()]);
        t.row(vec!["r-long-name".into(), "-".into(), "1234".into()]);
        assert_eq!(
            t.render(),
            "RUN          STATE      N\nr-1          queued     7\nr-long-name  -       1234\n"
        );
        assert_eq!(time_text(Some("2025-06-01T14:00:00.5+02:00")), "2025-06-01 12:00:00");
        assert_eq!(time_ns(Some(0)), "1970-01-01 00:00:00");
    }
}
