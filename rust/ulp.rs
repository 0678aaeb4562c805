//! ULP arithmetic for float32 results against an exact (float64) reference.
//!
//! Error in ULPs is |y - f(x)| / ulp(f(x)) with ulp(v) = 2^(max(floor(log2|v|), -126) - 23),
//! the definition libm authors use; the ULP *distance* counts float32 values between y and the
//! correctly rounded f(x).

/// Position of a float32 on the number line, counting representable values (-0 and +0 both 0).
#[inline(always)]
pub fn ord32(v: f32) -> i64 {
    // `domain::key` puts -0 at -1 and every negative one below; shifting the negatives up by one
    // merges the two zeros.
    let k = crate::domain::key(v);
    if k < 0 {
        k + 1
    } else {
        k
    }
}

/// ULP distance between two float32 values (NaN gives `u64::MAX`).
#[inline(always)]
pub fn distance32(a: f32, b: f32) -> u64 {
    if a.is_nan() || b.is_nan() {
        return u64::MAX;
    }
    ord32(a).abs_diff(ord32(b))
}

/// ulp of the float32 binade holding the real value `r` (float64), subnormal range included.
#[inline(always)]
pub fn ulp32(r: f64) -> f64 {
    let biased = ((r.to_bits() >> 52) & 0x7ff) as i64;
    let e = (biased - 1023).clamp(-126, 127);
    f64::from_bits(((e - 23 + 1023) as u64) << 52)
}

/// Tolerance, in float64 ulps, around a float32 rounding midpoint inside which a float64
/// reference (accurate to a few float64 ulps) cannot decide the rounding: 2^-44 relative.
pub const UNDECIDED_TOL: u64 = 1 << 8;

/// 1 / ulp32(r), a power of two, so multiplying by it is exact.
#[inline(always)]
pub fn inv_ulp32(r: f64) -> f64 {
    let biased = ((r.to_bits() >> 52) & 0x7ff) as i64;
    let e = (biased - 1023).clamp(-126, 127);
    f64::from_bits(((23 - e + 1023) as u64) << 52)
}

/// The float32 nearest to `r` (ties to even) and whether `r` lies so close to a midpoint
/// between two float32 values that the float64 reference cannot decide the rounding.
#[inline(always)]
#[allow(clippy::cast_possible_truncation)]
pub fn round32(r: f64) -> (f32, bool) {
    let c = r as f32;
    let bits = r.to_bits() & 0x7fff_ffff_ffff_ffff;
    let e = (bits >> 52) as i64;
    // float64 mantissa bits that float32 drops: 29 in the normal range, more for subnormals.
    let shift = 29 + (1023 - 126 - e).max(0);
    let undecided = if e == 0x7ff || !c.is_finite() {
        false
    } else if shift >= 53 {
        // below 2^-149: only a value near 2^-150 (the tie between 0 and the least subnormal) is close.
        e == 1023 - 150 && (bits & 0xf_ffff_ffff_ffff) <= UNDECIDED_TOL
            || e == 1023 - 151 && (bits & 0xf_ffff_ffff_ffff) >= 0xf_ffff_ffff_ffff - UNDECIDED_TOL
    } else {
        let m = (bits & 0xf_ffff_ffff_ffff) | (1 << 52);
        let low = m & ((1u64 << shift) - 1);
        low.abs_diff(1u64 << (shift - 1)) <= UNDECIDED_TOL
    };
    (c, undecided)
}

/// Error of one output `y` against the reference `r` whose correct rounding is `cr`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PointError {
    /// |y - r| / ulp32(r); infinite for a wrong NaN/inf.
    pub ulps: f64,
    /// ULP distance to `cr` (`u64::MAX` when y is NaN and f is not).
    pub distance: u64,
    /// y is NaN or infinite where f is finite (after rounding to float32).
    pub nonfinite: bool,
}

