//! Reference values of the built-in targets in float64 (the `libm` crate, a port of musl),
//! accurate to a few float64 ulps: ample for float32 errors, with rounding ties resolved by
//! the caller in high precision (see `ulp::round32`).

/// A built-in target function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Exp,
    Exp2,
    Expm1,
    Log,
    Log2,
    Log1p,
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    Erf,
    Sqrt,
    Rsqrt,
}

impl Target {
    pub const ALL: [(&'static str, Target); 13] = [
        ("exp", Target::Exp),
        ("exp2", Target::Exp2),
        ("expm1", Target::Expm1),
        ("log", Target::Log),
        ("log2", Target::Log2),
        ("log1p", Target::Log1p),
        ("sin", Target::Sin),
        ("cos", Target::Cos),
        ("tanh", Target::Tanh),
        ("sigmoid", Target::Sigmoid),
        ("erf", Target::Erf),
        ("sqrt", Target::Sqrt),
        ("rsqrt", Target::Rsqrt),
    ];

    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.iter().find(|(n, _)| *n == name).map(|&(_, t)| t)
    }

    /// f(x) in float64.
    #[inline]
    pub fn eval(self, x: f64) -> f64 {
        match self {
            Target::Exp => libm::exp(x),
            Target::Exp2 => libm::exp2(x),
            Target::Expm1 => libm::expm1(x),
            Target::Log => libm::log(x),
            Target::Log2 => libm::log2(x),
            Target::Log1p => libm::log1p(x),
            Target::Sin => libm::sin(x),
            Target::Cos => libm::cos(x),
            Target::Tanh => libm::tanh(x),
            Target::Sigmoid => 1.0 / (1.0 + libm::exp(-x)),
            Target::Erf => libm::erf(x),
            Target::Sqrt => libm::sqrt(x),
            Target::Rsqrt => 1.0 / libm::sqrt(x),
        }
    }
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
        assert_eq!(Target::Exp2.eval(10.0), 1024.0);
        assert_eq!(Target::Log2.eval(0.25), -2.0);
        assert_eq!(Target::Rsqrt.eval(4.0), 0.5);
        assert!((Target::Sigmoid.eval(0.0) - 0.5).abs() < 1e-16);
        assert!(Target::Log.eval(-1.0).is_nan());
    }
}
