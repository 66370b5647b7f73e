//! Epochs: shuffling, validation, early stopping, refused steps and callbacks.

use rand_core::Rng;

use super::evaluate::{LossSum, Metrics, check_samples, evaluate};
use super::{Dataset, Trainer, uninitialized};
use crate::error::Error;
use crate::loss::Loss;
use crate::model::Network;
use crate::optim::Optimizer;
use crate::rng::Permutation;

/// What [`Trainer::fit`] does; `const` so firmware can keep it in flash.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitConfig {
    /// Passes over the training data.
    pub epochs: usize,
    /// Reshuffle the training data each epoch (Keras' `shuffle=True`).
    pub shuffle: bool,
    /// Stop when the monitored loss (validation loss if a validation set is given, else
    /// training loss) has not improved by more than `min_delta` for this many epochs.
    pub patience: Option<usize>,
    /// The improvement that counts for early stopping. As Keras, its magnitude is used
    /// (`-0.01` means `0.01`); [`Trainer::fit`] returns [`Error::MinDelta`] if it is NaN or
    /// infinite.
    pub min_delta: f32,
    /// What a refused step does to the run.
    pub refused: RefusedSteps,
}

/// What [`Trainer::fit`] does with a step that [`Trainer::step`] refuses (a sample or target
/// that is not finite, a label out of range, a loss, gradient or update that is not
/// finite). Whatever the policy, a refused step changes neither the model, nor the
/// optimizer, nor the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefusedSteps {
    /// The first refused step ends the run with its error (the default: a mislabelled data
    /// set or a diverging configuration is reported at once, as Keras and PyTorch raise on
    /// an out-of-range label). The steps before it were applied.
    #[default]
    Fail,
    /// Refused steps are skipped and counted ([`EpochReport::skipped_steps`], the first
    /// one's error in [`EpochReport::first_refusal`]) while the run has refused at most
    /// `max` of them; the next one ends the run with the error of its epoch's first
    /// refused step. An epoch in which every step is refused ends the run the same way,
    /// whatever `max`: nothing could be learnt from it. For data with rare bad samples
    /// (a glitching sensor).
    Skip {
        /// Refused steps allowed over the whole run.
        max: usize,
    },
}

impl FitConfig {
    /// `epochs` passes, shuffled, no early stopping.
    pub const fn epochs(epochs: usize) -> Self {
        Self {
            epochs,
            shuffle: true,
            patience: None,
            min_delta: 0.0,
            refused: RefusedSteps::Fail,
        }
    }

    /// Sets [`FitConfig::min_delta`] (its magnitude, as Keras).
    ///
    /// # Errors
    /// [`Error::MinDelta`] if `min_delta` is NaN or infinite.
    pub const fn with_min_delta(mut self, min_delta: f32) -> Result<Self, Error> {
        match checked_min_delta(min_delta) {
            Ok(min_delta) => {
                self.min_delta = min_delta;
                Ok(self)
            }
            Err(e) => Err(e),
        }
    }

    /// Sets what a refused step does (see [`RefusedSteps`]).
    pub const fn with_refused_steps(mut self, refused: RefusedSteps) -> Self {
        self.refused = refused;
        self
    }

    /// Adds early stopping with the given patience.
    pub const fn with_patience(mut self, patience: usize) -> Self {
        self.patience = Some(patience);
        self
    }

    /// Turns shuffling on or off.
    pub const fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }
}

/// `|min_delta|` (Keras' `EarlyStopping` takes the magnitude), or the error for NaN and ±∞.
const fn checked_min_delta(min_delta: f32) -> Result<f32, Error> {
    if min_delta.is_finite() {
        Ok(min_delta.abs())
    } else {
        Err(Error::MinDelta { min_delta })
    }
}

/// What one epoch did; handed to the callback.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EpochReport {
    /// Epoch number, from 0.
    pub epoch: usize,
    /// Training loss (mean over the epoch's batches, weighted by batch size, each batch's
    /// loss including the penalty at that step) and accuracy.
    pub train: Metrics,
    /// Metrics on the validation set after the epoch, if one was given.
    pub validation: Option<Metrics>,
    /// Steps refused (and skipped, see [`RefusedSteps::Skip`]) in this epoch.
    pub skipped_steps: usize,
    /// The error of this epoch's first refused step, if any.
    pub first_refusal: Option<Error>,
}

