//! Losses with Keras semantics, each paired with the output activation it expects.
//!
//! A loss gives, per sample, its **value** and, in place of the output, its gradient with
//! respect to the output layer's **pre-activation** (`δ`). Where the pair allows, the
//! gradient is the closed form (`p - t` for sigmoid + binary cross-entropy and for
//! softmax + categorical cross-entropy), which is both cheaper and more accurate than
//! chaining `∂loss/∂p` through the activation.
//!
//! Which activation goes with which loss is checked at compile time: `Loss<A, O>` is only
//! implemented for the pairs listed on each loss.
//!
//! | loss | Keras | output | label smoothing |
//! |---|---|---|---|
//! | [`MeanSquaredError`] | `mean_squared_error` | any elementwise, [`Softmax`] | — |
//! | [`BinaryCrossEntropy`] | `binary_crossentropy` | [`Sigmoid`] | [`BinaryCrossEntropy::with_label_smoothing`] |
//! | [`BinaryCrossEntropyFromLogits`] | `binary_crossentropy(from_logits=True)` | [`Identity`] | [`BinaryCrossEntropyFromLogits::with_label_smoothing`] |
//! | [`CategoricalCrossEntropy`] | `categorical_crossentropy` | [`Softmax`] (value from its logits) | [`CategoricalCrossEntropy::with_label_smoothing`] |
//! | [`CategoricalCrossEntropyFromLogits`] | `categorical_crossentropy(from_logits=True)` | [`Identity`] | [`CategoricalCrossEntropyFromLogits::with_label_smoothing`] |
//! | [`SparseCategoricalCrossEntropy`] | `sparse_categorical_crossentropy` | [`Softmax`] (value from its logits) | none (none in Keras 3) |
//! | [`SparseCategoricalCrossEntropyFromLogits`] | `sparse_categorical_crossentropy(from_logits=True)` | [`Identity`] | none |
//!
//! # Softmax cross-entropy takes its value from the logits
//! On a [`Softmax`] output the two categorical losses read the layer's **pre-activation**
//! ([`Loss::PRE_ACTIVATION`]): the network leaves the logits `z` and the loss applies the
//! softmax itself, computing the value as `-Σ tᵢ·(zᵢ - max z - ln Σ e^(zⱼ - max z))`
//! (log-sum-exp) and the gradient as `p·Σt - t`. A confident mistake (logits
//! `[100, -100, 0]`, label 1) costs 200, as the gradient implies, where
//! `-ln(clamp(p, 1e-7))` on the probabilities would report 16.12. Inference
//! ([`Network::infer`](crate::Network::infer), [`predict`](crate::predict)) still returns
//! probabilities; [`evaluate`](crate::evaluate) and [`data_loss`](crate::data_loss) compute
//! the same value as training.
//!
//! This is Keras' value with the TensorFlow backend (which finds the logits behind a softmax
//! layer's output and computes from them) and PyTorch's `CrossEntropyLoss`. Keras 3 with the
//! JAX or PyTorch backend clamps the probabilities to `[1e-7, 1 - 1e-7]` instead, so for
//! `p_label < 1e-7` it reports `16.118` and its gradient through the clamp is 0; the two
//! agree (within rounding) wherever `p_label ≥ 1e-7`. Keras' clamping is kept where the
//! loss sees only probabilities: [`BinaryCrossEntropy`] on a [`Sigmoid`] output clamps `p`
//! to `[ε, 1 - ε]` ([`EPSILON`]) in its value, as every Keras backend does for it (its
//! gradient is the exact `p - t`). Use [`BinaryCrossEntropyFromLogits`] on an [`Identity`]
//! output for the unclamped binary value.

use crate::activation::Activation;
#[cfg(doc)]
use crate::activation::{Identity, Sigmoid, Softmax};
use crate::error::Error;
use crate::layers::Row;
use crate::math;

mod binary;
mod categorical;
mod smoothing;

