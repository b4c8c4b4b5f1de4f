//! The deterministic percentile bootstrap behind claims over groups of runs.
//!
//! A claim like "loss 3.1 ± 0.05 over 5 seeds" is judged from a confidence interval of the
//! statistic across the runs. So that the same ledger gives the same interval on every
//! machine and in every offline verifier, the interval is computed with nothing whose result
//! could differ between platforms:
//!
//! - the random stream is SplitMix64 from the fixed seed [`SEED`]: a constant, not derived
//!   from the claim, so an author cannot pick a favourable stream by renaming a claim;
//! - a resample index is the high 64 bits of `next() × n` (128-bit integer multiply);
//! - there are [`RESAMPLES`] resamples; each draws `n` values with replacement from each
//!   group (the runs first, then the baseline runs, from the one stream);
//! - the statistic uses only +, −, ×, ÷ on binary64 (IEEE 754 rounds these exactly the
//!   same everywhere) and sorting by `total_cmp`; no libm (`sqrt`, `exp`, `pow`);
//! - the interval is the percentile rule on the sorted resampled statistics: with
//!   `k = ⌊(1 − level) · R / 2⌋` computed in integers from the level in millionths, the
//!   interval is `[sorted[k], sorted[R − 1 − k]]`;
//! - with one value per group (n = 1) every resample is that value, so the interval is the
//!   point itself, returned without resampling.
//!
//! Inputs are parsed to binary64 once (each run's exact aggregate, rounded once).

/// Resamples per interval.
pub const RESAMPLES: usize = 2000;

/// The seed of every interval's stream (the bytes `assay-bs`).
pub const SEED: u64 = 0x6173_7361_792d_6273;

/// Values per group, at most (the schema's limit on a group's runs).
pub const GROUP_MAX: usize = 1000;

/// SplitMix64 (Steele, Lea, Flood 2014), as in `java.util.SplittableRandom`.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// An index in `0..n` (`n` > 0): the high half of `next × n`.
    pub fn index(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// The statistic across runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stat {
    /// `c + Σ(x − c) / n` with `c` the first value, summed in order: exactly `c` when every
    /// value is `c` (a plain `Σx / n` of seven 3.1s is 3.1000000000000005, which would
    /// contradict a claimed bound of 3.1 by rounding alone).
    Mean,
    /// The middle value after sorting; the mean of the two middle ones for even n.
    Median,
}

impl Stat {
    pub fn parse(s: &str) -> Option<Stat> {
        match s {
            "mean" => Some(Stat::Mean),
            "median" => Some(Stat::Median),
            _ => None,
        }
    }

    /// The statistic of `values` (NaN for none); sorts them for the median.
    pub fn of(self, values: &mut [f64]) -> f64 {
        if values.is_empty() {
            return f64::NAN;
        }
        match self {
            Stat::Mean => {
                let c = values[0];
                c + values.iter().fold(0.0, |s, v| s + (v - c)) / values.len() as f64
            }
            Stat::Median => {
                values.sort_unstable_by(f64::total_cmp);
                let mid = values.len() / 2;
                if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 }
            }
        }
    }
}

/// How two groups compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    /// `stat(runs) − stat(baseline_runs)`.
    Difference,
    /// `stat(runs) / stat(baseline_runs)`.
    Ratio,
}

impl Relation {
    pub fn parse(s: &str) -> Option<Relation> {
        match s {
            "difference" => Some(Relation::Difference),
            "ratio" => Some(Relation::Ratio),
            _ => None,
        }
    }

    fn of(self, a: f64, b: f64) -> f64 {
        match self {
            Relation::Difference => a - b,
            Relation::Ratio => a / b,
        }
    }
}

/// A closed interval of binary64 values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    /// `lo..hi`, each the shortest decimal that round-trips.
    pub fn display(&self) -> String {
        format!("{}..{}", self.lo, self.hi)
    }

    fn is_finite(&self) -> bool {
        self.lo.is_finite() && self.hi.is_finite()
    }
}

/// Why there is no interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BootstrapError {
    #[error("a group has no values")]
    Empty,
    #[error("a group has more than {GROUP_MAX} values")]
    TooMany,
    #[error("the confidence level is not between 0 and 1 exclusive")]
    Level,
    /// A ratio over a zero baseline, or values whose sum overflows.
    #[error("the interval is not finite")]
    NotFinite,
}

/// A confidence level in millionths, `0 < ppm < 1_000_000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level(u32);

impl Level {
    pub const DEFAULT: Level = Level(950_000);

