//! How far a SIMD kernel may be from its scalar twin, shared by `tests/kernels.rs` and the
//! fuzz target `fuzz/fuzz_targets/kernels.rs` (which includes this file by path).
//!
//! The products sum in another order in the SIMD sets (lanes, then a tree) and fuse
//! multiply-adds where the target has FMA. A sum of `n` terms computed in any order with
//! f32 rounding is within `γ_n · Σ|t|` of the exact sum (`γ_n ≈ n·u`, `u = EPSILON/2`;
//! Higham, *Accuracy and Stability of Numerical Algorithms*, §4.2), so two such sums are
//! within `n · EPSILON · Σ|t|` of each other; [`sum_tolerance`] allows that plus two
//! roundings for the operations outside the sum.
#![allow(dead_code, clippy::indexing_slicing, clippy::panic)]

use microtrain::Regularizer;
use microtrain::kernels::{Shape, simd};

/// The largest difference allowed between two f32 evaluations of one sum of `terms`
/// terms whose absolute values add up to `abs_sum`: `(terms + 2)·EPSILON·Σ|t|`.
pub fn sum_tolerance(terms: usize, abs_sum: f32) -> f32 {
    (terms as f32 + 2.0) * f32::EPSILON * abs_sum
}

/// `|simd - scalar| <= (TRANSCENDENTAL_MAX_ULPS + extra)·EPSILON·|scalar| + MIN_POSITIVE`:
/// the kernels' documented budget against libm, plus one smallest normal for results that
/// underflow to subnormals (where relative accuracy ends); NaN matches NaN.
pub fn within_transcendental_budget(actual: f32, expected: f32, extra_ulps: f32) -> bool {
    let budget = simd::TRANSCENDENTAL_MAX_ULPS + extra_ulps;
    actual == expected // exact, infinities included
        || (actual.is_nan() && expected.is_nan())
        || (actual - expected).abs() <= budget * f32::EPSILON * expected.abs() + f32::MIN_POSITIVE
}

/// The operands of one `dense_weight_gradient` call: both sets start from `start` (the
/// gradient buffer's previous contents, which rows the kernels do not reach keep).
pub struct WeightGradientCase<'a> {
    pub dy: &'a [f32],
    pub x: &'a [f32],
    pub w: &'a [f32],
    pub start: &'a [f32],
    pub shape: Shape,
    pub penalty: Regularizer,
}

impl WeightGradientCase<'_> {
    /// Asserts that `actual` (and its returned penalty) is within the sums' tolerance of
    /// the scalar set's `expected`; `what` names the set and the case in a failure.
    pub fn check(&self, what: &str, expected: (&[f32], f32), actual: (&[f32], f32)) {
        let Self {
            dy,
            x,
            w,
            start,
            shape,
            penalty,
        } = *self;
        let Shape {
            rows,
            inputs,
            outputs,
        } = shape;
        let done = rows
            .min(dy.len().checked_div(outputs).unwrap_or(0))
            .min(x.len().checked_div(inputs).unwrap_or(0));
        let gradient_rows = outputs.min(start.len().checked_div(inputs).unwrap_or(0));
        let penalized = (inputs * outputs).min(start.len()).min(w.len());
        for (k, (&e, &a)) in expected.0.iter().zip(actual.0).enumerate() {
            let (o, i) = (k / inputs, k % inputs);
            let mut abs_sum = start[k].abs();
            let mut terms = 1;
            if o < gradient_rows {
                abs_sum += (0..done)
                    .map(|b| (dy[b * outputs + o] * x[b * inputs + i]).abs())
                    .sum::<f32>();
                terms += done;
            }
            if k < penalized && !penalty.is_none() {
                abs_sum += penalty.l1_factor() + 2.0 * penalty.l2_factor() * w[k].abs();
                terms += 2;
            }
            let tolerance = sum_tolerance(terms, abs_sum);
            assert!(
                (a - e).abs() <= tolerance,
                "dense_weight_gradient {shape:?} {penalty:?} {what}: d_weights[{o}][{i}] {a}, \
                 scalar {e} (start {}, weight {:?}, diff {}, tolerance {tolerance})",
                start[k],
                w.get(k),
                (a - e).abs(),
            );
        }
        let penalty_terms: f32 = w[..penalized]
            .iter()
            .map(|w| penalty.l1_factor() * w.abs() + penalty.l2_factor() * w * w)
            .sum();
        let tolerance = sum_tolerance(penalized + 2, penalty_terms);
        assert!(
            (actual.1 - expected.1).abs() <= tolerance,
            "dense_weight_gradient {shape:?} {penalty:?} {what}: penalty {}, scalar {} \
             (tolerance {tolerance})",
            actual.1,
            expected.1,
        );
        if penalty.is_none() {
            assert_eq!(actual.1, 0.0, "no regularizer must give a zero penalty");
        }
    }
}