pub use binary::{BinaryCrossEntropy, BinaryCrossEntropyFromLogits};
pub use categorical::{
    CategoricalCrossEntropy, CategoricalCrossEntropyFromLogits, SparseCategoricalCrossEntropy,
    SparseCategoricalCrossEntropyFromLogits,
};
pub use smoothing::{LabelSmoothing, SmoothLabels};

/// Keras' `backend.epsilon()`: probabilities are clamped to `[EPSILON, 1 - EPSILON]` before
/// their logarithm is taken.
pub const EPSILON: f32 = 1e-7;

/// A loss on output rows `O` produced by activation `A`.
pub trait Loss<A: Activation, O: Row> {
    /// What one sample is compared with.
    type Target: Copy;

    /// True if the loss reads the output layer's **pre-activation** and applies `A` itself:
    /// then `output` in [`Loss::value`], [`Loss::delta`] and [`Loss::accuracy`] holds the
    /// logits, which training ([`Network::forward_pre_activation`](crate::Network::forward_pre_activation))
    /// and [`evaluate`](crate::evaluate) ([`Network::infer_pre_activation`](crate::Network::infer_pre_activation))
    /// give it. False by default: `output` is the activation's output.
    const PRE_ACTIVATION: bool = false;

    /// The loss of one sample.
    fn value(&self, output: &O, target: &Self::Target) -> f32;

    /// Replaces `output` by `scale · ∂value/∂(pre-activation)`.
    fn delta(&self, activation: &A, output: &mut O, target: &Self::Target, scale: f32);

    /// [`Loss::value`], then [`Loss::delta`]; returns the value. A loss that shares work
    /// between the two (softmax cross-entropy: one pass of `exp`) overrides it with the
    /// same results.
    fn value_and_delta(
        &self,
        activation: &A,
        output: &mut O,
        target: &Self::Target,
        scale: f32,
    ) -> f32 {
        let value = self.value(output, target);
        self.delta(activation, output, target, scale);
        value
    }

    /// Keras' `accuracy` for this loss: the fraction of this sample's predictions that are
    /// right, or `None` where accuracy has no meaning (regression).
    fn accuracy(&self, output: &O, target: &Self::Target) -> Option<f32>;

    /// Refuses a target the loss cannot use (e.g. a class label out of range).
    ///
    /// # Errors
    /// [`Error::LabelOutOfRange`] for a label too large; [`Error::NonFinite`] for a target
    /// that is NaN or infinite.
    fn check(&self, target: &Self::Target) -> Result<(), Error>;

    /// The class of a target, for class weights
    /// ([`Dataset::with_class_weights`](crate::Dataset::with_class_weights)), as Keras'
    /// `class_weight` finds it: the label of a sparse target, the first `argmax` of a
    /// target of several values, the value rounded half to even of a single one
    /// (`usize::MAX`, which no class weight has, for a negative one).
    fn class_of(&self, target: &Self::Target) -> usize;
}

fn check_finite(values: &[f32]) -> Result<(), Error> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(Error::NonFinite)
    }
}

fn clamp_probability(p: f32) -> f32 {
    p.clamp(EPSILON, 1.0 - EPSILON)
}

fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    let mut best_value = f32::NEG_INFINITY;
    for (i, &v) in values.iter().enumerate() {
        if v > best_value {
            best = i;
            best_value = v;
        }
    }
    best
}

/// The class of a target row as Keras' `class_weight_to_sample_weights` finds it:
/// `argmax` of several columns, `round` (half to even) of one.
fn class_of_row(target: &[f32]) -> usize {
    match target {
        [value] => {
            let rounded = math::round_ties_even(*value);
            if rounded >= 0.0 {
                // Saturates for huge values: a class no weight table reaches.
                rounded as usize
            } else {
                usize::MAX
            }
        }
        _ => argmax(target),
    }
}

