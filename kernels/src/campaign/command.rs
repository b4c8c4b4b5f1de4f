//! `[[command]]` tables: the lab's own commands (benchmarks, test scripts, vendor tools) as
//! campaign cells.
//!
//! ```toml
//! [[command]]
//! name = "fp4_gemm"                       # recorded as the launch's `kernel`
//! command = ["python3", "bench/fp4_gemm.py", "--m", "{m}", "--backend", "{route}"]
//! env = { FP4_ROUTE = "{route}" }         # optional; values substituted like argv
//! cwd = "bench"                           # optional; relative to the campaign file's folder
//! timeout = "30s"                         # optional; default: the run's --cell-timeout
//! repeat = 5                              # optional; runs per cell (min, median, p90 recorded)
//! tolerance = 1e-3                        # optional; a reported max_abs_err above it fails
//! fallback = { route = "reference" }      # optional; axis overrides for a second try
//! outputs = ["out/{route}-{m}.json"]      # optional; files the cell writes, kept as evidence
//! m = [128, 4096]                         # every other key is an axis
//! route = ["cutlass", "cute_dsl"]
//! ```
//!
//! `{name}` in argv and env is replaced by the cell's value of axis `name` (`{{` and `}}` are
//! literal braces); a placeholder naming no axis is refused when the file is read. The whole
//! cell is passed as JSON in `ASSAY_CELL`. The settings above are not axes; `seed` is an
//! ordinary axis here (commands draw their own inputs).
//!
//! `outputs` paths are relative to the cell's working folder (placeholders filled in like
//! argv); a campaign recorded into a ledger with an evidence store keeps each file found there
//! after the cell ends, with the cell's whole stdout and stderr, as blobs before the
//! `evidence.captured` that cites them (`campaign/kept.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::{CampaignError, axis, err, for_each_combination, tolerance};
use crate::sink::is_identifier;

/// Most runs of one cell (`repeat`).
pub const REPEAT_MAX: u32 = 1000;
/// Longest per-table timeout.
const TIMEOUT_MAX: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most argv entries, env entries, and bytes of one substituted string.
const ARGV_MAX: usize = 1024;
const ENV_MAX: usize = 256;
const STRING_BYTES_MAX: usize = 64 * 1024;
/// Most `outputs` of one table, and the longest one (it is recorded under `launch-<n>/outputs/`
/// within the schema's 1024-byte path).
const OUTPUTS_MAX: usize = 256;
const OUTPUT_BYTES_MAX: usize = 960;

/// Keys of a `[[command]]` table that are settings, not axes.
pub const COMMAND_SETTINGS: &[&str] =
    &["name", "command", "env", "cwd", "timeout", "repeat", "tolerance", "fallback", "outputs"];

/// One cell of a `[[command]]` table: the command with its placeholders filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandCell {
    /// The table's name, recorded as the launch's `kernel`.
    pub name: String,
    /// The cell: one value per axis (groups merged).
    pub variant: Map<String, Value>,
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// The working folder.
    pub cwd: PathBuf,
    /// The table's own timeout; `None`: the run's default.
    pub timeout: Option<Duration>,
    /// Runs of the cell (at least 1).
    pub repeat: u32,
    /// Largest reported `max_abs_err` that passes, when set.
    pub tolerance: Option<f64>,
    /// Files the cell writes, relative to `cwd` (`/`-separated, no `.` or `..` segment).
    pub outputs: Vec<String>,
    /// The same cell with the fallback's overrides, run when this one fails or faults.
    pub fallback: Option<Box<CommandCell>>,
    /// Line of the table's `[[command]]` header in the campaign file (1-based).
    pub line: usize,
}

impl CommandCell {
    /// The variant as JSON (what `ASSAY_CELL` holds and the launch records).
    pub fn variant_value(&self) -> Value {
        Value::Object(self.variant.clone())
    }

