//! Narrow number formats of block-scaled FP4 (OCP Microscaling Formats (MX) v1.0 and NVIDIA's
//! NVFP4): E2M1 elements, E8M0 and E4M3 scales, and two-per-byte packing.
//!
//! Encoders round to nearest, ties to even, and saturate to the largest finite value, as the
//! MX specification prescribes for conversions into these formats.

mod block;
mod e2m1;
mod e4m3;
mod e8m0;
mod pack;

pub use block::{Fp4Format, QuantizedMatrix};
pub use e2m1::{E2M1_MAX, e2m1_decode, e2m1_encode};
pub use e4m3::{E4M3_MAX, E4M3_NAN, e4m3_decode, e4m3_encode};
pub use e8m0::{E8M0_NAN, e8m0_decode, e8m0_encode, e8m0_scale_for_block};
pub use pack::{pack_nibbles, unpack_nibble, unpack_nibbles};

/// 2^k as an f32, exact for every k in [-149, 127] (subnormals included); 0 below, +inf above.
pub(crate) fn pow2(k: i32) -> f32 {
    if k > 127 {
        f32::INFINITY
    } else if k >= -126 {
        f32::from_bits(((k + 127) as u32) << 23)
    } else if k >= -149 {
        f32::from_bits(1u32 << (k + 149))
    } else {
        0.0
    }
}

/// floor(log2(x)) for a finite x > 0, exact (subnormals included).
pub(crate) fn floor_log2(x: f32) -> i32 {
    let bits = x.to_bits() & 0x7FFF_FFFF;
    let exponent = (bits >> 23) as i32;
    if exponent > 0 {
        exponent - 127
    } else {
        // Subnormal: value = mantissa * 2^-149.
        let mantissa = bits & 0x007F_FFFF;
        31 - mantissa.leading_zeros() as i32 - 149
    }
}

/// Index of the value nearest to `a` among `decode(0..=max_code)` (which must increase with
/// the code), ties to the even code. `a` must be in `[decode(0), decode(max_code)]`.
pub(crate) fn nearest_code(a: f32, max_code: u8, decode: impl Fn(u8) -> f32) -> u8 {
    let (mut lo, mut hi) = (0u8, max_code);
    if decode(hi) <= a {
        return hi;
    }
    // Invariant: decode(lo) <= a < decode(hi).
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if decode(mid) <= a {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let below = f64::from(a) - f64::from(decode(lo));
    let above = f64::from(decode(hi)) - f64::from(a);
    if below < above || (below == above && lo.is_multiple_of(2)) { lo } else { hi }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow2_is_exact() {
        assert_eq!(pow2(0), 1.0);
        assert_eq!(pow2(-127), f32::from_bits(0x0040_0000));
        assert_eq!(pow2(-149), f32::from_bits(1));
        assert_eq!(pow2(127), 2f32.powi(127));
        assert_eq!(pow2(-150), 0.0);
        assert_eq!(pow2(128), f32::INFINITY);
    }

    #[test]
    fn floor_log2_is_exact() {
        assert_eq!(floor_log2(1.0), 0);
        assert_eq!(floor_log2(1.99), 0);
        assert_eq!(floor_log2(6.0), 2);
        assert_eq!(floor_log2(0.75), -1);
        assert_eq!(floor_log2(f32::from_bits(1)), -149);
        assert_eq!(floor_log2(f32::from_bits(0x0040_0000)), -127);
        assert_eq!(floor_log2(f32::MAX), 127);
    }
}
