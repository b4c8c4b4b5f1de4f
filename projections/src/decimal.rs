//! Exact decimal numbers for claim checks.
//!
//! Claim thresholds are decimal strings; metric values are JSON numbers, which reach us as
//! binary64. The rule:
//!
//! - a metric value is taken as the **shortest decimal that round-trips its binary64** (what
//!   the producer's JSON encoder wrote: `1.8734` stays `1.8734`, never
//!   `1.87339999999999995...`);
//! - thresholds are parsed exactly from their text;
//! - aggregation and comparison are exact in decimal: no rounding anywhere. `mean` is never
//!   divided: `sum/n op t` is decided as `sum op t·n`, and a compare of two means as
//!   `sum_a·n_b − sum_b·n_a op margin·n_a·n_b`.
//!
//! So `eq` is exact: the mean of `0.1` and `0.2` equals `"0.15"`; a logged
//! `0.30000000000000004` does not equal `"0.3"` (that is what was logged).
//!
//! Magnitudes are digit vectors. Addition is only ever applied to values that came from
//! binary64 (exponents within about ±350), so its cost stays small; thresholds are only
//! scaled by integers and compared, which needs no alignment whatever their exponent.

use std::cmp::Ordering;
use std::fmt;

/// Exponents are clamped to ±2^40: far beyond any binary64, so comparisons with metric
/// values stay exact, and far from i64 overflow.
const EXP_LIMIT: i64 = 1 << 40;

/// ±digits × 10^exp, normalized: no leading or trailing zero digits (zero = no digits).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decimal {
    neg: bool,
    /// Base-10 digits, least significant first.
    digits: Vec<u8>,
    exp: i64,
}