#[inline(always)]
pub fn point_error(y: f32, r: f64, cr: f32) -> PointError {
    const EXACT: PointError = PointError {
        ulps: 0.0,
        distance: 0,
        nonfinite: false,
    };
    if y.is_finite() && r.is_finite() && cr.is_finite() {
        return PointError {
            ulps: (f64::from(y) - r).abs() * inv_ulp32(r),
            distance: distance32(y, cr),
            nonfinite: false,
        };
    }
    if r.is_nan() {
        // f is undefined here: only NaN is right.
        return if y.is_nan() {
            EXACT
        } else {
            PointError {
                ulps: f64::INFINITY,
                distance: u64::MAX,
                nonfinite: false,
            }
        };
    }
    if y.is_nan() {
        return PointError {
            ulps: f64::INFINITY,
            distance: u64::MAX,
            nonfinite: true,
        };
    }
    let yd = f64::from(y);
    if r.is_infinite() || cr.is_infinite() {
        // a true infinity, or a value that overflows float32: the matching infinity is exact.
        if yd == r || y == cr {
            return EXACT;
        }
        if r.is_infinite() || y.is_infinite() {
            return PointError {
                ulps: f64::INFINITY,
                distance: distance32(y, cr),
                nonfinite: y.is_infinite(),
            };
        }
    } else if y.is_infinite() {
        return PointError {
            ulps: f64::INFINITY,
            distance: distance32(y, cr),
            nonfinite: true,
        };
    }
    PointError {
        ulps: (yd - r).abs() * inv_ulp32(r),
        distance: distance32(y, cr),
        nonfinite: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulp_of_binades_and_subnormals() {
        assert_eq!(ulp32(1.0), f64::from(f32::EPSILON));
        assert_eq!(ulp32(1.999), f64::from(f32::EPSILON));
        assert_eq!(ulp32(0.5), f64::from(f32::EPSILON) / 2.0);
        assert_eq!(ulp32(0.0), 2f64.powi(-149));
        assert_eq!(ulp32(1e-40), 2f64.powi(-149));
        assert_eq!(ulp32(-3.0), 2f64.powi(-22));
    }

    #[test]
    fn distance_counts_values_across_zero() {
        assert_eq!(distance32(1.0, f32::from_bits(1.0f32.to_bits() + 3)), 3);
        assert_eq!(distance32(-0.0, 0.0), 0);
        assert_eq!(distance32(f32::from_bits(1), -f32::from_bits(1)), 2);
        assert_eq!(distance32(f32::NAN, 1.0), u64::MAX);
    }

    #[test]
    fn round32_flags_midpoints() {
        let one = 1.0f64;
        let half_ulp = f64::from(f32::EPSILON) / 2.0;
        let (c, amb) = round32(one + half_ulp); // exact tie: ambiguous for a float64 reference
        assert!(amb);
        assert_eq!(c, 1.0);
        let (c, amb) = round32(one + 0.3 * f64::from(f32::EPSILON));
        assert!(!amb);
        assert_eq!(c, 1.0);
        assert_eq!(round32(1e39), (f32::INFINITY, false));
        // subnormal range: 1.5 * 2^-149 is a tie; 1.25 * 2^-149 is not.
        assert!(round32(1.5 * 2f64.powi(-149)).1);
        assert!(!round32(1.25 * 2f64.powi(-149)).1);
        assert!(round32(2f64.powi(-150)).1);
        assert!(!round32(2f64.powi(-152)).1);
        for i in 0..1000 {
            let r = 1.0 + f64::from(i) * 1e-5;
            assert_eq!(inv_ulp32(r) * ulp32(r), 1.0);
        }
    }

    #[test]
    fn point_errors_for_specials() {
        assert_eq!(point_error(f32::NAN, f64::NAN, f32::NAN).ulps, 0.0);
        assert!(point_error(f32::NAN, 1.0, 1.0).nonfinite);
        assert!(point_error(f32::INFINITY, 1.0, 1.0).ulps.is_infinite());
        assert_eq!(point_error(f32::INFINITY, 1e39, f32::INFINITY).ulps, 0.0);
        assert_eq!(
            point_error(f32::NEG_INFINITY, f64::NEG_INFINITY, f32::NEG_INFINITY).ulps,
            0.0
        );
        let e = point_error(
            1.0,
            1.0 + 1.5 * f64::from(f32::EPSILON),
            1.0 + 2.0 * f32::EPSILON,
        );
        assert_eq!(e.ulps, 1.5);
        assert_eq!(e.distance, 2);
    }
}
