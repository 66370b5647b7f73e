//! Weight penalties (regularizers) with Keras semantics.
//!
//! | Keras                      | loss term                 | gradient                  |
//! |----------------------------|---------------------------|---------------------------|
//! | `regularizers.l1(λ)`       | `λ·Σ|w|`                  | `λ·sign(w)` (sign(0) = 0) |
//! | `regularizers.l2(λ)`       | `λ·Σw²`                   | `2λ·w`                    |
//! | `regularizers.l1_l2(a, b)` | `a·Σ|w| + b·Σw²`          | `a·sign(w) + 2b·w`        |
//!
//! PyTorch has no per-layer regularizer; its `weight_decay=wd` (in `SGD`/`Adam`) adds `wd·w`
//! to the gradient, so Keras `l2(λ)` equals PyTorch `weight_decay = 2λ` for plain SGD.
//! With Adam the two differ from decoupled decay (`AdamW`), which is
//! [`crate::optim::AdamW`] here.
//!
//! The gradient is never computed in a sweep of its own: the weight-gradient kernel
//! (`kernels::dense_weight_gradient`) adds it while it writes `dW`.

use crate::error::{Error, non_negative};
use crate::math;

/// An L1 and/or L2 penalty on a tensor (`l1·Σ|w| + l2·Σw²`).
///
/// ```
/// use microtrain::Regularizer;
/// let l2 = Regularizer::l2(0.01)?; // Keras: kernel_regularizer=l2(0.01)
/// assert_eq!(l2.loss(&[1.0, -2.0]), 0.01 * 5.0);
/// assert!(Regularizer::l1(-1.0).is_err());
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regularizer {
    l1: f32,
    l2: f32,
}

impl Default for Regularizer {
    fn default() -> Self {
        Self::NONE
    }
}

impl Regularizer {
    /// No penalty.
    pub const NONE: Self = Self { l1: 0.0, l2: 0.0 };

    /// Keras `l1(λ)`: adds `λ·Σ|w|` to the loss.
    ///
    /// # Errors
    /// [`Error::Penalty`] if `λ` is negative or not finite.
    pub const fn l1(l1: f32) -> Result<Self, Error> {
        Self::l1_l2(l1, 0.0)
    }

    /// Keras `l2(λ)`: adds `λ·Σw²` to the loss (gradient `2λ·w`).
    ///
    /// # Errors
    /// [`Error::Penalty`] if `λ` is negative or not finite.
    pub const fn l2(l2: f32) -> Result<Self, Error> {
        Self::l1_l2(0.0, l2)
    }

    /// Keras `l1_l2(l1, l2)`: adds `l1·Σ|w| + l2·Σw²` to the loss.
    ///
    /// # Errors
    /// [`Error::Penalty`] naming the first factor that is negative or not finite.
    pub const fn l1_l2(l1: f32, l2: f32) -> Result<Self, Error> {
        match (
            non_negative(l1, Error::Penalty { value: l1 }),
            non_negative(l2, Error::Penalty { value: l2 }),
        ) {
            (Ok(l1), Ok(l2)) => Ok(Self { l1, l2 }),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }

    /// The L1 factor.
    pub const fn l1_factor(&self) -> f32 {
        self.l1
    }

    /// The L2 factor.
    pub const fn l2_factor(&self) -> f32 {
        self.l2
    }

    /// True if both factors are zero (the kernels then skip the penalty term).
    pub const fn is_none(&self) -> bool {
        self.l1 == 0.0 && self.l2 == 0.0
    }

    /// The penalty's contribution to the loss: `l1·Σ|w| + l2·Σw²`.
    pub fn loss(&self, values: &[f32]) -> f32 {
        if self.is_none() {
            return 0.0;
        }
        let (abs_sum, square_sum) = values
            .iter()
            .fold((0.0f32, 0.0f32), |(a, s), &w| (a + math::abs(w), s + w * w));
        self.l1 * abs_sum + self.l2 * square_sum
    }

    /// The penalty's gradient for one weight: `l1·sign(w) + 2·l2·w`, with `sign(0) = 0`.
    #[inline(always)]
    pub fn gradient(&self, w: f32) -> f32 {
        self.l1 * math::sign(w) + 2.0 * self.l2 * w
    }
}

/// A [`Dense`](crate::Dense) layer's Keras `activity_regularizer`: [`Regularizer`], or
/// [`NoActivityRegularizer`] (zero-sized, the default).
pub trait ActivityRegularizer: Copy + core::fmt::Debug + PartialEq {
    /// True for [`Regularizer`], false for [`NoActivityRegularizer`].
    const ACTIVE: bool;
    /// The regularizer, if there is one.
    fn regularizer(&self) -> Option<Regularizer>;
}

/// No activity regularizer: zero-sized, and it compiles to nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoActivityRegularizer;

impl ActivityRegularizer for NoActivityRegularizer {
    const ACTIVE: bool = false;
    #[inline(always)]
    fn regularizer(&self) -> Option<Regularizer> {
        None
    }
}

impl ActivityRegularizer for Regularizer {
    const ACTIVE: bool = true;
    #[inline(always)]
    fn regularizer(&self) -> Option<Regularizer> {
        Some(*self)
    }
}

/// Keras' `regularizers.l1(λ)`; see [`Regularizer::l1`].
///
/// # Errors
/// [`Error::Penalty`] if `λ` is negative or not finite.
pub const fn l1(l1: f32) -> Result<Regularizer, Error> {
    Regularizer::l1(l1)
}

/// Keras' `regularizers.l2(λ)`; see [`Regularizer::l2`].
///
/// # Errors
/// [`Error::Penalty`] if `λ` is negative or not finite.
pub const fn l2(l2: f32) -> Result<Regularizer, Error> {
    Regularizer::l2(l2)
}

/// Keras' `regularizers.l1_l2(l1, l2)`; see [`Regularizer::l1_l2`].
///
/// # Errors
/// [`Error::Penalty`] naming the first factor that is negative or not finite.
pub const fn l1_l2(l1: f32, l2: f32) -> Result<Regularizer, Error> {
    Regularizer::l1_l2(l1, l2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_negative_and_non_finite_factors() {
        for bad in [-1e-9, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert!(
                matches!(Regularizer::l1(bad), Err(Error::Penalty { value }) if value.to_bits() == bad.to_bits()),
                "l1({bad}) accepted or misreported"
            );
            assert!(Regularizer::l2(bad).is_err(), "l2({bad}) accepted");
            assert!(
                Regularizer::l1_l2(0.1, bad).is_err(),
                "l1_l2(0.1, {bad}) accepted"
            );
        }
        assert!(Regularizer::l1_l2(0.0, 0.0).is_ok_and(|r| r.is_none()));
    }

    #[test]
    fn loss_and_gradient_follow_keras() {
        let r = Regularizer::l1_l2(0.5, 0.25).unwrap();
        let w = [2.0, -1.0, 0.0];
        assert_eq!(r.loss(&w), 0.5 * 3.0 + 0.25 * 5.0);
        assert_eq!(r.gradient(2.0), 0.5 + 2.0 * 0.25 * 2.0);
        assert_eq!(r.gradient(-1.0), -0.5 - 0.5);
        assert_eq!(r.gradient(0.0), 0.0, "sign(0) must be 0");
    }
}