    /// A short human label: `m=128 route=cutlass`.
    pub fn label(&self) -> String {
        self.variant
            .iter()
            .map(|(key, value)| format!("{key}={}", text_of(value)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// How a value is written into argv or env: strings as they are, everything else as JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Replaces `{name}` by the variant's value; `{{` and `}}` are literal braces.
pub fn substitute(template: &str, variant: &Map<String, Value>) -> Result<String, CampaignError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if tail.starts_with('}') {
            return err(format!("a lone }} in {template:?} (write }}}} for a literal brace)"));
        } else {
            let Some(close) = tail.find('}') else {
                return err(format!("an unclosed {{ in {template:?} (write {{{{ for a literal brace)"));
            };
            let key = &tail[1..close];
            let Some(value) = variant.get(key) else {
                let axes: Vec<&str> = variant.keys().map(String::as_str).collect();
                return err(format!(
                    "unknown placeholder {{{key}}} in {template:?} (the axes are: {})",
                    if axes.is_empty() { "none".to_owned() } else { axes.join(", ") }
                ));
            };
            out.push_str(&text_of(value));
            rest = &tail[close + 1..];
        }
        if out.len() > STRING_BYTES_MAX {
            return err(format!("{template:?} expands to more than {STRING_BYTES_MAX} bytes"));
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The line (1-based) of `key` in the `index`-th table named `table` (`[[table]]`), or of the
/// table's header when the key is not found there; 0 when even the header is not found.
pub fn locate(text: &str, table: &str, index: usize, key: Option<&str>) -> usize {
    let header = format!("[[{table}]]");
    let mut seen = 0usize;
    let mut header_line = 0usize;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            if header_line != 0 {
                break;
            }
            if trimmed.starts_with(&header) {
                if seen == index {
                    header_line = number + 1;
                }
                seen += 1;
            }
            continue;
        }
        if header_line != 0
            && let Some(key) = key
            && let Some(after) = trimmed.strip_prefix(key)
            && after.trim_start().starts_with('=')
        {
            return number + 1;
        }
    }
    header_line
}

/// The `timeout` setting: seconds as a number, or a string with a unit (`500ms`, `30s`, `5m`,
/// `2h`).
fn timeout(value: &Value) -> Result<Duration, CampaignError> {
    let seconds = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(text) => {
            let text = text.trim();
            let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
                (n, 0.001)
            } else if let Some(n) = text.strip_suffix('s') {
                (n, 1.0)
            } else if let Some(n) = text.strip_suffix('m') {
                (n, 60.0)
            } else if let Some(n) = text.strip_suffix('h') {
                (n, 3600.0)
            } else {
                (text, 1.0)
            };
            number.trim().parse::<f64>().ok().map(|n| n * scale)
        }
        _ => None,
    };
    match seconds {
        Some(s) if s > 0.0 && s <= TIMEOUT_MAX.as_secs_f64() => Ok(Duration::from_secs_f64(s)),
        _ => err(format!("timeout must be a duration such as 30 or \"30s\" (at most 7 days), got {value}")),
    }
}

fn strings(key: &str, value: Value) -> Result<Vec<String>, CampaignError> {
    let Value::Array(items) = value else {
        return err(format!("{key} must be an array of strings, got {value}"));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => Ok(s),
            other => err(format!("{key} must be an array of strings, got {other} in it")),
        })
        .collect()
}

/// An `outputs` entry after substitution: a relative path that stays under the cell's folder.
fn output_path(path: String) -> Result<String, CampaignError> {
    let bad = path.is_empty()
        || path.len() > OUTPUT_BYTES_MAX
        || path.starts_with('/')
        || path.contains(['\\', '\0'])
        || path.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..");
    if bad {
        return err(format!(
            "outputs: {path:?} must be a relative path under the cell's folder (at most {OUTPUT_BYTES_MAX} bytes, no empty, . or .. segment)"
        ));
    }
    Ok(path)
}