/// What the callback tells [`Trainer::fit`] after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop after this epoch.
    Stop,
}

/// Receives progress from [`Trainer::fit`]. Closures `FnMut(&EpochReport) -> Control`
/// implement it.
pub trait Callback {
    /// After every optimizer step: `batch` of `batches` in this epoch.
    fn on_batch(&mut self, batch: usize, batches: usize) {
        let _ = (batch, batches);
    }
    /// After every epoch.
    fn on_epoch(&mut self, report: &EpochReport) -> Control;
}

impl<F: FnMut(&EpochReport) -> Control> Callback for F {
    fn on_epoch(&mut self, report: &EpochReport) -> Control {
        self(report)
    }
}

/// How [`Trainer::fit`] ended.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FitSummary {
    /// Epochs run.
    pub epochs: usize,
    /// The last epoch's report.
    pub last: Option<EpochReport>,
    /// True if early stopping ended the run.
    pub stopped_early: bool,
}

impl<N: Network, O: Optimizer<N::Params>, const B: usize> Trainer<N, O, B> {
    /// Trains `model` on `train` for `config.epochs` epochs of mini-batches of `B` samples
    /// (the last batch of an epoch may be smaller), reshuffled every epoch from `rng`.
    /// After each epoch the callback gets the epoch's loss and accuracy and, if `validation`
    /// is given, the validation metrics; it may stop the run. A refused step is handled as
    /// `config.refused` says ([`RefusedSteps`]; by default the run ends with its error).
    ///
    /// The callback is a closure `|report| …` returning [`Control`] (no annotation needed);
    /// [`Trainer::fit_with_callback`] takes any [`Callback`], which also sees every batch.
    ///
    /// ```
    /// use microtrain::*;
    /// network! { type Net = (Dense<2, 4, Tanh>, Dense<4, 1, Sigmoid>); }
    /// let mut model: Net = (Dense::new(Tanh), Dense::new(Sigmoid));
    /// let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    /// let mut trainer = Trainer::<Net, _, 4>::new(Adam::keras_default());
    /// let (x, y) = ([[0.0, 1.0], [1.0, 0.0]], [[1.0], [0.0]]);
    /// let data = Dataset::new(&x, &y)?;
    /// let fit = |trainer: &mut Trainer<Net, _, 4>, model: &mut Net, rng: &mut Xoshiro128PlusPlus| {
    ///     trainer.fit(model, &BinaryCrossEntropy, data, None, &FitConfig::epochs(2), rng,
    ///         |report| if report.train.loss < 0.01 { Control::Stop } else { Control::Continue })
    /// };
    /// // Forgetting to initialise is an error, not an all-zero model trained in silence.
    /// assert_eq!(fit(&mut trainer, &mut model, &mut rng).err(), Some(Error::Uninitialized));
    /// model.initialize(&mut rng);
    /// assert_eq!(fit(&mut trainer, &mut model, &mut rng)?.epochs, 2);
    /// # Ok::<(), microtrain::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Uninitialized`] for a model never initialised nor loaded,
    /// [`Error::MinDelta`] for a NaN or infinite `config.min_delta`, and any error of
    /// [`evaluate`] on the validation set (a sample that is not finite, a label out of
    /// range), before anything is trained; a refused step's error as `config.refused`
    /// says; an error of [`evaluate`] on the validation set after an epoch (a validation
    /// loss that is not finite: the model diverged). The epochs before an error were
    /// applied to the model.
    #[allow(clippy::too_many_arguments)]
    pub fn fit<L, R>(
        &mut self,
        model: &mut N,
        loss: &L,
        train: Dataset<'_, N::Input, L::Target>,
        validation: Option<Dataset<'_, N::Input, L::Target>>,
        config: &FitConfig,
        rng: &mut R,
        on_epoch: impl FnMut(&EpochReport) -> Control,
    ) -> Result<FitSummary, Error>
    where
        L: Loss<N::OutputActivation, N::Output>,
        R: Rng + Clone,
    {
        self.fit_with_callback(model, loss, train, validation, config, rng, on_epoch)
    }

