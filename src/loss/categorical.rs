//! Softmax cross-entropy: categorical (one-hot or probability targets) and sparse (labels),
//! on a softmax output (from its logits) and on logits.

use core::marker::PhantomData;

use super::{Label, Loss, argmax, check_finite, class_of_row};
use crate::activation::{Identity, Softmax};
use crate::error::Error;
use crate::math;

/// The largest value, NaNs skipped (as the softmax kernels).
fn max_of(z: &[f32]) -> f32 {
    z.iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// `-Σ tᵢ·log_softmax(z)ᵢ`, computed as `ln(Σ e^(zⱼ - m))·Σt - Σ tᵢ·(zᵢ - m)` with
/// `m = max z` (log-sum-exp: no `exp` overflows, no probability underflows into the
/// value); leaves `scale·(p·Σt - t)` in `z`, `p = softmax(z)`. The probabilities are
/// computed with the scalar softmax kernel's operations in its order, so they have its bits.
fn softmax_cross_entropy<const N: usize>(z: &mut [f32; N], t: &[f32; N], scale: f32) -> f32 {
    let max = max_of(z);
    let (mut sum, mut total, mut dot) = (0.0f32, 0.0f32, 0.0f32);
    for (v, &t) in z.iter_mut().zip(t) {
        let shifted = *v - max;
        total += t;
        dot += t * shifted;
        *v = math::exp(shifted);
        sum += *v;
    }
    let value = math::ln(sum) * total - dot;
    let inv = 1.0 / sum;
    for (v, &t) in z.iter_mut().zip(t) {
        *v = scale * (*v * inv * total - t);
    }
    value
}

/// `-log_softmax(z)[label]` = `ln(Σ e^(zⱼ - m)) - (z_label - m)`; leaves
/// `scale·(p - onehot(label))` in `z`, as [`softmax_cross_entropy`]. A label out of range
/// (refused by `check` before) counts as logit 0.
fn sparse_softmax_cross_entropy<const N: usize>(z: &mut [f32; N], label: usize, scale: f32) -> f32 {
    let max = max_of(z);
    let shifted_label = z.get(label).map_or(0.0, |&v| v - max);
    let mut sum = 0.0f32;
    for v in z.iter_mut() {
        *v = math::exp(*v - max);
        sum += *v;
    }
    let value = math::ln(sum) - shifted_label;
    let inv = 1.0 / sum;
    for (i, v) in z.iter_mut().enumerate() {
        let t = if i == label { 1.0 } else { 0.0 };
        *v = scale * (*v * inv - t);
    }
    value
}

fn check_label(label: usize, classes: usize) -> Result<(), Error> {
    if label < classes {
        Ok(())
    } else {
        Err(Error::LabelOutOfRange { label, classes })
    }
}

fn hit(right: bool) -> Option<f32> {
    Some(if right { 1.0 } else { 0.0 })
}

/// Categorical cross-entropy on a [`Softmax`] output with one-hot (or probability) targets:
/// `-Σ tᵢ·ln(pᵢ)` (Keras' `categorical_crossentropy`), computed from the softmax layer's
/// **logits**, as `-Σ tᵢ·log_softmax(z)ᵢ` (see the [module docs](crate::loss): exact on
/// confident mistakes, where Keras' JAX backend clamps `p` at `1e-7`). The gradient is the
/// fused `δ = p·Σt - t` (`p - t` for one-hot targets). Keras' label smoothing:
/// [`CategoricalCrossEntropy::with_label_smoothing`].
///
/// ```
/// use microtrain::*;
/// // Logits [100, -100, 0] for class 1: p₁ = e⁻²⁰⁰ is 0 in f32, the loss is 200.
/// network! { type Net = (Dense<1, 3, Softmax>,); }
/// let mut model: Net = (Dense::new(Softmax),);
/// model.0.params.bias = [100.0, -100.0, 0.0];
/// let (x, y) = ([[0.0]], [[0.0, 1.0, 0.0]]);
/// let loss = evaluate(&model, &CategoricalCrossEntropy, Dataset::new(&x, &y)?)?.loss;
/// assert_eq!(loss, 200.0);
/// // Inference still gives the probabilities.
/// assert_eq!(model.infer(&[0.0])[0], 1.0);
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CategoricalCrossEntropy;

/// Categorical cross-entropy on logits from an [`Identity`] output (Keras'
/// `categorical_crossentropy(from_logits=True)`; PyTorch's `CrossEntropyLoss` with
/// probability targets): `-Σ tᵢ·log_softmax(z)ᵢ`, by log-sum-exp, finite for any finite
/// logits; gradient `softmax(z)·Σt - t`. Inference gives logits: their `argmax` is the
/// class. Keras' label smoothing: [`CategoricalCrossEntropyFromLogits::with_label_smoothing`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CategoricalCrossEntropyFromLogits;

macro_rules! categorical {
    ($loss:ty, $activation:ty, $pre:expr) => {
        impl<const N: usize> Loss<$activation, [f32; N]> for $loss {
            type Target = [f32; N];
            const PRE_ACTIVATION: bool = $pre;
            fn value(&self, logits: &[f32; N], target: &[f32; N]) -> f32 {
                softmax_cross_entropy(&mut { *logits }, target, 0.0)
            }
            fn delta(&self, _: &$activation, logits: &mut [f32; N], target: &[f32; N], scale: f32) {
                softmax_cross_entropy(logits, target, scale);
            }
            fn value_and_delta(
                &self,
                _: &$activation,
                logits: &mut [f32; N],
                target: &[f32; N],
                scale: f32,
            ) -> f32 {
                softmax_cross_entropy(logits, target, scale)
            }
            fn accuracy(&self, logits: &[f32; N], target: &[f32; N]) -> Option<f32> {
                hit(argmax(logits) == argmax(target))
            }
            fn check(&self, target: &[f32; N]) -> Result<(), Error> {
                check_finite(target)
            }
            fn class_of(&self, target: &[f32; N]) -> usize {
                class_of_row(target)
            }
        }
    };
}

categorical!(CategoricalCrossEntropy, Softmax, true);
categorical!(CategoricalCrossEntropyFromLogits, Identity, false);

/// Categorical cross-entropy on a [`Softmax`] output with integer labels: `-ln(p_label)`
/// (Keras' `sparse_categorical_crossentropy`), computed from the softmax layer's **logits**
/// as `-log_softmax(z)_label` (see [`CategoricalCrossEntropy`]; PyTorch's
/// `CrossEntropyLoss` takes logits and applies the softmax itself). Keras 3 has no label
/// smoothing for it, nor has this crate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparseCategoricalCrossEntropy<L = usize>(PhantomData<L>);

/// Categorical cross-entropy on logits from an [`Identity`] output with integer labels
/// (Keras' `sparse_categorical_crossentropy(from_logits=True)`, PyTorch's
/// `CrossEntropyLoss`): `-log_softmax(z)_label` by log-sum-exp, gradient
/// `softmax(z) - onehot(label)`.
///
/// ```
/// use microtrain::*;
/// network! { type Net = (Dense<1, 3, Identity>,); }
/// let mut model: Net = (Dense::new(Identity),);
/// model.0.params.bias = [100.0, -100.0, 0.0];
/// let (x, y) = ([[0.0]], [1u8]);
/// let loss = SparseCategoricalCrossEntropyFromLogits::<u8>::new();
/// assert_eq!(evaluate(&model, &loss, Dataset::new(&x, &y)?)?.loss, 200.0);
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparseCategoricalCrossEntropyFromLogits<L = usize>(PhantomData<L>);

macro_rules! sparse {
    ($loss:ident, $activation:ty, $pre:expr) => {
        impl<L> $loss<L> {
            /// The loss, for labels stored as `L`.
            pub const fn new() -> Self {
                Self(PhantomData)
            }
        }

        impl<L> Default for $loss<L> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<L: Label, const N: usize> Loss<$activation, [f32; N]> for $loss<L> {
            type Target = L;
            const PRE_ACTIVATION: bool = $pre;
            fn value(&self, logits: &[f32; N], target: &L) -> f32 {
                sparse_softmax_cross_entropy(&mut { *logits }, target.index(), 0.0)
            }
            fn delta(&self, _: &$activation, logits: &mut [f32; N], target: &L, scale: f32) {
                sparse_softmax_cross_entropy(logits, target.index(), scale);
            }
            fn value_and_delta(
                &self,
                _: &$activation,
                logits: &mut [f32; N],
                target: &L,
                scale: f32,
            ) -> f32 {
                sparse_softmax_cross_entropy(logits, target.index(), scale)
            }
            fn accuracy(&self, logits: &[f32; N], target: &L) -> Option<f32> {
                hit(argmax(logits) == target.index())
            }
            fn check(&self, target: &L) -> Result<(), Error> {
                check_label(target.index(), N)
            }
            fn class_of(&self, target: &L) -> usize {
                target.index()
            }
        }
    };
}

sparse!(SparseCategoricalCrossEntropy, Softmax, true);
sparse!(SparseCategoricalCrossEntropyFromLogits, Identity, false);
