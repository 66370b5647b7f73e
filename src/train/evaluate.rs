//! Inference over a data set: loss and accuracy, predictions.

use super::{Dataset, all_finite};
use crate::error::Error;
use crate::layers::Row;
use crate::loss::Loss;
use crate::model::Network;

/// Loss and accuracy over a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Metrics {
    /// Mean loss per sample plus the regularization term (as Keras reports it).
    pub loss: f32,
    /// Fraction of predictions that are right, if the loss defines accuracy.
    pub accuracy: Option<f32>,
}

/// Refuses a data set with a sample that is not finite or a target the loss cannot use.
pub(super) fn check_samples<N, L>(
    loss: &L,
    data: Dataset<'_, N::Input, L::Target>,
) -> Result<(), Error>
where
    N: Network,
    L: Loss<N::OutputActivation, N::Output>,
{
    for (sample, target) in data.samples().iter().zip(data.targets()) {
        if !all_finite(sample.as_slice()) {
            return Err(Error::NonFinite);
        }
        loss.check(target)?;
    }
    Ok(())
}

/// What a loss scores for one sample at inference: the output, or the last layer's
/// pre-activation for a loss that applies the activation itself ([`Loss::PRE_ACTIVATION`]).
pub(crate) fn loss_output<N, L>(model: &N, _: &L, sample: &N::Input) -> N::Output
where
    N: Network,
    L: Loss<N::OutputActivation, N::Output>,
{
    if L::PRE_ACTIVATION {
        model.infer_pre_activation(sample)
    } else {
        model.infer(sample)
    }
}

/// Runs the model on every sample (inference: dropout off) and averages loss and accuracy;
/// the loss includes the regularization term, as Keras' `evaluate` does.
///
/// With sample or class weights in `data` ([`Dataset::with_sample_weights`],
/// [`Dataset::with_class_weights`]) the loss is `Σ wᵢ·lᵢ / n` over the `n` samples (Keras'
/// `evaluate(sample_weight=…)`, reduction `sum_over_batch_size`); accuracy stays
/// unweighted, as Keras' `metrics=["accuracy"]`.
///
/// # Errors
/// [`Error::NonFinite`] if a sample is NaN or infinite, or if the loss is (a model that
/// diverged, or a finite sample that overflows it); [`Error::LabelOutOfRange`] (or the
/// loss's other target errors) for a target the loss cannot score. Keras would report a
/// NaN loss, or score an out-of-range label as probability 0; here neither can pass
/// for a result.
pub fn evaluate<N, L>(
    model: &N,
    loss: &L,
    data: Dataset<'_, N::Input, L::Target>,
) -> Result<Metrics, Error>
where
    N: Network,
    L: Loss<N::OutputActivation, N::Output>,
{
    let (mut sum, mut correct) = (LossSum::default(), None::<f32>);
    let n = data.len().max(1) as f32;
    let weights = data.weights();
    for (index, (sample, target)) in data.samples().iter().zip(data.targets()).enumerate() {
        if !all_finite(sample.as_slice()) {
            return Err(Error::NonFinite);
        }
        loss.check(target)?;
        let output = loss_output(model, loss, sample);
        let weight = weights.map_or(1.0, |w| w.of(index, loss.class_of(target)));
        sum.add(loss.value(&output, target), weight, n);
        if let Some(a) = loss.accuracy(&output, target) {
            correct = Some(correct.unwrap_or(0.0) + a);
        }
    }
    let total = sum.mean(n, n) + model.penalty();
    if !total.is_finite() {
        return Err(Error::NonFinite);
    }
    Ok(Metrics {
        loss: total,
        accuracy: correct.map(|c| c / n),
    })
}

/// A weighted sum of losses, divided at the end: `Σ wᵢ·lᵢ / total`. The plain sum can
/// overflow while every loss is finite (10⁶ samples of loss 10³⁴); beside it runs the sum
/// of `wᵢ·lᵢ/total`, which stays below the largest loss, and the mean comes from it only
/// then, so ordinary runs keep the plain sum's bits.
#[derive(Default)]
pub(super) struct LossSum {
    plain: f32,
    scaled: f32,
}

impl LossSum {
    pub(super) fn add(&mut self, loss: f32, weight: f32, total: f32) {
        self.plain += loss * weight;
        self.scaled += loss * (weight / total);
    }

    /// The mean over the `count` of the `total` weight that was added.
    pub(super) fn mean(&self, count: f32, total: f32) -> f32 {
        if self.plain.is_finite() {
            self.plain / count
        } else {
            self.scaled * (total / count)
        }
    }
}

/// Runs the model on each sample of `inputs` and writes the results to `outputs`
/// (up to the shorter length). Inference: dropout is the identity. Nothing is checked: a
/// sample with a NaN or an infinity, or one that overflows the model, gives an output with
/// NaN or infinite values (every activation passes NaN on), never a plausible finite
/// prediction; test `y.iter().all(|v| v.is_finite())` where that matters.
pub fn predict<N: Network>(model: &N, inputs: &[N::Input], outputs: &mut [N::Output]) {
    for (x, y) in inputs.iter().zip(outputs.iter_mut()) {
        *y = model.infer(x);
    }
}
