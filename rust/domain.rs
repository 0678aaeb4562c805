//! Every float32 in a closed interval, enumerated by bit pattern.
//!
//! `key` maps float32 values to consecutive integers in value order, -0 just below +0, so an
//! interval [a, b] is the key range [key(a), key(b)].

/// Position of a non-NaN float32 in value order (-0 is -1, +0 is 0).
#[inline(always)]
pub fn key(v: f32) -> i64 {
    let b = v.to_bits();
    if b & 0x8000_0000 == 0 {
        i64::from(b)
    } else {
        -1 - i64::from(b & 0x7fff_ffff)
    }
}

/// Inverse of `key`.
#[inline(always)]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn from_key(k: i64) -> f32 {
    if k >= 0 {
        f32::from_bits(k as u32)
    } else {
        f32::from_bits(0x8000_0000 | (-1 - k) as u32)
    }
}

/// Why a domain was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainError(pub String);

/// The key range of [a, b], checking the bounds.
pub fn key_range(a: f32, b: f32) -> Result<(i64, i64), DomainError> {
    if a.is_nan() || b.is_nan() {
        return Err(DomainError(format!(
            "domain bounds must not be NaN (got [{a}, {b}])"
        )));
    }
    if a > b {
        return Err(DomainError(format!(
            "empty domain: lower bound {a} > upper bound {b}"
        )));
    }
    Ok((key(a), key(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_monotone_and_invertible() {
        let vals = [
            f32::NEG_INFINITY,
            -1.0,
            -f32::from_bits(1),
            -0.0,
            0.0,
            f32::from_bits(1),
            1.0,
            f32::INFINITY,
        ];
        for w in vals.windows(2) {
            assert_eq!(key(w[0]) < key(w[1]), true, "{:?}", w);
        }
        for v in vals {
            assert_eq!(from_key(key(v)).to_bits(), v.to_bits());
        }
        assert_eq!(key(-0.0) + 1, key(0.0));
    }

    #[test]
    fn unit_interval_count() {
        let (lo, hi) = key_range(0.0, 1.0).unwrap();
        assert_eq!(hi - lo + 1, 0x3f80_0000 + 1);
        assert!(key_range(1.0, 0.0).is_err());
        assert!(key_range(f32::NAN, 0.0).is_err());
    }
}
