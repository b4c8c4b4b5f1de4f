//! Deterministic inputs: SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom
//! number generators", OOPSLA 2014; the constants of Vigna's reference `splitmix64.c`).
//!
//! A float in `[lo, hi)` is `lo + u · (hi - lo)` with `u = (next() >> 40) · 2^-24`, computed
//! in f32, so the same seed gives bit-identical inputs on every machine.

use crate::error::KernelError;

/// The SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in `[0, 1)` with 24 random bits.
    pub fn next_unit_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
    }
}

/// The half-open range inputs are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InputRange {
    /// Inclusive lower bound.
    pub lo: f32,
    /// Exclusive upper bound.
    pub hi: f32,
}

impl Default for InputRange {
    /// `[-1, 1)`.
    fn default() -> Self {
        InputRange { lo: -1.0, hi: 1.0 }
    }
}

impl InputRange {
    /// Checks that the range is finite and not empty.
    pub fn validate(self) -> Result<(), KernelError> {
        if self.lo.is_finite() && self.hi.is_finite() && self.lo < self.hi && (self.hi - self.lo).is_finite()
        {
            Ok(())
        } else {
            Err(KernelError::InvalidRange { lo: self.lo, hi: self.hi })
        }
    }
}

/// Draws `count` floats in `range`.
pub fn fill(rng: &mut SplitMix64, count: usize, range: InputRange) -> Vec<f32> {
    let width = range.hi - range.lo;
    (0..count)
        .map(|_| {
            let value = range.lo + rng.next_unit_f32() * width;
            // Rounding can land on `hi`; keep the range half-open.
            if value >= range.hi { range.lo } else { value }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_sequence() {
        // First outputs of splitmix64.c seeded with 1234567.
        let mut rng = SplitMix64::new(1234567);
        assert_eq!(rng.next_u64(), 6457827717110365317);
        assert_eq!(rng.next_u64(), 3203168211198807973);
        assert_eq!(rng.next_u64(), 9817491932198370423);
    }

    #[test]
    fn fills_within_range_deterministically() {
        let range = InputRange { lo: -2.0, hi: 3.0 };
        let a = fill(&mut SplitMix64::new(7), 10_000, range);
        let b = fill(&mut SplitMix64::new(7), 10_000, range);
        assert_eq!(a, b);
        assert!(a.iter().all(|v| (-2.0..3.0).contains(v)));
        let c = fill(&mut SplitMix64::new(8), 10, range);
        assert_ne!(a[..10], c[..]);
    }

    #[test]
    fn rejects_bad_ranges() {
        assert!(InputRange { lo: 1.0, hi: 1.0 }.validate().is_err());
        assert!(InputRange { lo: f32::NAN, hi: 1.0 }.validate().is_err());
        assert!(InputRange { lo: -f32::MAX, hi: f32::MAX }.validate().is_err());
        assert!(InputRange::default().validate().is_ok());
    }
}
