//! FP4 E2M1: 1 sign bit, 2 exponent bits (bias 1), 1 mantissa bit; no infinities or NaN.
//!
//! | code (magnitude bits) | 000 | 001 | 010 | 011 | 100 | 101 | 110 | 111 |
//! |---|---|---|---|---|---|---|---|---|
//! | value | 0 | 0.5 | 1 | 1.5 | 2 | 3 | 4 | 6 |
//!
//! Bit 3 is the sign, so codes 8..=15 are the negatives (8 is -0).

use super::nearest_code;

/// The largest E2M1 magnitude.
pub const E2M1_MAX: f32 = 6.0;

const MAGNITUDES: [f32; 8] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];

/// The value of a 4-bit code (only the low nibble is read).
pub fn e2m1_decode(code: u8) -> f32 {
    let magnitude = MAGNITUDES[usize::from(code & 0x7)];
    if code & 0x8 != 0 { -magnitude } else { magnitude }
}

/// Rounds `x` to the nearest E2M1 code, ties to even; magnitudes beyond 6 (and infinities)
/// saturate to ±6. E2M1 has no NaN: NaN encodes as +0 (block formats carry NaN in the scale).
pub fn e2m1_encode(x: f32) -> u8 {
    if x.is_nan() {
        return 0;
    }
    let sign = if x.is_sign_negative() { 0x8 } else { 0 };
    let magnitude = x.abs();
    let code = if magnitude >= E2M1_MAX {
        7
    } else {
        nearest_code(magnitude, 7, |code| MAGNITUDES[usize::from(code)])
    };
    sign | code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_sixteen_codes_decode_exactly() {
        let expected =
            [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0];
        for (code, want) in (0u8..16).zip(expected) {
            let got = e2m1_decode(code);
            assert_eq!(got, want, "code {code}");
            assert_eq!(got.is_sign_negative(), code >= 8, "sign of code {code}");
            assert_eq!(e2m1_encode(want), code, "round trip of {want}");
        }
    }

    #[test]
    fn rounds_to_nearest_even() {
        let cases = [
            (0.25, 0.0), // tie: 0 (code 0) over 0.5 (code 1)
            (0.2500001, 0.5),
            (0.75, 1.0), // tie: code 2 over code 1
            (1.25, 1.0), // tie: code 2 over code 3
            (1.75, 2.0), // tie: code 4 over code 3
            (2.5, 2.0),  // tie: code 4 over code 5
            (3.5, 4.0),  // tie: code 6 over code 5
            (5.0, 4.0),  // tie: code 6 over code 7
            (5.0001, 6.0),
            (2.9, 3.0),
            (0.1, 0.0),
        ];
        for (x, want) in cases {
            assert_eq!(e2m1_decode(e2m1_encode(x)), want, "{x}");
            assert_eq!(e2m1_decode(e2m1_encode(-x)), -want, "-{x}");
        }
    }

    #[test]
    fn saturates_and_handles_specials() {
        assert_eq!(e2m1_encode(7.0), 0x7);
        assert_eq!(e2m1_encode(1e30), 0x7);
        assert_eq!(e2m1_encode(f32::INFINITY), 0x7);
        assert_eq!(e2m1_encode(f32::NEG_INFINITY), 0xF);
        assert_eq!(e2m1_encode(f32::NAN), 0x0);
        assert_eq!(e2m1_encode(-0.0), 0x8);
        assert_eq!(e2m1_encode(-0.1), 0x8);
        assert_eq!(e2m1_encode(f32::from_bits(1)), 0x0);
    }
}
