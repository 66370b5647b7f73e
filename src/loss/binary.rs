//! Binary cross-entropy, on probabilities and on logits.

use super::{Loss, check_finite, clamp_probability, class_of_row};
use crate::activation::{Identity, Sigmoid};
use crate::error::Error;
use crate::math;

/// Binary cross-entropy on probabilities from a [`Sigmoid`] output, averaged over the
/// outputs (Keras' `binary_crossentropy`, `from_logits=False`).
///
/// The value clamps `p` to `[ε, 1 - ε]` as Keras does. The gradient is the exact
/// `∂/∂z = p - t` of the sigmoid/cross-entropy pair (what TensorFlow computes by
/// recovering the logits); Keras' JAX backend instead differentiates through the clamp
/// and gets 0 once `p` saturates beyond it, which only matters for `|z| > 16`.
/// Keras' label smoothing: [`BinaryCrossEntropy::with_label_smoothing`].
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
    fn class_of(&self, target: &[f32; N]) -> usize {
        class_of_row(target)
    }
}

pub(super) fn binary_accuracy(output: &[f32], target: &[f32], threshold: f32) -> f32 {
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
/// Keras' label smoothing: [`BinaryCrossEntropyFromLogits::with_label_smoothing`].
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
    fn class_of(&self, target: &[f32; N]) -> usize {
        class_of_row(target)
    }
}