/// Whether `program` can be started from `cwd`: a path (with a `/`) names an existing file,
/// relative to `cwd`; a bare name is found on `PATH`.
fn find_program(program: &str, cwd: &Path) -> Result<(), CampaignError> {
    if program.is_empty() {
        return err("the command's program is empty");
    }
    if program.contains('/') {
        let path = cwd.join(program);
        if path.is_file() {
            return Ok(());
        }
        return err(format!("command not found: {} (no such file)", path.display()));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program))) {
        return Ok(());
    }
    err(format!("command not found: {program:?} is not on PATH"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The parts of a table before substitution.
struct Template {
    name: String,
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    cwd: PathBuf,
    timeout: Option<Duration>,
    repeat: u32,
    tolerance: Option<f64>,
    fallback: Option<Map<String, Value>>,
    outputs: Vec<String>,
    line: usize,
}

impl Template {
    /// The cell for `variant`. `found` holds the programs already found: a matrix of a
    /// million cells looks each program up on PATH once, not once a cell.
    fn cell(
        &self,
        variant: Map<String, Value>,
        found: &mut BTreeSet<String>,
    ) -> Result<CommandCell, CampaignError> {
        let argv = self.argv.iter().map(|arg| substitute(arg, &variant)).collect::<Result<Vec<_>, _>>()?;
        let env = self
            .env
            .iter()
            .map(|(key, value)| Ok((key.clone(), substitute(value, &variant)?)))
            .collect::<Result<Vec<_>, CampaignError>>()?;
        let outputs = self
            .outputs
            .iter()
            .map(|path| {
                let filled =
                    substitute(path, &variant).map_err(|e| CampaignError(format!("outputs: {}", e.0)))?;
                output_path(filled)
            })
            .collect::<Result<Vec<_>, CampaignError>>()?;
        if !found.contains(&argv[0]) {
            find_program(&argv[0], &self.cwd)?;
            found.insert(argv[0].clone());
        }
        Ok(CommandCell {
            name: self.name.clone(),
            variant,
            argv,
            env,
            cwd: self.cwd.clone(),
            timeout: self.timeout,
            repeat: self.repeat,
            tolerance: self.tolerance,
            outputs,
            fallback: None,
            line: self.line,
        })
    }
}

/// Expands the `index`-th `[[command]]` table into `out`. `text` is the whole file (to name
/// lines), `dir` the campaign file's folder, `cells_max` the most cells `out` may hold.
pub(super) fn expand_command(
    mut entry: Map<String, Value>,
    index: usize,
    text: &str,
    dir: &Path,
    cells_max: usize,
    out: &mut Vec<CommandCell>,
) -> Result<(), CampaignError> {
    let at = |key: Option<&str>, message: String| {
        let line = locate(text, "command", index, key);
        let place = if line == 0 { String::new() } else { format!("line {line}: ") };
        CampaignError(format!("{place}command #{}: {message}", index + 1))
    };
    let line = locate(text, "command", index, None);
    let name = match entry.remove("name") {
        Some(Value::String(name)) if is_identifier(&name) => name,
        Some(other) => return Err(at(Some("name"), format!("name must be an identifier, got {other}"))),
        None => return Err(at(None, "no name (recorded as the launch's kernel)".into())),
    };
    let argv = match entry.remove("command") {
        Some(value) => strings("command", value).map_err(|e| at(Some("command"), e.0))?,
        None => return Err(at(None, format!("{name}: no command (an array: program and arguments)"))),
    };
    if argv.is_empty() || argv.len() > ARGV_MAX {
        return Err(at(Some("command"), format!("{name}: command must hold 1..={ARGV_MAX} strings")));
    }
    let env = match entry.remove("env") {
        None => BTreeMap::new(),
        Some(Value::Object(map)) if map.len() <= ENV_MAX => map
            .into_iter()
            .map(|(key, value)| match value {
                Value::String(s) if !key.is_empty() && !key.contains(['=', '\0']) => Ok((key, s)),
                other => err(format!("env {key:?} must be a string, got {other}")),
            })
            .collect::<Result<_, _>>()
            .map_err(|e| at(Some("env"), e.0))?,
        Some(other) => {
            return Err(at(
                Some("env"),
                format!("env must be a table of at most {ENV_MAX} strings, got {other}"),
            ));
        }
    };
    let cwd = match entry.remove("cwd") {
        None => dir.to_path_buf(),
        Some(Value::String(folder)) => dir.join(folder),
        Some(other) => return Err(at(Some("cwd"), format!("cwd must be a string, got {other}"))),
    };
    if !cwd.is_dir() {
        return Err(at(Some("cwd"), format!("{}: no such folder", cwd.display())));
    }
    let timeout =
        entry.remove("timeout").map(|v| timeout(&v)).transpose().map_err(|e| at(Some("timeout"), e.0))?;
    let repeat = match entry.remove("repeat") {
        None => 1,
        Some(value) => match value.as_u64() {
            Some(n) if (1..=u64::from(REPEAT_MAX)).contains(&n) => n as u32,
            _ => return Err(at(Some("repeat"), format!("repeat must be 1..={REPEAT_MAX}, got {value}"))),
        },
    };
    let tolerance = entry
        .remove("tolerance")
        .map(|v| tolerance(&v))
        .transpose()
        .map_err(|e| at(Some("tolerance"), e.0))?;
    let fallback = match entry.remove("fallback") {
        None => None,
        Some(Value::Object(overrides)) if !overrides.is_empty() => Some(overrides),
        Some(other) => {
            return Err(at(
                Some("fallback"),
                format!("fallback must be a table of axis overrides, got {other}"),
            ));
        }
    };
    let outputs = match entry.remove("outputs") {
        None => Vec::new(),
        Some(value) => {
            let paths = strings("outputs", value).map_err(|e| at(Some("outputs"), e.0))?;
            if paths.len() > OUTPUTS_MAX {
                return Err(at(Some("outputs"), format!("{name}: at most {OUTPUTS_MAX} outputs")));
            }
            paths
        }
    };
    let template = Template { name, argv, env, cwd, timeout, repeat, tolerance, fallback, outputs, line };
    let axes: Vec<(String, Vec<Map<String, Value>>)> = entry
        .into_iter()
        .map(|(key, value)| Ok((key.clone(), axis(&key, value).map_err(|e| at(Some(&key), e.0))?)))
        .collect::<Result<_, CampaignError>>()?;
    if let Some(overrides) = &template.fallback
        && let Some(key) = overrides.keys().find(|key| !axes.iter().any(|(axis, _)| axis == *key))
    {
        return Err(at(Some("fallback"), format!("fallback overrides {key:?}, which is not an axis")));
    }
    // A placeholder in argv or env is named on its own key's line when it is wrong.
    let key_of = |message: &str| {
        if message.contains("in env") {
            Some("env")
        } else if message.starts_with("outputs") {
            Some("outputs")
        } else {
            Some("command")
        }
    };
    let mut found = BTreeSet::new();
    for_each_combination(&axes, cells_max.saturating_sub(out.len()), &mut |variant, _| {
        let mut cell = template.cell(variant.clone(), &mut found).map_err(|e| at(key_of(&e.0), e.0))?;
        if let Some(overrides) = &template.fallback {
            let mut fallback = variant;
            for (key, value) in overrides {
                fallback.insert(key.clone(), value.clone());
            }
            cell.fallback =
                Some(Box::new(template.cell(fallback, &mut found).map_err(|e| at(Some("fallback"), e.0))?));
        }
        out.push(cell);
        Ok(())
    })
    .map_err(|e| if e.0.starts_with("line ") { e } else { at(None, e.0) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn variant(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("object")
    }

    #[test]
    fn substitution_fills_axes_and_keeps_literal_braces() {
        let v = variant(json!({"m": 128, "route": "cutlass", "scale": 0.5, "on": true}));
        assert_eq!(substitute("--m={m}", &v).expect("ok"), "--m=128");
        assert_eq!(substitute("{route}/{scale}/{on}", &v).expect("ok"), "cutlass/0.5/true");
        assert_eq!(substitute("{{m}} }}", &v).expect("ok"), "{m} }");
        let unknown = substitute("{rout}", &v).expect_err("unknown");
        assert!(
            unknown.0.contains("unknown placeholder {rout}") && unknown.0.contains("m, on, route, scale"),
            "{unknown}"
        );
        assert!(substitute("{m", &v).expect_err("unclosed").0.contains("unclosed"));
        assert!(substitute("m}", &v).expect_err("lone").0.contains("lone"));
    }

    #[test]
    fn locate_names_the_key_line_of_the_right_table() {
        let text = "name = \"t\"\n\n[[command]]\nname = \"a\"\ncommand = [\"x\"]\n\n[[command]]\nname = \"b\"\n  command = [\"y\"]\nm = [1]\n";
        assert_eq!(locate(text, "command", 0, Some("command")), 5);
        assert_eq!(locate(text, "command", 1, Some("command")), 9);
        assert_eq!(locate(text, "command", 1, Some("m")), 10);
        assert_eq!(locate(text, "command", 1, Some("missing")), 7);
        assert_eq!(locate(text, "command", 2, None), 0);
    }

    #[test]
    fn outputs_stay_under_the_cell_folder() {
        assert_eq!(output_path("out/a.json".into()).expect("ok"), "out/a.json");
        for bad in ["", "/etc/passwd", "../up", "a/../b", "a//b", "./a", "a\\b"] {
            let e = output_path(bad.into()).expect_err(bad);
            assert!(e.0.contains("relative path"), "{e}");
        }
    }

    #[test]
    fn timeouts_take_units() {
        assert_eq!(timeout(&json!(2)).expect("s"), Duration::from_secs(2));
        assert_eq!(timeout(&json!("250ms")).expect("ms"), Duration::from_millis(250));
        assert_eq!(timeout(&json!("5m")).expect("m"), Duration::from_secs(300));
        for bad in [json!(0), json!("-1s"), json!("soon"), json!([1]), json!("8000h")] {
            assert!(timeout(&bad).is_err(), "{bad}");
        }
    }
}
