//! Weight constraints with Keras' formulas, applied after every optimizer update.
//!
//! | Keras                                   | here                                  | after each update                                             |
//! |-----------------------------------------|---------------------------------------|---------------------------------------------------------------|
//! | `constraints.NonNeg()`                  | [`NonNeg`]                            | `w = max(w, 0)`                                               |
//! | `constraints.UnitNorm(axis)`            | [`UnitNorm::new`]`(axis)`             | `w = w / (ε + ‖w‖)`                                           |
//! | `constraints.MaxNorm(max_value, axis)`  | [`MaxNorm::new`]`(max_value, axis)`   | `w = w · (clip(‖w‖, 0, max) / (ε + ‖w‖))`                     |
//! | `constraints.MinMaxNorm(min, max, rate, axis)` | [`MinMaxNorm::new`]`(min, max, rate, axis)` | `w = w · ((rate·clip(‖w‖, min, max) + (1 - rate)·‖w‖) / (ε + ‖w‖))` |
//!
//! `ε` is Keras' `backend.epsilon()`, `1e-7`. A layer takes them as
//! [`Dense::with_kernel_constraint`](crate::Dense::with_kernel_constraint) and
//! [`Dense::with_bias_constraint`](crate::Dense::with_bias_constraint); the constraint is part
//! of the layer's type, so a layer without one ([`Unconstrained`], the default) stores
//! nothing and runs no code for it.
//!
//! # Axes
//! Keras stores a `Dense` kernel `[in][out]` and norms over `axis=0` (the default): one norm
//! per **output unit**, over its incoming weights. microtrain stores the kernel `[out][in]`,
//! so Keras' `axis=0` is a norm over each row here, and `axis=1` (one norm per input, over
//! the weights leaving it) a norm over each column. The axes keep Keras' numbering: the
//! same `axis` means the same norms on the same model.
//!
//! A bias is one vector: a norm constraint on it takes the norm of the whole vector, as
//! Keras does with `axis=0`. (Keras refuses `axis=1` on a bias, which has one axis; here
//! both axes mean the whole vector.)

use crate::error::Error;
use crate::math;

/// Keras' `backend.epsilon()`, in the norm constraints' denominators.
pub const EPSILON: f32 = 1e-7;

/// A projection applied to a tensor after every optimizer update (Keras' `Constraint`).
pub trait Constraint: Copy + core::fmt::Debug + PartialEq {
    /// Projects `values`, a kernel stored `[out][in]` as rows of `width = in` (one row per
    /// output unit).
    fn apply(&self, values: &mut [f32], width: usize);

    /// Projects `values`, a vector (a bias). Norm constraints take the norm of the whole
    /// vector, whatever their axis (see the [module docs](self)).
    fn apply_to_vector(&self, values: &mut [f32]) {
        self.apply(values, values.len());
    }
}

/// No constraint (the default): zero-sized, and applying it compiles to nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unconstrained;

impl Constraint for Unconstrained {
    #[inline(always)]
    fn apply(&self, _: &mut [f32], _: usize) {}
    #[inline(always)]
    fn apply_to_vector(&self, _: &mut [f32]) {}
}

/// Keras' `NonNeg()`: `w = max(w, 0)` (NaN stays NaN, as with `ops.maximum`).
///
/// ```
/// use microtrain::constraint::{Constraint, NonNeg};
/// let mut w = [1.5, -2.0, 0.0];
/// NonNeg.apply(&mut w, 3);
/// assert_eq!(w, [1.5, 0.0, 0.0]);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NonNeg;

impl Constraint for NonNeg {
    fn apply(&self, values: &mut [f32], _: usize) {
        for w in values {
            // As XLA's `maximum(w, 0)`: -0 becomes +0, NaN (for which `<=` is false)
            // passes unchanged.
            if *w <= 0.0 {
                *w = 0.0;
            }
        }
    }
}

