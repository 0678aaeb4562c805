//! Every float32 in a closed interval, enumerated by bit pattern.
//!
//! `key` maps float32 values to consecutive integers in value order, -0 just below +0, so an
//! interval [a, b] is the key range [key(a), key(b)].

use crate::errors::CoreError;

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

/// The key range of [a, b], checking the bounds (`CoreError::Domain` for NaN or reversed ones).
pub fn key_range(a: f32, b: f32) -> Result<(i64, i64), CoreError> {
    if a.is_nan() || b.is_nan() {
        return Err(CoreError::Domain(format!(
            "domain bounds must not be NaN (got [{a}, {b}])"
        )));
    }
    if a > b {
        return Err(CoreError::Domain(format!(
            "empty domain: lower bound {a} > upper bound {b}"
        )));
    }
    Ok((key(a), key(b)))
}

/// The number of float32 values with keys in [lo, hi] (`lo <= hi`), as a length.
pub fn key_count(lo: i64, hi: i64) -> Result<usize, CoreError> {
    // at most 2^32 keys: fits usize on the 64-bit targets this crate builds for
    usize::try_from(hi - lo + 1)
        .map_err(|_| CoreError::Domain(format!("cannot scan {} values here", hi - lo + 1)))
}

/// The keys of -inf and inf: every non-NaN float32 has a key in between.
pub const KEY_MIN: i64 = -1 - 0x7f80_0000;
pub const KEY_MAX: i64 = 0x7f80_0000;

/// Checks that keys `start..start + count` all lie in `[KEY_MIN, KEY_MAX]` (`count >= 0`) and
/// returns `count` as a length; else `CoreError::Domain` naming the keys.
pub fn keys_span(start: i64, count: i64) -> Result<usize, CoreError> {
    let last = start.checked_add(count - 1);
    match last {
        Some(last) if start >= KEY_MIN && count >= 0 && (count == 0 || last <= KEY_MAX) => {
            usize::try_from(count)
                .map_err(|_| CoreError::Domain(format!("cannot make {count} float32 values here")))
        }
        _ => Err(CoreError::Domain(format!(
            "keys {start}..{} are outside the float32 keys (-inf to inf) [{KEY_MIN}, {KEY_MAX}]",
            start.saturating_add(count - 1)
        ))),
    }
}

/// `out[i] = from_key(start + first + i)`: the values with keys from `start + first` on
/// (one part of a call that writes `keys_span(start, count)` values in parts).
pub fn from_keys_into(start: i64, first: usize, out: &mut [f32]) {
    for (i, o) in (first..).zip(out) {
        #[allow(clippy::cast_possible_wrap)] // at most 2^32 keys
        let i = i as i64;
        *o = from_key(start + i);
    }
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
            assert!(key(w[0]) < key(w[1]), "{w:?}");
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
        assert_eq!(key_count(lo, hi), Ok(0x3f80_0001));
    }

    #[test]
    fn key_spans_stay_within_minus_inf_to_inf() {
        assert_eq!(
            (KEY_MIN, KEY_MAX),
            (key(f32::NEG_INFINITY), key(f32::INFINITY))
        );
        assert_eq!(keys_span(KEY_MIN, KEY_MAX - KEY_MIN + 1), Ok(0xff00_0002));
        assert_eq!(keys_span(KEY_MAX, 0), Ok(0));
        assert!(matches!(keys_span(KEY_MAX, 2), Err(CoreError::Domain(_))));
        assert!(matches!(
            keys_span(KEY_MIN - 1, 1),
            Err(CoreError::Domain(_))
        ));
        let mut out = [0f32; 3];
        from_keys_into(key(1.0), 1, &mut out);
        assert_eq!(out[0], f32::from_bits(1.0f32.to_bits() + 1));
    }
}
