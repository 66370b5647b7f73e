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

use core::marker::PhantomData;

use crate::activation::{Activation, Elementwise, Identity, Sigmoid, Softmax};
use crate::error::Error;
use crate::layers::Row;
use crate::math;

/// Keras' `backend.epsilon()`: probabilities are clamped to `[EPSILON, 1 - EPSILON]` before
/// their logarithm is taken.
pub const EPSILON: f32 = 1e-7;

/// A loss on output rows `O` produced by activation `A`.
pub trait Loss<A: Activation, O: Row> {
    /// What one sample is compared with.
    type Target: Copy;

    /// The loss of one sample.
    fn value(&self, output: &O, target: &Self::Target) -> f32;

    /// Replaces `output` by `scale · ∂value/∂(pre-activation)`.
    fn delta(&self, activation: &A, output: &mut O, target: &Self::Target, scale: f32);

    /// Keras' `accuracy` for this loss: the fraction of this sample's predictions that are
    /// right, or `None` where accuracy has no meaning (regression).
    fn accuracy(&self, output: &O, target: &Self::Target) -> Option<f32>;

    /// Refuses a target the loss cannot use (e.g. a class label out of range).
    ///
    /// # Errors
    /// [`Error::LabelOutOfRange`] for a label too large; [`Error::NonFinite`] for a target
    /// that is NaN or infinite.
    fn check(&self, target: &Self::Target) -> Result<(), Error>;
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

/// Mean squared error, `mean_i (y_i - t_i)²` (Keras' `mean_squared_error`; PyTorch's
/// `MSELoss` with its default `reduction="mean"` is the same).
///
/// Pairs with any [`Elementwise`] activation and with [`Softmax`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MeanSquaredError;

impl<A: Elementwise, const N: usize> Loss<A, [f32; N]> for MeanSquaredError {
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
}

impl<const N: usize> Loss<Softmax, [f32; N]> for MeanSquaredError {
    type Target = [f32; N];
    fn value(&self, output: &[f32; N], target: &[f32; N]) -> f32 {
        mean_squared(output, target)
    }
    fn delta(&self, _: &Softmax, output: &mut [f32; N], target: &[f32; N], scale: f32) {
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
}

fn mean_squared<const N: usize>(output: &[f32; N], target: &[f32; N]) -> f32 {
    let sum: f32 = output
        .iter()
        .zip(target)
        .map(|(y, t)| (y - t) * (y - t))
        .sum();
    sum / N as f32
}

/// Binary cross-entropy on probabilities from a [`Sigmoid`] output, averaged over the
/// outputs (Keras' `binary_crossentropy`, `from_logits=False`).
///
/// The value clamps `p` to `[ε, 1 - ε]` as Keras does. The gradient is the exact
/// `∂/∂z = p - t` of the sigmoid/cross-entropy pair (what TensorFlow computes by
/// recovering the logits); Keras' JAX backend instead differentiates through the clamp
/// and gets 0 once `p` saturates beyond it, which only matters for `|z| > 16`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BinaryCrossEntropy;

impl<const N: usize> Loss<Sigmoid, [f32; N]> for BinaryCrossEntropy {
    type Target = [f32; N];
    fn value(&self, output: &[f32; N], target: &[f32; N]) -> f32 {
        let sum: f32 = output
            .iter()
            .zip(target)
            .map(|(&p, &t)| {
                let p = clamp_probability(p);
                -(t * math::ln(p) + (1.0 - t) * math::ln(1.0 - p))
            })
            .sum();
        sum / N as f32
    }
    fn delta(&self, _: &Sigmoid, output: &mut [f32; N], target: &[f32; N], scale: f32) {
        let factor = scale / N as f32;
        for (p, t) in output.iter_mut().zip(target) {
            *p = factor * (*p - t);
        }
    }
    fn accuracy(&self, output: &[f32; N], target: &[f32; N]) -> Option<f32> {
        Some(binary_accuracy(output, target, 0.5))
    }
    fn check(&self, target: &[f32; N]) -> Result<(), Error> {
        check_finite(target)
    }
}

fn binary_accuracy(output: &[f32], target: &[f32], threshold: f32) -> f32 {
    let right = output
        .iter()
        .zip(target)
        .filter(|&(&y, &t)| (y > threshold) == (t > 0.5))
        .count();
    right as f32 / output.len().max(1) as f32
}

/// Binary cross-entropy on logits from an [`Identity`] output (Keras'
/// `binary_crossentropy(from_logits=True)`, PyTorch's `BCEWithLogitsLoss`).
///
/// Computed as `max(z, 0) - z·t + ln(1 + e^-|z|)`, finite for any finite logit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BinaryCrossEntropyFromLogits;

impl<const N: usize> Loss<Identity, [f32; N]> for BinaryCrossEntropyFromLogits {
    type Target = [f32; N];
    fn value(&self, output: &[f32; N], target: &[f32; N]) -> f32 {
        let sum: f32 = output
            .iter()
            .zip(target)
            .map(|(&z, &t)| z.max(0.0) - z * t + math::ln_1p(math::exp(-math::abs(z))))
            .sum();
        sum / N as f32
    }
    fn delta(&self, _: &Identity, output: &mut [f32; N], target: &[f32; N], scale: f32) {
        let factor = scale / N as f32;
        for (z, t) in output.iter_mut().zip(target) {
            *z = factor * (math::sigmoid(*z) - t);
        }
    }
    fn accuracy(&self, output: &[f32; N], target: &[f32; N]) -> Option<f32> {
        Some(binary_accuracy(output, target, 0.0))
    }
    fn check(&self, target: &[f32; N]) -> Result<(), Error> {
        check_finite(target)
    }
}

/// Categorical cross-entropy on [`Softmax`] probabilities with one-hot (or probability)
/// targets: `-Σ t_i ln(clamp(p_i))` (Keras' `categorical_crossentropy`).
/// The gradient is the fused `δ = p·Σt - t` (`p - t` for one-hot targets).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CategoricalCrossEntropy;

impl<const N: usize> Loss<Softmax, [f32; N]> for CategoricalCrossEntropy {
    type Target = [f32; N];
    fn value(&self, output: &[f32; N], target: &[f32; N]) -> f32 {
        -output
            .iter()
            .zip(target)
            .map(|(&p, &t)| t * math::ln(clamp_probability(p)))
            .sum::<f32>()
    }
    fn delta(&self, _: &Softmax, output: &mut [f32; N], target: &[f32; N], scale: f32) {
        let total: f32 = target.iter().sum();
        for (p, t) in output.iter_mut().zip(target) {
            *p = scale * (*p * total - t);
        }
    }
    fn accuracy(&self, output: &[f32; N], target: &[f32; N]) -> Option<f32> {
        Some(if argmax(output) == argmax(target) {
            1.0
        } else {
            0.0
        })
    }
    fn check(&self, target: &[f32; N]) -> Result<(), Error> {
        check_finite(target)
    }
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

/// Categorical cross-entropy on [`Softmax`] probabilities with integer labels:
/// `-ln(clamp(p_label))` (Keras' `sparse_categorical_crossentropy`; PyTorch's
/// `CrossEntropyLoss` takes logits and applies the softmax itself).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparseCategoricalCrossEntropy<L = usize>(PhantomData<L>);

impl<L> SparseCategoricalCrossEntropy<L> {
    /// The loss, for labels stored as `L`.
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<L> Default for SparseCategoricalCrossEntropy<L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L: Label, const N: usize> Loss<Softmax, [f32; N]> for SparseCategoricalCrossEntropy<L> {
    type Target = L;
    fn value(&self, output: &[f32; N], target: &L) -> f32 {
        let p = output.get(target.index()).copied().unwrap_or(0.0);
        -math::ln(clamp_probability(p))
    }
    fn delta(&self, _: &Softmax, output: &mut [f32; N], target: &L, scale: f32) {
        let label = target.index();
        for (i, p) in output.iter_mut().enumerate() {
            let t = if i == label { 1.0 } else { 0.0 };
            *p = scale * (*p - t);
        }
    }
    fn accuracy(&self, output: &[f32; N], target: &L) -> Option<f32> {
        Some(if argmax(output) == target.index() {
            1.0
        } else {
            0.0
        })
    }
    fn check(&self, target: &L) -> Result<(), Error> {
        let label = target.index();
        if label < N {
            Ok(())
        } else {
            Err(Error::LabelOutOfRange { label, classes: N })
        }
    }
}
