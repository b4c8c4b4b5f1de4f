//! The observed values of a check as a report shows them.

/// The observed values of a check (or of one pair of a `replicated` check), as the audit's
/// context states them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// `pair <i>` for a pair of a replicated check.
    pub pair: Option<String>,
    pub n: Option<String>,
    pub estimate: Option<String>,
    pub interval: Option<String>,
    /// A metric check's value, or a compare check's `a - b`.
    pub value: Option<String>,
}

impl Observed {
    /// The value for a reader: the audit states a mean exactly as `sum/count`; shown as its
    /// decimal (to 6 significant digits) followed by the exact fraction.
    pub fn value_shown(&self) -> Option<String> {
        let v = self.value.as_deref()?;
        let quotient = v.split_once('/').and_then(|(a, b)| {
            let (a, b) = (a.parse::<f64>().ok()?, b.parse::<f64>().ok()?);
            (b != 0.0).then(|| a / b).filter(|q| q.is_finite())
        });
        Some(match quotient {
            Some(q) => format!("{} ({v} exactly)", significant(q, 6)),
            None => v.to_owned(),
        })
    }
}

/// `v` to `digits` significant digits, without trailing zeros.
fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    let decimals = (digits - 1 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mean_is_shown_as_a_decimal_beside_its_exact_fraction() {
        let o = |v: &str| Observed { value: Some(v.into()), ..Observed::default() };
        assert_eq!(o("1018.4/10").value_shown().as_deref(), Some("101.84 (1018.4/10 exactly)"));
        assert_eq!(o("2/3").value_shown().as_deref(), Some("0.666667 (2/3 exactly)"));
        assert_eq!(o("90.6").value_shown().as_deref(), Some("90.6"));
        assert_eq!(o("1/0").value_shown().as_deref(), Some("1/0"));
        assert_eq!(Observed::default().value_shown(), None);
    }
}
