//! The element types programs compute in (`f32`, `f64`) and the exact semantics of every op
//! (see `docs/program-format.md`): one IEEE round-to-nearest-even rounding per op, fused fma.

use std::ops::{Add, Div, Mul, Sub};

/// A floating-point element type the evaluator runs programs in.
pub trait Float:
    Copy
    + Send
    + Sync
    + PartialOrd
    + Default
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + 'static
{
    /// Clamp bound for the `ldexp` exponent operand.
    const LDEXP_LIMIT: f64;
    const NAN: Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    /// The slice as float32 when `Self` is f32 (lets the float32-only JIT take over).
    fn as_f32(s: &[Self]) -> Option<&[f32]>;
    fn as_f32_mut(s: &mut [Self]) -> Option<&mut [f32]>;
    fn fused_mul_add(a: Self, b: Self, c: Self) -> Self;
    fn neg(self) -> Self;
    fn abs(self) -> Self;
    fn sqrt(self) -> Self;
    fn rint(self) -> Self;
    fn floor(self) -> Self;
    fn is_nan(self) -> bool;
    /// Bitwise OR / AND of the two values' bit patterns (used for signed-zero min/max).
    fn bit_or(self, other: Self) -> Self;
    fn bit_and(self, other: Self) -> Self;
    fn ldexp(self, k: Self) -> Self;
    fn getexp(self) -> Self;
    fn getmant(self) -> Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn pow(self, b: Self) -> Self;

    /// `min` per the spec: NaN if either is NaN; for equal operands `a`, except -0 wins over +0.
    #[inline(always)]
    fn min_op(a: Self, b: Self) -> Self {
        if a < b {
            a
        } else if b < a {
            b
        } else if a.is_nan() || b.is_nan() {
            Self::NAN
        } else {
            a.bit_or(b)
        }
    }

    /// `max` per the spec: NaN if either is NaN; for equal operands `a`, except +0 wins over -0.
    #[inline(always)]
    fn max_op(a: Self, b: Self) -> Self {
        if a > b {
            a
        } else if b > a {
            b
        } else if a.is_nan() || b.is_nan() {
            Self::NAN
        } else {
            a.bit_and(b)
        }
    }
}

/// The methods whose code is the same for both element types up to the type and its bit layout
/// (`$u` the bit-pattern type, `$mant` the stored mantissa bits, `$bias` the exponent bias); the
/// few that differ (`as_f32`, `from_f64`, `to_f64`, `ldexp`, the libm calls) are passed in.
macro_rules! impl_float {
    ($t:ident, $u:ident, mant: $mant:expr, bias: $bias:expr, ldexp_limit: $limit:expr,
     exp: $exp:path, ln: $ln:path, pow: $pow:path, { $($specific:tt)* }) => {
        impl Float for $t {
            const LDEXP_LIMIT: f64 = $limit;
            const NAN: $t = $t::NAN;
            $($specific)*
            #[inline(always)]
            fn fused_mul_add(a: $t, b: $t, c: $t) -> $t {
                a.mul_add(b, c)
            }
            #[inline(always)]
            fn neg(self) -> $t {
                $t::from_bits(self.to_bits() ^ Self::SIGN_BIT)
            }
            #[inline(always)]
            fn abs(self) -> $t {
                $t::from_bits(self.to_bits() & !Self::SIGN_BIT)
            }
            #[inline(always)]
            fn sqrt(self) -> $t {
                $t::sqrt(self)
            }
            #[inline(always)]
            fn rint(self) -> $t {
                self.round_ties_even()
            }
            #[inline(always)]
            fn floor(self) -> $t {
                $t::floor(self)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                $t::is_nan(self)
            }
            #[inline(always)]
            fn bit_or(self, o: $t) -> $t {
                $t::from_bits(self.to_bits() | o.to_bits())
            }
            #[inline(always)]
            fn bit_and(self, o: $t) -> $t {
                $t::from_bits(self.to_bits() & o.to_bits())
            }
            #[inline(always)]
            #[allow(clippy::cast_lossless)] // i32 -> f64 in the f64 expansion; exact small integers
            fn getexp(self) -> $t {
                let bits = self.to_bits() & !Self::SIGN_BIT;
                let e = bits >> $mant;
                if bits == 0 {
                    $t::NEG_INFINITY
                } else if e == Self::EXP_MAX {
                    if bits & Self::MANT_MASK == 0 {
                        $t::INFINITY
                    } else {
                        $t::NAN
                    }
                } else if e == 0 {
                    // subnormal: the leading one's index, less bias + mantissa bits - 1
                    (bits.ilog2() as i32 - ($bias + $mant - 1)) as $t
                } else {
                    (e as i32 - $bias) as $t
                }
            }
            #[inline(always)]
            fn getmant(self) -> $t {
                let bits = self.to_bits();
                let sign = bits & Self::SIGN_BIT;
                let mag = bits & !Self::SIGN_BIT;
                let e = mag >> $mant;
                if mag == 0 || e == Self::EXP_MAX {
                    self
                } else if e == 0 {
                    let top = mag.ilog2(); // index of the leading one, < $mant (mag > 0 here)
                    let m = (mag << ($mant - top)) & Self::MANT_MASK;
                    $t::from_bits(sign | (($bias as $u) << $mant) | m)
                } else {
                    $t::from_bits(sign | (($bias as $u) << $mant) | (mag & Self::MANT_MASK))
                }
            }
            #[inline(always)]
            fn exp(self) -> $t {
                $exp(self)
            }
            #[inline(always)]
            fn ln(self) -> $t {
                $ln(self)
            }
            #[inline(always)]
            fn pow(self, b: $t) -> $t {
                $pow(self, b)
            }
        }

        impl Bits for $t {
            type U = $u;
            const SIGN_BIT: $u = 1 << ($u::BITS - 1);
            const MANT_MASK: $u = (1 << $mant) - 1;
            const EXP_MAX: $u = (1 << ($u::BITS - 1 - $mant)) - 1;
        }
    };
}

