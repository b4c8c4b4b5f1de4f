//! What a `[[cuda]]` table reads without running anything: the entry points a `.cu` source
//! defines, and size expressions (`"{n}/256"`, `"{m}*{k}"`).

use serde_json::{Map, Value};

use super::command::substitute;

/// Evaluates a size: integers joined by `*` and `/` (rounding up), left to right; `None`
/// when it is not one, overflows, or divides by zero.
pub fn eval_size(expression: &str) -> Option<u64> {
    let mut terms = expression.split_inclusive(['*', '/']);
    let number = |text: &str| text.trim().parse::<u64>().ok();
    let first = terms.next()?;
    let (mut value, mut op) = match first.strip_suffix(['*', '/']) {
        Some(head) => (number(head)?, first.chars().last()),
        None => (number(first)?, None),
    };
    for term in terms {
        let (text, next) = match term.strip_suffix(['*', '/']) {
            Some(head) => (head, term.chars().last()),
            None => (term, None),
        };
        let operand = number(text)?;
        value = match op? {
            '*' => value.checked_mul(operand)?,
            _ if operand == 0 => return None,
            _ => value.div_ceil(operand),
        };
        op = next;
    }
    // A trailing operator has no operand.
    if op.is_some() { None } else { Some(value) }
}

/// A size setting for `variant`: an integer, or an expression with placeholders.
pub(super) fn size(what: &str, template: &Value, variant: &Map<String, Value>) -> Result<u64, String> {
    match template {
        Value::Number(n) => {
            n.as_u64().ok_or_else(|| format!("{what} must be a non-negative integer, got {n}"))
        }
        Value::String(text) => {
            let filled = substitute(text, variant).map_err(|e| e.0)?;
            eval_size(&filled).ok_or_else(|| {
                format!("{what} {text:?} is {filled:?}, not integers joined by * and / (/ rounds up)")
            })
        }
        other => Err(format!("{what} must be an integer or a string such as \"{{n}}/256\", got {other}")),
    }
}

/// The `extern "C" __global__` functions `source` defines (comments removed first).
pub fn entry_points(source: &str) -> Vec<String> {
    let code = strip_comments(source);
    let mut entries = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("__global__") {
        rest = &rest[at + "__global__".len()..];
        // A few qualifiers may sit between __global__ and the name: void, __launch_bounds__(…).
        let mut scan = rest;
        for _ in 0..8 {
            scan = scan.trim_start();
            let ident_len =
                scan.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(scan.len());
            if ident_len == 0 {
                break;
            }
            let ident = &scan[..ident_len];
            scan = scan[ident_len..].trim_start();
            if scan.starts_with('(') {
                if ident == "__launch_bounds__" {
                    match scan.find(')') {
                        Some(close) => scan = &scan[close + 1..],
                        None => break,
                    }
                    continue;
                }
                entries.push(ident.to_owned());
                break;
            }
        }
    }
    entries
}

fn strip_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    loop {
        let line = rest.find("//");
        let block = rest.find("/*");
        let at = match (line, block) {
            (Some(l), Some(b)) => l.min(b),
            (Some(l), None) => l,
            (None, Some(b)) => b,
            (None, None) => break,
        };
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        rest = if tail.starts_with("//") {
            tail.find('\n').map_or("", |end| &tail[end..])
        } else {
            tail[2..].find("*/").map_or("", |end| &tail[2 + end + 2..])
        };
        out.push(' ');
    }
    out.push_str(rest);
    out
}

pub(super) fn is_c_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && text.len() <= 128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_products_and_rounded_up_quotients() {
        assert_eq!(eval_size("1000"), Some(1000));
        assert_eq!(eval_size(" 1000 / 256 "), Some(4));
        assert_eq!(eval_size("1024/256"), Some(4));
        assert_eq!(eval_size("33*65"), Some(2145));
        assert_eq!(eval_size("33*65/16"), Some(135));
        for bad in ["", "n", "1/0", "2*", "*2", "1.5", "-1", "18446744073709551615*2", "1+1"] {
            assert_eq!(eval_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn entry_points_are_found_past_qualifiers_and_not_in_comments() {
        let source = r#"
            // extern "C" __global__ void commented(float* out) {}
            /* __global__ void blocked(float* out) {} */
            extern "C" __global__ void plain(const float* x, float* out, unsigned int n) {}
            extern "C" __global__ __launch_bounds__(256) void bounded(float* out, unsigned int n) {}
            extern "C" {
            __global__ void
            in_block (float* out, unsigned int n) {}
            }
            __device__ float helper(float x) { return x; }
        "#;
        assert_eq!(entry_points(source), vec!["plain", "bounded", "in_block"]);
    }
}
