//! Reference values of the built-in targets in float64 (the `libm` crate, a port of musl),
//! accurate to a few float64 ulps: ample for float32 errors, with rounding ties resolved by
//! the caller in high precision (see `ulp::round32`). exp2 over many float32 inputs has a
//! vectorised path of the same accuracy (`exp2_many`), since it dominates exhaustive checks.

use crate::errors::CoreError;

/// The built-in targets in one table: variant, name, and f(x) in float64 over `x: f64`; it
/// defines the `Target` enum, `Target::ALL` and `Target::eval`.
macro_rules! targets {
    ($($variant:ident $name:literal => |$x:ident| $body:expr;)*) => {
        /// A built-in target function.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Target {
            $($variant,)*
        }

        impl Target {
            pub const ALL: [(&'static str, Target); [$($name),*].len()] =
                [$(($name, Target::$variant)),*];

            /// f(x) in float64.
            #[inline]
            pub fn eval(self, x: f64) -> f64 {
                match self {
                    $(Target::$variant => {
                        let $x = x;
                        $body
                    })*
                }
            }
        }
    };
}

targets! {
    Exp "exp" => |x| libm::exp(x);
    Exp2 "exp2" => |x| libm::exp2(x);
    Expm1 "expm1" => |x| libm::expm1(x);
    Log "log" => |x| libm::log(x);
    Log2 "log2" => |x| libm::log2(x);
    Log1p "log1p" => |x| libm::log1p(x);
    Sin "sin" => |x| libm::sin(x);
    Cos "cos" => |x| libm::cos(x);
    Tanh "tanh" => |x| libm::tanh(x);
    Sigmoid "sigmoid" => |x| 1.0 / (1.0 + libm::exp(-x));
    Erf "erf" => |x| libm::erf(x);
    Sqrt "sqrt" => |x| libm::sqrt(x);
    Rsqrt "rsqrt" => |x| 1.0 / libm::sqrt(x);
}

impl Target {
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, t)| t)
    }

    /// The target called `name`, or `CoreError::UnknownTarget` listing the built-in names.
    pub fn named(name: &str) -> Result<Target, CoreError> {
        Target::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = Target::ALL.iter().map(|(n, _)| *n).collect();
            CoreError::UnknownTarget(format!(
                "unknown target {name:?}; built-in targets: {}",
                names.join(", ")
            ))
        })
    }

    /// f at every float32 input, in float64: `out[i] = f(x[i])`.
    ///
    /// # Panics
    /// If `x` and `out` differ in length.
    pub fn eval_many(self, x: &[f32], out: &mut [f64]) {
        assert_eq!(x.len(), out.len(), "input and output lengths differ");
        match self {
            Target::Exp2 => exp2_many(x, out),
            _ => {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = self.eval(f64::from(v));
                }
            }
        }
    }
}

/// Taylor coefficients (ln 2)^n / n!, n = 0..=13, each the float64 nearest to the exact value.
/// On |r| <= 1/2 the truncation error is below (ln 2 / 2)^14 / 14! < 4.2e-18 (0.04 float64 ulp
/// of 2^r); with the coefficients' and Horner's roundings the result stays within 2 float64 ulps
/// (tested against `libm::exp2` on millions of float32 inputs and against mpmath from Python).
const EXP2_TAYLOR: [f64; 14] = [
    1.0,
    std::f64::consts::LN_2,
    0.24022650695910072,
    0.05550410866482158,
    0.009618129107628477,
    0.0013333558146428443,
    0.0001540353039338161,
    1.5252733804059841e-05,
    1.321548679014431e-06,
    1.01780860092397e-07,
    7.054911620801123e-09,
    4.4455382718708116e-10,
    2.5678435993488206e-11,
    1.3691488853904128e-12,
];

/// 1.5 * 2^52: adding it rounds a float64 of magnitude < 2^51 to an integer held in the low
/// mantissa bits.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

/// Inputs with |x| above this take the scalar libm path (and so do NaNs).
const EXP2_FAST_LIMIT: f64 = 1000.0;

/// 2^x = 2^k * 2^r with k = round(x), r = x - k exact (x is a float32), 2^r by Taylor-Horner.
/// Valid for |x| <= `EXP2_FAST_LIMIT`, where 2^k is a normal float64.
#[inline(always)]
fn exp2_fast(v: f32) -> f64 {
    let x = f64::from(v).clamp(-EXP2_FAST_LIMIT, EXP2_FAST_LIMIT);
    let t = x + ROUNDER;
    let k = t - ROUNDER;
    let r = x - k;
    let mut p = EXP2_TAYLOR[13];
    for &c in EXP2_TAYLOR[..13].iter().rev() {
        p = p.mul_add(r, c);
    }
    // bits(t) = bits(ROUNDER) + k, so the exponent field of 2^k is bits(t) - bits(ROUNDER) + 1023
    let scale = f64::from_bits(
        t.to_bits()
            .wrapping_sub(ROUNDER.to_bits())
            .wrapping_add(1023)
            << 52,
    );
    p * scale
}