    /// `0.d…` with 1 to 6 fractional digits, above zero.
    pub fn parse(text: &str) -> Option<Level> {
        let frac = text.strip_prefix("0.")?;
        if frac.is_empty() || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let ppm = format!("{frac:0<6}").parse::<u32>().ok()?;
        (ppm > 0).then_some(Level(ppm))
    }

    /// `k` of the percentile rule: `⌊(1 − level) · R / 2⌋`, exactly.
    pub fn tail_rank(self) -> usize {
        let outside = (1_000_000 - u64::from(self.0)) * RESAMPLES as u64;
        (outside / 2_000_000) as usize
    }
}

/// The interval of `stat` over one group.
pub fn group_interval(values: &[f64], stat: Stat, level: Level) -> Result<Interval, BootstrapError> {
    check_group(values)?;
    if values.len() == 1 {
        return finite(Interval { lo: values[0], hi: values[0] });
    }
    let mut rng = SplitMix64::new(SEED);
    let mut scratch = Vec::with_capacity(values.len());
    let stats = (0..RESAMPLES).map(|_| {
        resample(values, &mut rng, &mut scratch);
        stat.of(&mut scratch)
    });
    finite(percentile(stats.collect(), level))
}

/// The interval of `relation(stat(runs), stat(baseline))`, each group resampled on its own.
pub fn compare_interval(
    runs: &[f64],
    baseline: &[f64],
    stat: Stat,
    relation: Relation,
    level: Level,
) -> Result<Interval, BootstrapError> {
    check_group(runs)?;
    check_group(baseline)?;
    if runs.len() == 1 && baseline.len() == 1 {
        let point = relation.of(runs[0], baseline[0]);
        return finite(Interval { lo: point, hi: point });
    }
    let mut rng = SplitMix64::new(SEED);
    let (mut a, mut b) = (Vec::with_capacity(runs.len()), Vec::with_capacity(baseline.len()));
    let stats = (0..RESAMPLES).map(|_| {
        resample(runs, &mut rng, &mut a);
        resample(baseline, &mut rng, &mut b);
        relation.of(stat.of(&mut a), stat.of(&mut b))
    });
    finite(percentile(stats.collect(), level))
}

fn check_group(values: &[f64]) -> Result<(), BootstrapError> {
    match values.len() {
        0 => Err(BootstrapError::Empty),
        n if n > GROUP_MAX => Err(BootstrapError::TooMany),
        _ => Ok(()),
    }
}

fn finite(i: Interval) -> Result<Interval, BootstrapError> {
    if i.is_finite() { Ok(i) } else { Err(BootstrapError::NotFinite) }
}

/// `n` draws with replacement from `values` into `out`.
fn resample(values: &[f64], rng: &mut SplitMix64, out: &mut Vec<f64>) {
    out.clear();
    out.extend((0..values.len()).map(|_| values[rng.index(values.len())]));
}

fn percentile(mut stats: Vec<f64>, level: Level) -> Interval {
    stats.sort_unstable_by(f64::total_cmp);
    let k = level.tail_rank();
    Interval { lo: stats[k], hi: stats[stats.len() - 1 - k] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_published_sequence() {
        // SplittableRandom / the reference C code, seed 1234567.
        let mut r = SplitMix64::new(1_234_567);
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(got, [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423]);
    }

    #[test]
    fn statistics() {
        assert_eq!(Stat::Mean.of(&mut [3.1; 7]), 3.1, "exact for equal values");
        assert_eq!(Stat::Median.of(&mut [5.0, 1.0, 3.0]), 3.0);
        assert_eq!(Stat::Median.of(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(Stat::Mean.of(&mut []).is_nan(), "no values, no statistic, no panic");
        assert_eq!(group_interval(&[], Stat::Mean, Level::DEFAULT), Err(BootstrapError::Empty));
        assert_eq!(
            group_interval(&[0.0; GROUP_MAX + 1], Stat::Mean, Level::DEFAULT),
            Err(BootstrapError::TooMany)
        );
    }

    #[test]
    fn levels_are_exact() {
        assert_eq!(Level::parse("0.95"), Some(Level::DEFAULT));
        assert_eq!(Level::DEFAULT.tail_rank(), 50);
        assert_eq!(Level::parse("0.9").map(Level::tail_rank), Some(100));
        assert_eq!(Level::parse("0.99").map(Level::tail_rank), Some(10));
        assert_eq!(Level::parse("0.999999").map(Level::tail_rank), Some(0));
        for bad in ["0", "0.", "0.0", "1", "1.0", "0.1234567", ".5", "0.5e1", "-0.5"] {
            assert_eq!(Level::parse(bad), None, "{bad}");
        }
    }
}