/// The bit layout `impl_float!` reads its masks from.
trait Bits {
    type U;
    const SIGN_BIT: Self::U;
    const MANT_MASK: Self::U;
    const EXP_MAX: Self::U;
}

impl_float!(f32, u32, mant: 23, bias: 127, ldexp_limit: 300.0,
    exp: libm::expf, ln: libm::logf, pow: libm::powf, {
    fn as_f32(s: &[f32]) -> Option<&[f32]> {
        Some(s)
    }
    fn as_f32_mut(s: &mut [f32]) -> Option<&mut [f32]> {
        Some(s)
    }
    #[inline(always)]
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn ldexp(self, k: f32) -> f32 {
        if k.is_nan() {
            return f32::NAN;
        }
        // a * 2^k is exact in f64 for |k| <= 300, so the cast is the single rounding.
        let k = f64::from(k).clamp(-Self::LDEXP_LIMIT, Self::LDEXP_LIMIT) as i64;
        (f64::from(self) * f64::from_bits(((k + 1023) as u64) << 52)) as f32
    }
});

impl_float!(f64, u64, mant: 52, bias: 1023, ldexp_limit: 2200.0,
    exp: libm::exp, ln: libm::log, pow: libm::pow, {
    fn as_f32(_: &[f64]) -> Option<&[f32]> {
        None
    }
    fn as_f32_mut(_: &mut [f64]) -> Option<&mut [f32]> {
        None
    }
    #[inline(always)]
    fn from_f64(v: f64) -> f64 {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn ldexp(self, k: f64) -> f64 {
        if k.is_nan() {
            return f64::NAN;
        }
        let k = k.clamp(-Self::LDEXP_LIMIT, Self::LDEXP_LIMIT) as i32;
        libm::scalbn(self, k)
    }
});

#[cfg(test)]
mod tests {
    use super::Float;

    #[test]
    fn fma_is_fused() {
        // (1 + 2^-23)^2 - 1 - 2^-22 = 2^-46 exactly: visible only with one rounding.
        let a = 1.0f32 + f32::EPSILON;
        let r = f32::fused_mul_add(a, a, -(1.0 + 2.0 * f32::EPSILON));
        assert_eq!(r, 2f32.powi(-46));
    }

    #[test]
    fn min_max_signed_zero_and_nan() {
        assert_eq!(f32::min_op(0.0, -0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(f32::min_op(-0.0, 0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(f32::max_op(-0.0, 0.0).to_bits(), 0.0f32.to_bits());
        assert!(f32::min_op(f32::NAN, 1.0).is_nan());
        assert!(f32::max_op(1.0, f32::NAN).is_nan());
        assert_eq!(f32::min_op(2.0, 3.0), 2.0);
        assert_eq!(f32::max_op(2.0, 3.0), 3.0);
    }

    #[test]
    fn getexp_getmant_cover_subnormals() {
        let tiny = f32::from_bits(1);
        assert_eq!(tiny.getexp(), -149.0);
        assert_eq!(tiny.getmant(), 1.0);
        assert_eq!(f32::from_bits(3).getmant(), 1.5);
        assert_eq!(0.75f32.getexp(), -1.0);
        assert_eq!((-0.75f32).getmant(), -1.5);
        assert_eq!(0.0f32.getexp(), f32::NEG_INFINITY);
        assert_eq!(f32::INFINITY.getexp(), f32::INFINITY);
        assert_eq!(f64::from_bits(1).getexp(), -1074.0);
        assert_eq!(f64::from_bits(1).getmant(), 1.0);
        for &v in &[1e-40f32, 3.5, 1e30, -7.25e-39] {
            assert_eq!(v.getmant().ldexp(v.getexp()), v);
        }
    }

    #[test]
    fn ldexp_rounds_once_into_subnormals() {
        // 1.5 * 2^-149 is a tie between 2^-149 and 2^-148: ties-to-even gives 2^-148.
        assert_eq!(1.5f32.ldexp(-149.0).to_bits(), 2);
        assert_eq!(1.0f32.ldexp(1000.0), f32::INFINITY);
        assert_eq!(1.0f32.ldexp(-1000.0), 0.0);
        assert!(1.0f32.ldexp(f32::NAN).is_nan());
        assert_eq!(3.0f32.ldexp(2.9), 12.0);
        assert_eq!(3.0f64.ldexp(-2.9), 0.75);
    }

    #[test]
    fn rint_ties_to_even() {
        assert_eq!(2.5f32.rint(), 2.0);
        assert_eq!(3.5f32.rint(), 4.0);
        assert_eq!((-0.5f32).rint().to_bits(), (-0.0f32).to_bits());
    }
}