#[inline(always)]
fn exp2_many_generic(x: &[f32], out: &mut [f64]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = exp2_fast(v);
    }
    // NaNs and inputs beyond the fast range (rare) are redone by libm
    #[allow(clippy::cast_possible_truncation)]
    let limit = EXP2_FAST_LIMIT as f32;
    if x.iter()
        .fold(false, |any, &v| any | v.is_nan() | (v.abs() > limit))
    {
        for (o, &v) in out.iter_mut().zip(x) {
            if v.is_nan() || v.abs() > limit {
                *o = libm::exp2(f64::from(v));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(unsafe_code)]
unsafe fn exp2_many_avx2(x: &[f32], out: &mut [f64]) {
    exp2_many_generic(x, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
#[allow(unsafe_code)]
unsafe fn exp2_many_avx512(x: &[f32], out: &mut [f64]) {
    exp2_many_generic(x, out);
}

/// exp2 of every float32 in `x`, vectorised where the CPU allows (the same values on every
/// path: each lane computes the same fused operations).
#[allow(unsafe_code)]
pub fn exp2_many(x: &[f32], out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::eval::isa() == crate::eval::Isa::Avx512 {
            // SAFETY: `eval::isa` reports AVX-512 only where the CPU has AVX-512 F, DQ and VL
            // (and so AVX2 and FMA).
            return unsafe { exp2_many_avx512(x, out) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the enabled target features (checked just above).
            return unsafe { exp2_many_avx2(x, out) };
        }
    }
    exp2_many_generic(x, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_values_are_sane() {
        for (name, t) in Target::ALL {
            assert_eq!(Target::from_name(name), Some(t));
        }
        assert_eq!(Target::from_name("nope"), None);
        assert!(
            matches!(Target::named("nope"), Err(CoreError::UnknownTarget(m)) if m.contains("exp2"))
        );
        assert_eq!(Target::Exp2.eval(10.0), 1024.0);
        assert_eq!(Target::Log2.eval(0.25), -2.0);
        assert_eq!(Target::Rsqrt.eval(4.0), 0.5);
        assert!((Target::Sigmoid.eval(0.0) - 0.5).abs() < 1e-16);
        assert!(Target::Log.eval(-1.0).is_nan());
    }

    /// Distance in float64 ulps (both values positive or both zero/inf).
    fn ulps_apart(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64).abs_diff(b.to_bits() as i64)
    }

    #[test]
    fn fast_exp2_agrees_with_libm() {
        // every 97th float32 in [-160, 130] plus the edges of the fast range and specials
        let mut x: Vec<f32> = Vec::new();
        let (lo, hi) = (crate::domain::key(-160.0), crate::domain::key(130.0));
        let mut k = lo;
        while k <= hi {
            x.push(crate::domain::from_key(k));
            k += 97;
        }
        x.extend([
            0.0,
            -0.0,
            0.5,
            -0.5,
            999.9,
            1000.0,
            1000.5,
            -1000.0,
            -1000.5,
            1024.0,
            -1074.0,
            -1075.0,
            -1100.0,
            f32::MAX,
            -f32::MAX,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ]);
        let mut fast = vec![0f64; x.len()];
        exp2_many(&x, &mut fast);
        let mut plain = vec![0f64; x.len()];
        exp2_many_generic(&x, &mut plain);
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            let mut avx2 = vec![0f64; x.len()];
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            #[allow(unsafe_code)]
            unsafe {
                exp2_many_avx2(&x, &mut avx2);
            }
            assert!(avx2
                .iter()
                .zip(&plain)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
        let mut worst = 0;
        for ((&v, &f), &g) in x.iter().zip(&fast).zip(&plain) {
            let want = libm::exp2(f64::from(v));
            assert_eq!(
                f.to_bits(),
                g.to_bits(),
                "vectorised and scalar differ at {v:e}"
            );
            if want.is_nan() {
                assert!(f.is_nan());
                continue;
            }
            let d = ulps_apart(f, want);
            worst = worst.max(d);
            assert!(
                d <= 2,
                "exp2({v:e}): fast {f:e}, libm {want:e}, {d} ulps apart"
            );
        }
        assert!(x.len() > 2_000_000, "{}", x.len());
        assert!(worst <= 2);
    }
}
