//! FP8 E4M3 (OCP "E4M3FN"): 1 sign bit, 4 exponent bits (bias 7), 3 mantissa bits. No
//! infinities; S.1111.111 is NaN; the largest finite value is 448 (0.1111.110). Subnormals
//! (exponent 0) are m/8 · 2^-6, the smallest 2^-9. Used as the NVFP4 block scale (one per
//! 16 elements).

use super::{nearest_code, pow2};

/// The largest finite E4M3 value.
pub const E4M3_MAX: f32 = 448.0;

/// The positive NaN code (0xFF is the negative one).
pub const E4M3_NAN: u8 = 0x7F;

/// The value of a code; NaN for 0x7F and 0xFF.
pub fn e4m3_decode(code: u8) -> f32 {
    let exponent = (code >> 3) & 0xF;
    let mantissa = code & 0x7;
    if exponent == 0xF && mantissa == 0x7 {
        return f32::NAN;
    }
    let magnitude = if exponent == 0 {
        f32::from(mantissa) * pow2(-9)
    } else {
        f32::from(8 + mantissa) * pow2(i32::from(exponent) - 10)
    };
    if code & 0x80 != 0 { -magnitude } else { magnitude }
}

/// Rounds `x` to the nearest E4M3 value, ties to even, saturating: magnitudes of 448 and
/// above (and infinities) give ±448. NaN gives NaN (sign kept).
pub fn e4m3_encode(x: f32) -> u8 {
    let sign = if x.is_sign_negative() { 0x80 } else { 0 };
    if x.is_nan() {
        return sign | E4M3_NAN;
    }
    let magnitude = x.abs();
    if magnitude >= E4M3_MAX {
        return sign | 0x7E;
    }
    sign | nearest_code(magnitude, 0x7E, e4m3_decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_codes() {
        assert_eq!(e4m3_decode(0x7E), 448.0);
        assert_eq!(e4m3_decode(0xFE), -448.0);
        assert!(e4m3_decode(0x7F).is_nan());
        assert!(e4m3_decode(0xFF).is_nan());
        assert_eq!(e4m3_decode(0x00), 0.0);
        assert!(e4m3_decode(0x80).is_sign_negative());
        assert_eq!(e4m3_decode(0x01), 2f32.powi(-9)); // smallest subnormal
        assert_eq!(e4m3_decode(0x07), 7.0 * 2f32.powi(-9)); // largest subnormal
        assert_eq!(e4m3_decode(0x08), 2f32.powi(-6)); // smallest normal
        assert_eq!(e4m3_decode(0x38), 1.0);
        assert_eq!(e4m3_decode(0x3C), 1.5);
        assert_eq!(e4m3_decode(0x77), 240.0);
    }

    #[test]
    fn round_trips_every_code() {
        for code in 0u8..=255 {
            let value = e4m3_decode(code);
            if value.is_nan() {
                assert_eq!(e4m3_encode(value) & 0x7F, E4M3_NAN);
            } else {
                assert_eq!(e4m3_encode(value), code, "code {code:#x} value {value}");
            }
        }
    }

    #[test]
    fn rounds_to_nearest_even() {
        // Between 1.0 (0x38) and 1.125 (0x39): the midpoint goes to 0x38 (even).
        assert_eq!(e4m3_encode(1.0625), 0x38);
        assert_eq!(e4m3_encode(1.0626), 0x39);
        // Between 1.125 (0x39) and 1.25 (0x3A): the midpoint goes to 0x3A.
        assert_eq!(e4m3_encode(1.1875), 0x3A);
        // Subnormals: 1.5 · 2^-9 is a tie between codes 1 and 2.
        assert_eq!(e4m3_encode(1.5 * 2f32.powi(-9)), 0x02);
        // Half the smallest subnormal ties to zero; a little more rounds up.
        assert_eq!(e4m3_encode(2f32.powi(-10)), 0x00);
        assert_eq!(e4m3_encode(2f32.powi(-10) * 1.01), 0x01);
        // Between 416 (0x7D) and 448 (0x7E).
        assert_eq!(e4m3_encode(432.0), 0x7E);
        assert_eq!(e4m3_encode(431.0), 0x7D);
    }

    #[test]
    fn saturates() {
        assert_eq!(e4m3_encode(448.0), 0x7E);
        assert_eq!(e4m3_encode(464.0), 0x7E);
        assert_eq!(e4m3_encode(1e9), 0x7E);
        assert_eq!(e4m3_encode(f32::INFINITY), 0x7E);
        assert_eq!(e4m3_encode(f32::NEG_INFINITY), 0xFE);
        assert_eq!(e4m3_encode(f32::NAN), E4M3_NAN);
        assert_eq!(e4m3_encode(-f32::NAN), 0xFF);
    }
}
