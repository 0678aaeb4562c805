//! Error statistics of one program over a set of points, mergeable across parallel tasks.

use crate::ulp::PointError;

/// Accumulated error of one program. Merging is associative; ties in the maximum go to the
/// smaller point index, so results do not depend on how work was split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub max_ulp: f64,
    /// Index (in the caller's point numbering) where `max_ulp` occurs.
    pub argmax: u64,
    /// Sum of finite ULP errors.
    pub sum_ulp: f64,
    pub n: u64,
    /// Points whose output is the correctly rounded value.
    pub n_correct: u64,
    /// Points with a NaN/inf output where f is finite.
    pub n_nonfinite: u64,
    /// Points with an infinite error (wrong NaN or infinity).
    pub n_infinite: u64,
    pub max_distance: u64,
    /// Points left out of `n_correct`/`max_distance` because the rounding was undecidable in float64.
    pub n_undecided: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            max_ulp: -1.0,
            argmax: u64::MAX,
            sum_ulp: 0.0,
            n: 0,
            n_correct: 0,
            n_nonfinite: 0,
            n_infinite: 0,
            max_distance: 0,
            n_undecided: 0,
        }
    }
}

impl Stats {
    /// Fold in the error at point `index`; `decided` is false when the correct rounding is unknown.
    #[inline(always)]
    pub fn add(&mut self, index: u64, e: PointError, decided: bool) {
        self.n += 1;
        if e.ulps > self.max_ulp || (e.ulps == self.max_ulp && index < self.argmax) {
            self.max_ulp = e.ulps;
            self.argmax = index;
        }
        if e.ulps.is_finite() {
            self.sum_ulp += e.ulps;
        } else {
            self.n_infinite += 1;
        }
        self.n_nonfinite += u64::from(e.nonfinite);
        if decided {
            self.n_correct += u64::from(e.distance == 0);
            self.max_distance = self.max_distance.max(e.distance);
        } else {
            self.n_undecided += 1;
        }
    }

    #[must_use]
    pub fn merge(mut self, o: Stats) -> Stats {
        if o.max_ulp > self.max_ulp || (o.max_ulp == self.max_ulp && o.argmax < self.argmax) {
            self.max_ulp = o.max_ulp;
            self.argmax = o.argmax;
        }
        self.sum_ulp += o.sum_ulp;
        self.n += o.n;
        self.n_correct += o.n_correct;
        self.n_nonfinite += o.n_nonfinite;
        self.n_infinite += o.n_infinite;
        self.max_distance = self.max_distance.max(o.max_distance);
        self.n_undecided += o.n_undecided;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_order_independent() {
        let pe = |u| PointError {
            ulps: u,
            distance: 1,
            nonfinite: false,
        };
        let mut a = Stats::default();
        a.add(5, pe(2.0), true);
        let mut b = Stats::default();
        b.add(3, pe(2.0), true);
        b.add(4, pe(f64::INFINITY), false);
        let ab = a.merge(b);
        let ba = b.merge(a);
        assert_eq!(ab, ba);
        assert_eq!(ab.argmax, 4);
        assert_eq!(ab.n_infinite, 1);
        assert_eq!(ab.n_undecided, 1);
        assert_eq!(ab.sum_ulp, 4.0);
    }
}