/// Which norms a norm constraint takes, in Keras' numbering of a `Dense` kernel's axes
/// (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Axis {
    /// Keras `axis=0`: one norm per output unit (a row of microtrain's `[out][in]`).
    PerOutput,
    /// Keras `axis=1`: one norm per input (a column here).
    PerInput,
}

impl Axis {
    const fn new(axis: usize) -> Result<Self, Error> {
        match axis {
            0 => Ok(Self::PerOutput),
            1 => Ok(Self::PerInput),
            _ => Err(Error::ConstraintAxis { axis }),
        }
    }

    const fn keras(self) -> usize {
        match self {
            Self::PerOutput => 0,
            Self::PerInput => 1,
        }
    }
}

/// For every norm along `axis` of `values` (rows of `width`): `k = per_norm(‖w‖)`, then
/// `w = per_value(w, k)` for each value in it. The squares are summed in storage order,
/// one value after another.
#[inline(always)]
fn rescale_norms(
    values: &mut [f32],
    width: usize,
    axis: Axis,
    per_norm: impl Fn(f32) -> f32,
    per_value: impl Fn(f32, f32) -> f32,
) {
    if width == 0 {
        return;
    }
    let rows = values.len().checked_div(width).unwrap_or(0);
    let values = values
        .get_mut(..rows.saturating_mul(width))
        .unwrap_or_default();
    if axis == Axis::PerOutput {
        for row in values.chunks_exact_mut(width) {
            let k = per_norm(math::sqrt(row.iter().map(|w| w * w).sum()));
            for w in row {
                *w = per_value(*w, k);
            }
        }
        return;
    }
    for column in 0..width {
        let column_values = || values.iter().skip(column).step_by(width);
        let k = per_norm(math::sqrt(column_values().map(|w| w * w).sum()));
        for w in values.iter_mut().skip(column).step_by(width) {
            *w = per_value(*w, k);
        }
    }
}

/// Keras' `UnitNorm(axis)`: `w = w / (ε + ‖w‖)`, each norm along `axis` made 1.
///
/// ```
/// use microtrain::constraint::{Constraint, UnitNorm};
/// let mut w = [3.0, 4.0]; // one output unit with two inputs
/// UnitNorm::new(0)?.apply(&mut w, 2);
/// assert!((w[0] - 0.6).abs() < 1e-6 && (w[1] - 0.8).abs() < 1e-6);
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitNorm {
    axis: Axis,
}

impl UnitNorm {
    /// Keras' `UnitNorm(axis)` (Keras' default axis is 0: one norm per output unit).
    ///
    /// # Errors
    /// [`Error::ConstraintAxis`] unless `axis` is 0 or 1.
    pub const fn new(axis: usize) -> Result<Self, Error> {
        match Axis::new(axis) {
            Ok(axis) => Ok(Self { axis }),
            Err(e) => Err(e),
        }
    }

    /// The axis, in Keras' numbering.
    pub const fn axis(&self) -> usize {
        self.axis.keras()
    }
}

impl Constraint for UnitNorm {
    fn apply(&self, values: &mut [f32], width: usize) {
        rescale_norms(values, width, self.axis, |n| EPSILON + n, |w, k| w / k);
    }
    fn apply_to_vector(&self, values: &mut [f32]) {
        let whole = Self {
            axis: Axis::PerOutput,
        };
        whole.apply(values, values.len());
    }
}

/// Keras' `MinMaxNorm(min_value, max_value, rate, axis)`: each norm along `axis` moves to
/// `rate·clip(‖w‖, min, max) + (1 - rate)·‖w‖`, as `w = w · (desired / (ε + ‖w‖))`.
///
/// ```
/// use microtrain::constraint::{Constraint, MinMaxNorm};
/// let mut w = [0.3, 0.4]; // norm 0.5, below the minimum
/// MinMaxNorm::new(1.0, 2.0, 1.0, 0)?.apply(&mut w, 2);
/// assert!((w[0] * w[0] + w[1] * w[1] - 1.0).abs() < 1e-5);
/// assert!(MinMaxNorm::new(2.0, 1.0, 1.0, 0).is_err());
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinMaxNorm {
    min_value: f32,
    max_value: f32,
    rate: f32,
    axis: Axis,
}