impl Decimal {
    pub fn zero() -> Decimal {
        Decimal::default()
    }

    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Parses `-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?` (the schemas' decimal grammar).
    pub fn parse(text: &str) -> Option<Decimal> {
        let (neg, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let (int, frac) = match mantissa.split_once('.') {
            Some((i, f)) => (i, f),
            None => (mantissa, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !all_digits(int) || !all_digits(frac) || mantissa.ends_with('.') {
            return None;
        }
        let exp = match exponent {
            None => 0,
            Some(e) => parse_exponent(e)?,
        };
        let frac_len = i64::try_from(frac.len()).ok()?;
        let digits: Vec<u8> = int.bytes().chain(frac.bytes()).rev().map(|b| b - b'0').collect();
        Some(Decimal { neg, digits, exp: exp - frac_len }.normalized())
    }

    /// The shortest decimal that round-trips `x`; `None` for NaN and infinities.
    pub fn from_f64(x: f64) -> Option<Decimal> {
        if !x.is_finite() {
            return None;
        }
        // `{:e}` prints the shortest round-trip digits, e.g. `1.8734e0`, `-5e-324`.
        Decimal::parse(&format!("{x:e}"))
    }

    pub fn from_u64(n: u64) -> Decimal {
        Decimal::parse(&n.to_string()).unwrap_or_default()
    }

    fn normalized(mut self) -> Decimal {
        while self.digits.last() == Some(&0) {
            self.digits.pop();
        }
        let low_zeros = self.digits.iter().take_while(|d| **d == 0).count();
        if low_zeros > 0 {
            self.digits.drain(..low_zeros);
            self.exp += low_zeros as i64;
        }
        if self.digits.is_empty() {
            self.neg = false;
            self.exp = 0;
        }
        self.exp = self.exp.clamp(-EXP_LIMIT, EXP_LIMIT);
        self
    }

    /// One past the power of ten of the most significant digit (nonzero values only).
    fn top(&self) -> i64 {
        self.exp + self.digits.len() as i64
    }

    fn digit_at(&self, power: i64) -> u8 {
        let i = power - self.exp;
        if i < 0 {
            return 0;
        }
        usize::try_from(i).ok().and_then(|i| self.digits.get(i)).copied().unwrap_or(0)
    }

    fn cmp_magnitude(&self, other: &Decimal) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        let top = self.top().cmp(&other.top());
        if top != Ordering::Equal {
            return top;
        }
        let low = self.exp.min(other.exp);
        let mut p = self.top() - 1;
        while p >= low {
            let c = self.digit_at(p).cmp(&other.digit_at(p));
            if c != Ordering::Equal {
                return c;
            }
            p -= 1;
        }
        Ordering::Equal
    }

    pub fn neg(&self) -> Decimal {
        let mut out = self.clone();
        out.neg = !out.neg && !out.is_zero();
        out
    }

    /// Exact sum. Only for values whose exponents are a few hundred apart at most (values
    /// from binary64 and their integer multiples): the work is linear in that distance.
    pub fn add(&self, other: &Decimal) -> Decimal {
        if self.is_zero() {
            return other.clone();
        }
        if other.is_zero() {
            return self.clone();
        }
        if self.neg == other.neg {
            return magnitude_sum(self, other, self.neg);
        }
        match self.cmp_magnitude(other) {
            Ordering::Equal => Decimal::zero(),
            Ordering::Greater => magnitude_difference(self, other, self.neg),
            Ordering::Less => magnitude_difference(other, self, other.neg),
        }
    }

    pub fn sub(&self, other: &Decimal) -> Decimal {
        self.add(&other.neg())
    }

    /// Exact product with a non-negative integer.
    pub fn mul_u64(&self, n: u64) -> Decimal {
        if n == 0 || self.is_zero() {
            return Decimal::zero();
        }
        let mut digits = Vec::with_capacity(self.digits.len() + 20);
        let mut carry: u128 = 0;
        for d in &self.digits {
            let t = u128::from(*d) * u128::from(n) + carry;
            digits.push((t % 10) as u8);
            carry = t / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
        Decimal { neg: self.neg, digits, exp: self.exp }.normalized()
    }

    /// Nearest binary64 (for display only).
    pub fn to_f64_lossy(&self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }
}

fn parse_exponent(text: &str) -> Option<i64> {
    let (neg, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value: i64 = 0;
    for b in digits.bytes() {
        value = (value * 10 + i64::from(b - b'0')).min(EXP_LIMIT);
    }
    Some(if neg { -value } else { value })
}

fn magnitude_sum(a: &Decimal, b: &Decimal, neg: bool) -> Decimal {
    let low = a.exp.min(b.exp);
    let high = a.top().max(b.top());
    let mut digits = Vec::with_capacity((high - low + 1) as usize);
    let mut carry = 0u8;
    for p in low..high {
        let s = a.digit_at(p) + b.digit_at(p) + carry;
        digits.push(s % 10);
        carry = s / 10;
    }
    if carry > 0 {
        digits.push(carry);
    }
    Decimal { neg, digits, exp: low }.normalized()
}

/// |big| − |small| where |big| > |small|.
fn magnitude_difference(big: &Decimal, small: &Decimal, neg: bool) -> Decimal {
    let low = big.exp.min(small.exp);
    let high = big.top();
    let mut digits = Vec::with_capacity((high - low) as usize);
    let mut borrow = 0i8;
    for p in low..high {
        let mut d = big.digit_at(p) as i8 - small.digit_at(p) as i8 - borrow;
        borrow = 0;
        if d < 0 {
            d += 10;
            borrow = 1;
        }
        digits.push(d as u8);
    }
    Decimal { neg, digits, exp: low }.normalized()
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        match (self.is_zero() || !self.neg, other.is_zero() || !other.neg) {
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (true, true) => self.cmp_magnitude(other),
            (false, false) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Plain notation for moderate exponents (`1.8734`, `-1500`, `0.000001`), else `1.5e-30`.
impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        if self.neg {
            f.write_str("-")?;
        }
        let msd_first: String = self.digits.iter().rev().map(|d| char::from(b'0' + d)).collect();
        let len = self.digits.len() as i64;
        if (0..=21).contains(&self.exp) {
            write!(f, "{msd_first}{}", "0".repeat(self.exp as usize))
        } else if self.exp < 0 && -self.exp < len {
            let point = (len + self.exp) as usize;
            write!(f, "{}.{}", &msd_first[..point], &msd_first[point..])
        } else if self.exp < 0 && -self.exp - len <= 6 {
            write!(f, "0.{}{msd_first}", "0".repeat((-self.exp - len) as usize))
        } else {
            let (head, tail) = msd_first.split_at(1);
            let e = self.exp + len - 1;
            if tail.is_empty() { write!(f, "{head}e{e}") } else { write!(f, "{head}.{tail}e{e}") }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn parse_and_normal_form() {
        assert_eq!(d("1.50"), d("15e-1"));
        assert_eq!(d("0.000"), Decimal::zero());
        assert_eq!(d("-0"), Decimal::zero());
        assert_eq!(d("1500"), d("1.5E3"));
        assert_eq!(d("007"), d("7"));
        for bad in ["", "-", ".5", "5.", "1e", "1e+", "+1", "1.2.3", "abc", "1_0", "--1"] {
            assert_eq!(Decimal::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn display() {
        for (s, shown) in [
            ("1.8734", "1.8734"),
            ("-1500", "-1500"),
            ("0.000001", "0.000001"),
            ("1.5e-30", "1.5e-30"),
            ("12e40", "1.2e41"),
            ("0", "0"),
            ("5e-324", "5e-324"),
        ] {
            assert_eq!(d(s).to_string(), shown);
        }
    }

    #[test]
    fn floats_are_their_shortest_decimal() {
        assert_eq!(Decimal::from_f64(1.8734), Some(d("1.8734")));
        assert_eq!(Decimal::from_f64(0.1 + 0.2), Some(d("0.30000000000000004")));
        assert_eq!(Decimal::from_f64(-0.0), Some(Decimal::zero()));
        assert_eq!(Decimal::from_f64(f64::MAX).map(|x| x.top()), Some(309));
        assert_eq!(Decimal::from_f64(f64::NAN), None);
        assert_eq!(Decimal::from_f64(f64::INFINITY), None);
    }

    #[test]
    fn ordering_is_exact() {
        assert!(d("1.9") > d("1.8999999999999999999999999"));
        assert!(d("-2") < d("-1.5"));
        assert!(d("-0.1") < d("0"));
        assert!(d("1e999999999999") > Decimal::from_f64(f64::MAX).unwrap());
        assert!(d("1e-999999999999") < Decimal::from_f64(5e-324).unwrap());
        assert!(d("1e-999999999999") > d("0"));
        assert_eq!(d("2.50").cmp(&d("2.5")), Ordering::Equal);
    }

    #[test]
    fn arithmetic_is_exact() {
        let sum = d("0.1").add(&d("0.2"));
        assert_eq!(sum, d("0.3"));
        assert_eq!(d("0.15").mul_u64(2), sum);
        assert_eq!(d("1").sub(&d("1.0000001")), d("-0.0000001"));
        assert_eq!(d("-3").add(&d("5")), d("2"));
        assert_eq!(d("-3").add(&d("-5")), d("-8"));
        assert_eq!(d("999").add(&d("1")), d("1000"));
        assert_eq!(d("1000").sub(&d("1")), d("999"));
        assert_eq!(d("2.5").mul_u64(u64::MAX), d("46116860184273879037.5"));
        let big = Decimal::from_f64(1e308).unwrap();
        let tiny = Decimal::from_f64(5e-324).unwrap();
        assert!(big.add(&tiny) > big);
        assert_eq!(big.add(&tiny).sub(&big), tiny);
    }
}