    /// [`Trainer::fit`] with a [`Callback`]: `on_epoch` as `fit`'s closure, and `on_batch`
    /// after every step (e.g. for a progress bar).
    ///
    /// # Errors
    /// As [`Trainer::fit`].
    #[allow(clippy::too_many_arguments)]
    pub fn fit_with_callback<L, R, C>(
        &mut self,
        model: &mut N,
        loss: &L,
        train: Dataset<'_, N::Input, L::Target>,
        validation: Option<Dataset<'_, N::Input, L::Target>>,
        config: &FitConfig,
        rng: &mut R,
        mut callback: C,
    ) -> Result<FitSummary, Error>
    where
        L: Loss<N::OutputActivation, N::Output>,
        R: Rng + Clone,
        C: Callback,
    {
        if !model.is_initialized() {
            return Err(uninitialized());
        }
        let min_delta = checked_min_delta(config.min_delta)?;
        if let Some(validation) = validation {
            check_samples::<N, L>(loss, validation)?;
        }
        let allowed = match config.refused {
            RefusedSteps::Fail => 0,
            RefusedSteps::Skip { max } => max,
        };
        let len = train.len();
        let batches = len.div_ceil(B);
        let mut summary = FitSummary {
            epochs: 0,
            last: None,
            stopped_early: false,
        };
        let (mut best, mut since_best, mut refused) = (f32::INFINITY, 0usize, 0usize);
        for epoch in 0..config.epochs {
            let order = if config.shuffle {
                Permutation::new(len, rng)
            } else {
                Permutation::identity(len)
            };
            let (mut loss_sum, mut correct, mut counted, mut skipped) =
                (LossSum::default(), None::<f32>, 0usize, 0usize);
            let mut first_refusal = None;
            for batch in 0..batches {
                let start = batch.saturating_mul(B);
                let rows = B.min(len.saturating_sub(start));
                let index_of = |row: usize| Some(order.get(start.saturating_add(row)));
                match self.step_with(model, loss, train, rows, index_of, rng) {
                    Ok(step) => {
                        loss_sum.add(step.loss, step.rows as f32, len as f32);
                        counted = counted.saturating_add(step.rows);
                        if let Some(c) = step.correct {
                            correct = Some(correct.unwrap_or(0.0) + c);
                        }
                    }
                    Err(e) => {
                        let first = *first_refusal.get_or_insert(e);
                        refused = refused.saturating_add(1);
                        if refused > allowed {
                            return Err(first);
                        }
                        skipped = skipped.saturating_add(1);
                    }
                }
                callback.on_batch(batch, batches);
            }
            if counted == 0 {
                // Every step of the epoch was refused (an epoch has at least one).
                return Err(first_refusal.unwrap_or(Error::NonFinite));
            }
            let validation = match validation {
                Some(v) => Some(evaluate(model, loss, v)?),
                None => None,
            };
            let report = EpochReport {
                epoch,
                train: Metrics {
                    loss: loss_sum.mean(counted as f32, len as f32),
                    accuracy: correct.map(|c| c / counted as f32),
                },
                validation,
                skipped_steps: skipped,
                first_refusal,
            };
            summary.epochs = epoch.saturating_add(1);
            summary.last = Some(report);
            let control = callback.on_epoch(&report);
            if let Some(patience) = config.patience {
                let monitored = report.validation.map_or(report.train.loss, |m| m.loss);
                if monitored < best - min_delta {
                    (best, since_best) = (monitored, 0);
                } else {
                    since_best = since_best.saturating_add(1);
                    // `>=`, as Keras' EarlyStopping (`wait >= patience`) and the docs of
                    // `FitConfig::patience`: stop once `patience` epochs have not improved.
                    if since_best >= patience {
                        summary.stopped_early = true;
                        break;
                    }
                }
            }
            if control == Control::Stop {
                break;
            }
        }
        Ok(summary)
    }
}