impl MinMaxNorm {
    /// Keras' `MinMaxNorm(min_value, max_value, rate, axis)` (Keras' defaults: 0, 1, 1, 0).
    ///
    /// # Errors
    /// [`Error::ConstraintValue`] unless `0 <= min_value <= max_value`, both finite, and
    /// `0 <= rate <= 1`; [`Error::ConstraintAxis`] unless `axis` is 0 or 1.
    pub const fn new(
        min_value: f32,
        max_value: f32,
        rate: f32,
        axis: usize,
    ) -> Result<Self, Error> {
        if !(min_value.is_finite() && min_value >= 0.0) {
            return Err(Error::ConstraintValue { value: min_value });
        }
        if !(max_value.is_finite() && max_value >= min_value) {
            return Err(Error::ConstraintValue { value: max_value });
        }
        if !(rate >= 0.0 && rate <= 1.0) {
            return Err(Error::ConstraintValue { value: rate });
        }
        match Axis::new(axis) {
            Ok(axis) => Ok(Self {
                min_value,
                max_value,
                rate,
                axis,
            }),
            Err(e) => Err(e),
        }
    }

    /// The lower bound of the norms.
    pub const fn min_value(&self) -> f32 {
        self.min_value
    }

    /// The upper bound of the norms.
    pub const fn max_value(&self) -> f32 {
        self.max_value
    }

    /// How far each update moves a norm towards the bounds (1: all the way).
    pub const fn rate(&self) -> f32 {
        self.rate
    }

    /// The axis, in Keras' numbering.
    pub const fn axis(&self) -> usize {
        self.axis.keras()
    }
}

impl Constraint for MinMaxNorm {
    fn apply_to_vector(&self, values: &mut [f32]) {
        let whole = Self {
            axis: Axis::PerOutput,
            ..*self
        };
        whole.apply(values, values.len());
    }
    fn apply(&self, values: &mut [f32], width: usize) {
        let (min, max, rate) = (self.min_value, self.max_value, self.rate);
        let desired = |n: f32| rate * n.max(min).min(max) + (1.0 - rate) * n;
        rescale_norms(
            values,
            width,
            self.axis,
            |n| desired(n) / (EPSILON + n),
            |w, k| w * k,
        );
    }
}

/// Keras' `MaxNorm(max_value, axis)`: each norm along `axis` clipped to `max_value`, as
/// `w = w · (clip(‖w‖, 0, max) / (ε + ‖w‖))`. For a kernel with the default axis,
/// [`Dense::with_max_norm`](crate::Dense::with_max_norm) is the same constraint.
///
/// ```
/// use microtrain::constraint::{Constraint, MaxNorm};
/// let mut w = [3.0, 4.0];
/// MaxNorm::new(1.0, 0)?.apply(&mut w, 2);
/// assert!((w[0] - 0.6).abs() < 1e-6);
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxNorm {
    max_value: f32,
    axis: Axis,
}

impl MaxNorm {
    /// Keras' `MaxNorm(max_value, axis)` (Keras' defaults: 2, 0).
    ///
    /// # Errors
    /// [`Error::MaxNorm`] unless `max_value` is finite and positive;
    /// [`Error::ConstraintAxis`] unless `axis` is 0 or 1.
    pub const fn new(max_value: f32, axis: usize) -> Result<Self, Error> {
        if !(max_value.is_finite() && max_value > 0.0) {
            return Err(Error::MaxNorm { max_value });
        }
        match Axis::new(axis) {
            Ok(axis) => Ok(Self { max_value, axis }),
            Err(e) => Err(e),
        }
    }

    /// The largest norm.
    pub const fn max_value(&self) -> f32 {
        self.max_value
    }

    /// The axis, in Keras' numbering.
    pub const fn axis(&self) -> usize {
        self.axis.keras()
    }
}

