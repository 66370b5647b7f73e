//! Keras' `label_smoothing` for binary and categorical cross-entropy.

use super::{
    BinaryCrossEntropy, BinaryCrossEntropyFromLogits, CategoricalCrossEntropy,
    CategoricalCrossEntropyFromLogits, Loss,
};
use crate::activation::Activation;
use crate::error::Error;

/// A loss whose targets can be smoothed as Keras' `label_smoothing` does.
pub trait SmoothLabels {
    /// The smoothed target of `target` for `label_smoothing = amount`, where
    /// `keep = f32(1 - amount)` (as Keras, `1 - amount` is computed in `f64`).
    fn smooth<const N: usize>(target: &[f32; N], amount: f32, keep: f32) -> [f32; N];
}

/// Binary: `t·(1 - ls) + 0.5·ls`, elementwise (Keras' `binary_crossentropy`).
fn smooth_binary<const N: usize>(target: &[f32; N], amount: f32, keep: f32) -> [f32; N] {
    let half = 0.5 * amount;
    target.map(|t| t * keep + half)
}

/// Categorical: `t·(1 - ls) + ls/N` (Keras' `categorical_crossentropy`, `N` classes).
fn smooth_categorical<const N: usize>(target: &[f32; N], amount: f32, keep: f32) -> [f32; N] {
    let share = amount / N as f32;
    target.map(|t| t * keep + share)
}

impl SmoothLabels for BinaryCrossEntropy {
    fn smooth<const N: usize>(target: &[f32; N], amount: f32, keep: f32) -> [f32; N] {
        smooth_binary(target, amount, keep)
    }
}
impl SmoothLabels for BinaryCrossEntropyFromLogits {
    fn smooth<const N: usize>(target: &[f32; N], amount: f32, keep: f32) -> [f32; N] {
        smooth_binary(target, amount, keep)
    }
}
impl SmoothLabels for CategoricalCrossEntropy {
    fn smooth<const N: usize>(target: &[f32; N], amount: f32, keep: f32) -> [f32; N] {
        smooth_categorical(target, amount, keep)
    }
}
impl SmoothLabels for CategoricalCrossEntropyFromLogits {
    fn smooth<const N: usize>(target: &[f32; N], amount: f32, keep: f32) -> [f32; N] {
        smooth_categorical(target, amount, keep)
    }
}

/// A cross-entropy with Keras' `label_smoothing`: every target `t` is replaced by its
/// smoothed value before the loss sees it (binary: `t·(1 - ls) + 0.5·ls`; categorical:
/// `t·(1 - ls) + ls/N` for `N` classes), in the value and the gradient. Accuracy and class
/// weights use the targets as given, as Keras' metrics and `class_weight` do.
///
/// Built by `with_label_smoothing` on [`BinaryCrossEntropy`],
/// [`BinaryCrossEntropyFromLogits`], [`CategoricalCrossEntropy`] and
/// [`CategoricalCrossEntropyFromLogits`]; `const`, so a configuration can live in flash.
///
/// ```
/// use microtrain::*;
/// // Keras: BinaryCrossentropy(label_smoothing=0.5): target 1 becomes 0.75, 0 becomes 0.25.
/// let loss = BinaryCrossEntropy::with_label_smoothing(0.5)?;
/// assert_eq!(loss.label_smoothing(), 0.5);
/// assert_eq!(Loss::<Sigmoid, [f32; 1]>::value(&loss, &[0.9], &[1.0]),
///     Loss::<Sigmoid, [f32; 1]>::value(&BinaryCrossEntropy, &[0.9], &[0.75]));
/// assert!(CategoricalCrossEntropy::with_label_smoothing(1.5).is_err());
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelSmoothing<L> {
    loss: L,
    amount: f32,
    keep: f32,
}

impl<L: Copy> LabelSmoothing<L> {
    /// `loss` with `label_smoothing = amount`.
    ///
    /// # Errors
    /// [`Error::LabelSmoothing`] unless `0 <= amount <= 1`.
    pub const fn new(loss: L, amount: f32) -> Result<Self, Error> {
        if !(amount >= 0.0 && amount <= 1.0) {
            return Err(Error::LabelSmoothing {
                label_smoothing: amount,
            });
        }
        Ok(Self {
            loss,
            amount,
            keep: (1.0 - amount as f64) as f32,
        })
    }

    /// The smoothing amount, Keras' `label_smoothing`.
    pub const fn label_smoothing(&self) -> f32 {
        self.amount
    }

    /// The loss the smoothed targets go to.
    pub const fn loss(&self) -> &L {
        &self.loss
    }
}

macro_rules! with_label_smoothing {
    ($($loss:ident),+) => {$(
        impl $loss {
            /// This loss with Keras' `label_smoothing = amount` (see [`LabelSmoothing`]).
            ///
            /// # Errors
            /// [`Error::LabelSmoothing`] unless `0 <= amount <= 1`.
            pub const fn with_label_smoothing(amount: f32) -> Result<LabelSmoothing<Self>, Error> {
                LabelSmoothing::new($loss, amount)
            }
        }
    )+};
}

with_label_smoothing!(
    BinaryCrossEntropy,
    BinaryCrossEntropyFromLogits,
    CategoricalCrossEntropy,
    CategoricalCrossEntropyFromLogits
);

impl<A, L, const N: usize> Loss<A, [f32; N]> for LabelSmoothing<L>
where
    A: Activation,
    L: Loss<A, [f32; N], Target = [f32; N]> + SmoothLabels,
{
    type Target = [f32; N];
    const PRE_ACTIVATION: bool = L::PRE_ACTIVATION;
    fn value(&self, output: &[f32; N], target: &[f32; N]) -> f32 {
        let smoothed = L::smooth(target, self.amount, self.keep);
        self.loss.value(output, &smoothed)
    }
    fn delta(&self, activation: &A, output: &mut [f32; N], target: &[f32; N], scale: f32) {
        let smoothed = L::smooth(target, self.amount, self.keep);
        self.loss.delta(activation, output, &smoothed, scale);
    }
    fn value_and_delta(
        &self,
        activation: &A,
        output: &mut [f32; N],
        target: &[f32; N],
        scale: f32,
    ) -> f32 {
        let smoothed = L::smooth(target, self.amount, self.keep);
        self.loss
            .value_and_delta(activation, output, &smoothed, scale)
    }
    fn accuracy(&self, output: &[f32; N], target: &[f32; N]) -> Option<f32> {
        self.loss.accuracy(output, target)
    }
    fn check(&self, target: &[f32; N]) -> Result<(), Error> {
        self.loss.check(target)
    }
    fn class_of(&self, target: &[f32; N]) -> usize {
        self.loss.class_of(target)
    }
}