/// Mean squared error, `mean_i (y_i - t_i)²` (Keras' `mean_squared_error`; PyTorch's
/// `MSELoss` with its default `reduction="mean"` is the same).
///
/// Pairs with any [`Elementwise`](crate::Elementwise) activation and with [`Softmax`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MeanSquaredError;

impl<A: crate::activation::Elementwise, const N: usize> Loss<A, [f32; N]> for MeanSquaredError {
    type Target = [f32; N];
    fn value(&self, output: &[f32; N], target: &[f32; N]) -> f32 {
        mean_squared(output, target)
    }
    fn delta(&self, activation: &A, output: &mut [f32; N], target: &[f32; N], scale: f32) {
        let factor = 2.0 * scale / N as f32;
        for (y, t) in output.iter_mut().zip(target) {
            *y = factor * (*y - t) * activation.derivative(*y);
        }
    }
    fn accuracy(&self, _: &[f32; N], _: &[f32; N]) -> Option<f32> {
        None
    }
    fn check(&self, target: &[f32; N]) -> Result<(), Error> {
        check_finite(target)
    }
    fn class_of(&self, target: &[f32; N]) -> usize {
        class_of_row(target)
    }
}

impl<const N: usize> Loss<crate::activation::Softmax, [f32; N]> for MeanSquaredError {
    type Target = [f32; N];
    fn value(&self, output: &[f32; N], target: &[f32; N]) -> f32 {
        mean_squared(output, target)
    }
    fn delta(
        &self,
        _: &crate::activation::Softmax,
        output: &mut [f32; N],
        target: &[f32; N],
        scale: f32,
    ) {
        // Softmax Jacobian-vector product: δ = y ⊙ (g - Σ g·y), g = ∂loss/∂y.
        let factor = 2.0 * scale / N as f32;
        let dot: f32 = output
            .iter()
            .zip(target)
            .map(|(y, t)| factor * (y - t) * y)
            .sum();
        for (y, t) in output.iter_mut().zip(target) {
            *y *= factor * (*y - t) - dot;
        }
    }
    fn accuracy(&self, _: &[f32; N], _: &[f32; N]) -> Option<f32> {
        None
    }
    fn check(&self, target: &[f32; N]) -> Result<(), Error> {
        check_finite(target)
    }
    fn class_of(&self, target: &[f32; N]) -> usize {
        class_of_row(target)
    }
}

fn mean_squared<const N: usize>(output: &[f32; N], target: &[f32; N]) -> f32 {
    let sum: f32 = output
        .iter()
        .zip(target)
        .map(|(y, t)| (y - t) * (y - t))
        .sum();
    sum / N as f32
}

/// A class index that a [`SparseCategoricalCrossEntropy`] target can be stored as
/// (`u8` keeps a firmware's label table small).
pub trait Label: Copy {
    /// The index as `usize`.
    fn index(self) -> usize;
}
impl Label for u8 {
    fn index(self) -> usize {
        usize::from(self)
    }
}
impl Label for u16 {
    fn index(self) -> usize {
        usize::from(self)
    }
}
impl Label for u32 {
    fn index(self) -> usize {
        // Saturates on a 16-bit target; a saturated label is then refused as out of range.
        usize::try_from(self).unwrap_or(usize::MAX)
    }
}
impl Label for usize {
    fn index(self) -> usize {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::class_of_row;

    #[test]
    fn classes_of_targets_follow_keras_class_weight() {
        // One column: np.round, half to even; several: the first argmax.
        assert_eq!(class_of_row(&[0.0]), 0);
        assert_eq!(class_of_row(&[0.5]), 0);
        assert_eq!(class_of_row(&[0.51]), 1);
        assert_eq!(class_of_row(&[1.0]), 1);
        assert_eq!(class_of_row(&[2.5]), 2);
        assert_eq!(class_of_row(&[-1.0]), usize::MAX);
        assert_eq!(class_of_row(&[0.0, 1.0, 0.0]), 1);
        assert_eq!(class_of_row(&[0.4, 0.2, 0.4]), 0);
    }
}