/// `w · (min(‖w‖, max) / (ε + ‖w‖))` over each row of `values`: [`MaxNorm`] with axis 0,
/// what `Dense::with_max_norm` applies.
pub(crate) fn max_norm_rows(values: &mut [f32], width: usize, max_value: f32) {
    rescale_norms(
        values,
        width,
        Axis::PerOutput,
        |n| n.min(max_value) / (EPSILON + n),
        |w, k| w * k,
    );
}

impl Constraint for MaxNorm {
    fn apply_to_vector(&self, values: &mut [f32]) {
        max_norm_rows(values, values.len(), self.max_value);
    }
    fn apply(&self, values: &mut [f32], width: usize) {
        let max = self.max_value;
        rescale_norms(
            values,
            width,
            self.axis,
            |n| n.min(max) / (EPSILON + n),
            |w, k| w * k,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_one_norms_each_column_of_the_out_in_kernel() {
        // Two outputs, three inputs; column norms 5, 0 and 1.
        let mut w = [3.0, 0.0, 1.0, 4.0, 0.0, 0.0];
        UnitNorm::new(1).unwrap().apply(&mut w, 3);
        let expected = [
            3.0 / (EPSILON + 5.0),
            0.0,
            1.0 / (EPSILON + 1.0),
            4.0 / (EPSILON + 5.0),
            0.0,
            0.0,
        ];
        assert_eq!(w, expected);
    }

    #[test]
    fn a_vector_is_normed_whole_for_either_axis() {
        let unit = [3.0 / (EPSILON + 5.0), 4.0 / (EPSILON + 5.0)];
        let scaled = [3.0 * (1.0 / (EPSILON + 5.0)), 4.0 * (1.0 / (EPSILON + 5.0))];
        for axis in [0, 1] {
            let mut bias = [3.0, 4.0];
            UnitNorm::new(axis).unwrap().apply_to_vector(&mut bias);
            assert_eq!(bias, unit);
            let mut bias = [3.0, 4.0];
            let min_max = MinMaxNorm::new(1.0, 1.0, 1.0, axis).unwrap();
            min_max.apply_to_vector(&mut bias);
            assert_eq!(bias, scaled);
            let mut bias = [3.0, 4.0];
            MaxNorm::new(1.0, axis).unwrap().apply_to_vector(&mut bias);
            assert_eq!(bias, scaled);
        }
    }

    #[test]
    fn a_kernel_of_one_output_on_axis_one_norms_each_weight() {
        // Keras' kernel [in=2][out=1], axis=1: one norm per input, over its one weight.
        let mut w = [3.0, -4.0];
        UnitNorm::new(1).unwrap().apply(&mut w, 2);
        assert_eq!(w, [3.0 / (EPSILON + 3.0), -4.0 / (EPSILON + 4.0)]);
    }

    #[test]
    fn constructors_refuse_bad_values() {
        assert_eq!(UnitNorm::new(2), Err(Error::ConstraintAxis { axis: 2 }));
        assert!(MinMaxNorm::new(-1.0, 1.0, 1.0, 0).is_err());
        assert!(MinMaxNorm::new(0.0, f32::INFINITY, 1.0, 0).is_err());
        assert!(MinMaxNorm::new(0.0, 1.0, 1.5, 0).is_err());
        assert!(MinMaxNorm::new(0.0, 1.0, f32::NAN, 0).is_err());
        assert!(MinMaxNorm::new(0.0, 1.0, 0.5, 3).is_err());
        assert!(MinMaxNorm::new(1.0, 1.0, 0.0, 1).is_ok());
        assert!(MaxNorm::new(0.0, 0).is_err());
        assert!(MaxNorm::new(1.0, 7).is_err());
    }

    #[test]
    fn non_neg_keeps_nan_and_zeroes_negatives() {
        let mut w = [f32::NAN, -1.0, f32::NEG_INFINITY, 2.0];
        NonNeg.apply(&mut w, 4);
        assert!(w[0].is_nan());
        assert_eq!(&w[1..], &[0.0, 0.0, 2.0]);
    }
}
