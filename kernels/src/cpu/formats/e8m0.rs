//! E8M0: an 8-bit unsigned power-of-two scale, value 2^(code-127); code 0xFF is NaN. No
//! sign, no zero, no infinity. Used as the MXFP4 block scale (one per 32 elements).

use super::e2m1::E2M1_MAX;
use super::{floor_log2, pow2};

/// The NaN code.
pub const E8M0_NAN: u8 = 0xFF;

/// 2^(code-127); NaN for 0xFF. Code 0 is 2^-127, an f32 subnormal, represented exactly.
pub fn e8m0_decode(code: u8) -> f32 {
    if code == E8M0_NAN { f32::NAN } else { pow2(i32::from(code) - 127) }
}

/// Rounds `x` to the nearest power of two 2^-127..=2^127, ties (x = 1.5 · 2^e) to the even
/// code. Saturating: above 2^127 (and +inf) gives 254; zero and values below 2^-127 give 0.
/// NaN and negative values (which no scale can be) give NaN.
pub fn e8m0_encode(x: f32) -> u8 {
    if x.is_nan() || x < 0.0 {
        return E8M0_NAN;
    }
    if x == 0.0 {
        return 0;
    }
    if x.is_infinite() {
        return 254;
    }
    let bits = x.to_bits();
    let exponent = bits >> 23; // sign is 0 here
    let mantissa = bits & 0x007F_FFFF;
    let code = if exponent == 0 {
        // Subnormal f32: value = mantissa · 2^-149; 2^-127 is mantissa 1<<22, the midpoint
        // between 2^-127 and 2^-126 is mantissa 3<<21 (tie goes to code 0, which is even).
        if mantissa > 3 << 21 { 1 } else { 0 }
    } else {
        // The E8M0 code equals the f32 exponent field; round on the mantissa.
        let half = 1u32 << 22;
        let round_up = mantissa > half || (mantissa == half && exponent % 2 == 1);
        exponent + u32::from(round_up)
    };
    code.min(254) as u8
}

/// The MXFP4 block scale code for a block whose largest magnitude is `amax`, per the OCP MX
/// specification: `shared_exp = floor(log2(amax)) - emax(E2M1)` with emax(E2M1) = 2, clamped
/// to the E8M0 range. A block of zeros gets scale 1.0 (code 127); a non-finite `amax` gets NaN.
pub fn e8m0_scale_for_block(amax: f32) -> u8 {
    if !amax.is_finite() || amax < 0.0 {
        return E8M0_NAN;
    }
    if amax == 0.0 {
        return 127;
    }
    let emax_element = floor_log2(E2M1_MAX);
    let shared_exp = (floor_log2(amax) - emax_element).clamp(-127, 127);
    (shared_exp + 127) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_codes() {
        assert_eq!(e8m0_decode(0), f32::from_bits(0x0040_0000));
        assert_eq!(e8m0_decode(0), 2f64.powi(-127) as f32);
        assert_eq!(e8m0_decode(127), 1.0);
        assert_eq!(e8m0_decode(128), 2.0);
        assert_eq!(e8m0_decode(126), 0.5);
        assert_eq!(e8m0_decode(254), 2f32.powi(127));
        assert!(e8m0_decode(255).is_nan());
    }

    #[test]
    fn round_trips_every_finite_code() {
        for code in 0u8..=254 {
            assert_eq!(e8m0_encode(e8m0_decode(code)), code, "code {code}");
        }
    }

    #[test]
    fn rounds_to_nearest_power_of_two() {
        assert_eq!(e8m0_encode(1.4), 127);
        assert_eq!(e8m0_encode(1.6), 128);
        assert_eq!(e8m0_encode(1.5), 128); // tie: 2^1 (code 128, even) over 2^0 (code 127)
        assert_eq!(e8m0_encode(3.0), 128); // tie: 2^1 (code 128) over 2^2 (code 129)
        assert_eq!(e8m0_encode(0.75), 126); // tie: 2^-1 (code 126) over 2^0 (code 127)
        assert_eq!(e8m0_encode(f32::from_bits(3 << 21)), 0); // tie at the bottom
        assert_eq!(e8m0_encode(f32::from_bits((3 << 21) + 1)), 1);
    }

    #[test]
    fn saturates_and_handles_specials() {
        assert_eq!(e8m0_encode(f32::MAX), 254);
        assert_eq!(e8m0_encode(f32::INFINITY), 254);
        assert_eq!(e8m0_encode(0.0), 0);
        assert_eq!(e8m0_encode(f32::from_bits(1)), 0);
        assert_eq!(e8m0_encode(f32::NAN), E8M0_NAN);
        assert_eq!(e8m0_encode(-1.0), E8M0_NAN);
    }

    #[test]
    fn block_scales_follow_the_mx_rule() {
        // amax 6 = 1.5 · 2^2 → shared_exp 0 → scale 1, and 6 is representable.
        assert_eq!(e8m0_scale_for_block(6.0), 127);
        // amax 1 → shared_exp -2 → scale 0.25: 1 / 0.25 = 4.
        assert_eq!(e8m0_scale_for_block(1.0), 125);
        // amax 7.9 → floor(log2) 2 → scale 1; 7.9 saturates to 6 as the spec allows.
        assert_eq!(e8m0_scale_for_block(7.9), 127);
        assert_eq!(e8m0_scale_for_block(0.0), 127);
        assert_eq!(e8m0_scale_for_block(f32::from_bits(1)), 0);
        assert_eq!(e8m0_scale_for_block(f32::MAX), 125 + 127);
        assert_eq!(e8m0_scale_for_block(f32::NAN), E8M0_NAN);
        assert_eq!(e8m0_scale_for_block(f32::INFINITY), E8M0_NAN);
    }
}
