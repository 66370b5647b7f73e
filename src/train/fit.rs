//! Epochs: shuffling, validation, early stopping, learning-rate reduction, refused steps
//! and callbacks.

use core::marker::PhantomData;

use rand_core::Rng;

use super::early_stopping::{BestWeights, EarlyStopping, EarlyStoppingState, copy_tensors};
use super::evaluate::{LossSum, Metrics, check_samples, evaluate};
use super::monitor::Monitor;
use super::plateau::{ReduceLrOnPlateau, ReduceLrOnPlateauState};
use super::{Dataset, Trainer, uninitialized};
use crate::error::Error;
use crate::layers::Parameters;
use crate::loss::Loss;
use crate::model::Network;
use crate::optim::Optimizer;
use crate::rng::{Permutation, shuffle_indices};

/// What [`Trainer::fit`] does; `const` so firmware can keep it in flash.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitConfig {
    /// Passes over the training data.
    pub epochs: usize,
    /// Reshuffle the training data each epoch (Keras' `shuffle=True`): with a
    /// [`Permutation`](crate::rng::Permutation) (no memory) in [`Trainer::fit`], with a
    /// Fisher–Yates shuffle of the caller's indices in
    /// [`Trainer::fit_with_shuffle_buffer`].
    pub shuffle: bool,
    /// Keras' `EarlyStopping` callback, if any (see [`EarlyStopping`]).
    pub early_stopping: Option<EarlyStopping>,
    /// Keras' `ReduceLROnPlateau` callback, if any (see [`ReduceLrOnPlateau`]).
    pub reduce_lr_on_plateau: Option<ReduceLrOnPlateau>,
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
    /// `epochs` passes, shuffled, no early stopping, a constant learning rate.
    pub const fn epochs(epochs: usize) -> Self {
        Self {
            epochs,
            shuffle: true,
            early_stopping: None,
            reduce_lr_on_plateau: None,
            refused: RefusedSteps::Fail,
        }
    }

    /// Sets what a refused step does (see [`RefusedSteps`]).
    pub const fn with_refused_steps(mut self, refused: RefusedSteps) -> Self {
        self.refused = refused;
        self
    }

    /// Adds early stopping (see [`EarlyStopping`]).
    pub const fn with_early_stopping(mut self, early_stopping: EarlyStopping) -> Self {
        self.early_stopping = Some(early_stopping);
        self
    }

    /// Adds early stopping on the validation loss with the given patience and Keras'
    /// other defaults: `EarlyStopping(monitor="val_loss", patience=patience)`, i.e.
    /// `with_early_stopping(EarlyStopping::new(Monitor::ValLoss).with_patience(patience))`.
    /// `fit` then needs a validation set ([`Error::MissingMetric`] without one).
    pub const fn with_patience(self, patience: usize) -> Self {
        self.with_early_stopping(EarlyStopping::new(Monitor::ValLoss).with_patience(patience))
    }

    /// Adds learning-rate reduction on plateaus (see [`ReduceLrOnPlateau`]).
    pub const fn with_reduce_lr_on_plateau(mut self, plateau: ReduceLrOnPlateau) -> Self {
        self.reduce_lr_on_plateau = Some(plateau);
        self
    }

    /// Turns shuffling on or off.
    pub const fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
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
    /// The optimizer's learning rate at the end of the epoch, before any reduction
    /// (Keras' `logs["learning_rate"]`).
    pub learning_rate: f32,
    /// The rate [`ReduceLrOnPlateau`] set after this epoch, if it lowered it: the next
    /// epoch's.
    pub new_learning_rate: Option<f32>,
    /// True if [`EarlyStopping`] ends the run after this epoch.
    pub stops_early: bool,
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

/// Receives progress from [`Trainer::fit_with_callback`] for a model `N` trained with an
/// optimizer `O`; after each epoch it sees the report, the model and the optimizer (e.g. to
/// checkpoint them with [`persist::save_with_optimizer`](crate::persist::save_with_optimizer)).
/// Closures `FnMut(&EpochReport) -> Control` implement it for every model; [`with_model`]
/// makes one of a closure that also takes the model.
///
/// ```
/// use microtrain::*;
/// /// Saves the model after every epoch whose validation loss is the lowest so far.
/// struct Checkpoint { best: f32, bytes: [u8; 256], saved: usize }
/// impl<N: Network, O> Callback<N, O> for &mut Checkpoint {
///     fn on_epoch(&mut self, report: &EpochReport, model: &N, _: &O) -> Control {
///         let loss = report.validation.map_or(f32::INFINITY, |m| m.loss);
///         if loss < self.best {
///             self.best = loss;
///             if let Ok(len) = persist::save(model, &mut self.bytes) {
///                 self.saved = len;
///             }
///         }
///         Control::Continue
///     }
/// }
/// network! { type Net = (Dense<2, 4, Tanh>, Dense<4, 1, Sigmoid>); }
/// let mut model: Net = (Dense::new(Tanh), Dense::new(Sigmoid));
/// let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
/// model.initialize(&mut rng);
/// let mut trainer = Trainer::<Net, _, 2>::new(Sgd::new(0.5)?);
/// let (x, y) = ([[0.0, 1.0], [1.0, 0.0]], [[1.0], [0.0]]);
/// let data = Dataset::new(&x, &y)?;
/// let mut checkpoint = Checkpoint { best: f32::INFINITY, bytes: [0; 256], saved: 0 };
/// trainer.fit_with_callback(&mut model, &BinaryCrossEntropy, data, Some(data),
///     &FitConfig::epochs(5), &mut rng, &mut checkpoint)?;
/// assert_eq!(checkpoint.saved, persist::parameters_len::<Net>());
/// # Ok::<(), microtrain::Error>(())
/// ```
pub trait Callback<N, O> {
    /// After every optimizer step: `batch` of `batches` in this epoch.
    fn on_batch(&mut self, batch: usize, batches: usize) {
        let _ = (batch, batches);
    }
    /// After every epoch, with the model and optimizer as the epoch left them (before
    /// [`EarlyStopping`] restores the best weights at the end of the run, and after
    /// [`ReduceLrOnPlateau`] set a new rate).
    fn on_epoch(&mut self, report: &EpochReport, model: &N, optimizer: &O) -> Control;
}

impl<N, O, F: FnMut(&EpochReport) -> Control> Callback<N, O> for F {
    fn on_epoch(&mut self, report: &EpochReport, _: &N, _: &O) -> Control {
        self(report)
    }
}

/// A [`Callback`] of a closure that takes the report and the model; see [`with_model`].
pub struct WithModel<N, F> {
    on_epoch: F,
    model: PhantomData<fn(&N)>,
}

/// Makes a [`Callback`] of `on_epoch(report, model)`, for
/// [`Trainer::fit_with_callback`]: a closure that reads the model after each epoch.
///
/// ```
/// use microtrain::*;
/// network! { type Net = (Dense<2, 4, Tanh>, Dense<4, 1, Sigmoid>); }
/// let mut model: Net = (Dense::new(Tanh), Dense::new(Sigmoid));
/// let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
/// model.initialize(&mut rng);
/// let mut trainer = Trainer::<Net, _, 2>::new(Sgd::new(0.5)?);
/// let (x, y) = ([[0.0, 1.0], [1.0, 0.0]], [[1.0], [0.0]]);
/// let data = Dataset::new(&x, &y)?;
/// let mut largest = Vec::new();
/// trainer.fit_with_callback(&mut model, &BinaryCrossEntropy, data, None,
///     &FitConfig::epochs(3), &mut rng,
///     with_model(|_report, model: &Net| {
///         largest.push(model.parameters().flatten().fold(0.0f32, |m, w| m.max(w.abs())));
///         Control::Continue
///     }))?;
/// assert_eq!(largest.len(), 3);
/// # Ok::<(), microtrain::Error>(())
/// ```
pub fn with_model<N, F: FnMut(&EpochReport, &N) -> Control>(on_epoch: F) -> WithModel<N, F> {
    WithModel {
        on_epoch,
        model: PhantomData,
    }
}

impl<N, O, F: FnMut(&EpochReport, &N) -> Control> Callback<N, O> for WithModel<N, F> {
    fn on_epoch(&mut self, report: &EpochReport, model: &N, _: &O) -> Control {
        (self.on_epoch)(report, model)
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
    /// The epoch at which [`EarlyStopping`] ended the run (Keras' `stopped_epoch`, which
    /// is 0 when it did not).
    pub stopped_epoch: Option<usize>,
    /// [`EarlyStopping`]'s best epoch (Keras' `best_epoch`), once an epoch was monitored.
    pub best_epoch: Option<usize>,
    /// The epoch whose parameters the model holds after
    /// [`EarlyStopping::with_restore_best_weights`] restored them; `None` if nothing was
    /// restored (the model then holds the last epoch's).
    pub restored_epoch: Option<usize>,
}

/// The value of `monitor` in `report`, or the error that it is missing.
fn monitored(monitor: Monitor, report: &EpochReport) -> Result<f32, Error> {
    monitor
        .value(report)
        .ok_or(Error::MissingMetric { monitor })
}

impl<N, O, const B: usize, K> Trainer<N, O, B, K>
where
    N: Network,
    O: Optimizer<N::Params>,
    K: BestWeights<N::Params>,
{
    /// Trains `model` on `train` for `config.epochs` epochs of mini-batches of `B` samples
    /// (the last batch of an epoch may be smaller), reshuffled every epoch from `rng`.
    /// After each epoch the callback gets the epoch's loss and accuracy and, if `validation`
    /// is given, the validation metrics; it may stop the run. A refused step is handled as
    /// `config.refused` says ([`RefusedSteps`]; by default the run ends with its error).
    /// `config`'s [`ReduceLrOnPlateau`] and [`EarlyStopping`] act after each epoch, before
    /// the callback, in that order; with `restore_best_weights` the model gets the best
    /// epoch's parameters back when the run ends, however it ends without an error
    /// ([`FitSummary::restored_epoch`]).
    ///
    /// The callback is a closure `|report| …` returning [`Control`] (no annotation needed);
    /// [`Trainer::fit_with_callback`] takes any [`Callback`], which also sees the model and
    /// every batch.
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
    /// Before anything is trained: [`Error::Uninitialized`] for a model never initialised
    /// nor loaded; [`Error::MissingMetric`] for a callback in `config` that monitors a
    /// validation metric without `validation`; [`Error::NoRoomForBestWeights`] for
    /// `restore_best_weights` on a trainer without room for them; any error of
    /// [`evaluate`] on the validation set (a sample that is not finite, a label out of
    /// range). During the run: a refused step's error as `config.refused` says; an error
    /// of [`evaluate`] on the validation set after an epoch (a validation loss that is not
    /// finite: the model diverged); [`Error::MissingMetric`] for a monitored accuracy the
    /// loss does not compute; an error of [`Optimizer::set_learning_rate`] for the rate
    /// [`ReduceLrOnPlateau`] chose. The epochs before an error were applied to the model
    /// (and no best weights are restored).
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

    /// [`Trainer::fit`] with a [`Callback`]: `on_epoch` as `fit`'s closure, with the model
    /// and the optimizer, and `on_batch` after every step (e.g. for a progress bar).
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
        callback: C,
    ) -> Result<FitSummary, Error>
    where
        L: Loss<N::OutputActivation, N::Output>,
        R: Rng + Clone,
        C: Callback<N, O>,
    {
        self.run(model, loss, train, validation, config, rng, None, callback)
    }

    /// [`Trainer::fit_with_callback`] shuffling through `shuffle_buffer`, one `u16` per
    /// training sample: each epoch's order is a Fisher–Yates shuffle of the sample indices
    /// ([`rng::shuffle_indices`](crate::rng::shuffle_indices)), uniform over all orders, for
    /// one random draw and a swap per sample, where the default
    /// [`Permutation`] needs no memory but hashes `log2 n + 16`
    /// rounds per sample (on a Cortex-M4F, about 600 instructions per sample for Iris'
    /// 120, 5 % of a step without a dropout layer's). The buffer is `2·n` bytes of the
    /// caller's RAM (a `static` in firmware), not counted in [`Trainer::RAM_BYTES`]; what
    /// it holds before and after the run means nothing. Without `config.shuffle` the
    /// order is the samples' and the buffer is only checked. The generator draws
    /// differently from `fit`'s shuffle, so the two runs differ; each is reproducible
    /// from its seed.
    ///
    /// ```
    /// use microtrain::*;
    /// network! { type Net = (Dense<2, 4, Tanh>, Dense<4, 1, Sigmoid>); }
    /// let mut model: Net = (Dense::new(Tanh), Dense::new(Sigmoid));
    /// let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    /// model.initialize(&mut rng);
    /// let mut trainer = Trainer::<Net, _, 1>::new(Sgd::new(0.5)?);
    /// let (x, y) = ([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [[1.0], [1.0], [0.0]]);
    /// let data = Dataset::new(&x, &y)?;
    /// let mut order = [0u16; 3];
    /// let summary = trainer.fit_with_shuffle_buffer(&mut model, &BinaryCrossEntropy, data,
    ///     None, &FitConfig::epochs(4), &mut rng, &mut order, |_: &EpochReport| Control::Continue)?;
    /// assert_eq!(summary.epochs, 4);
    /// // One index per sample, or nothing is trained.
    /// assert_eq!(trainer.fit_with_shuffle_buffer(&mut model, &BinaryCrossEntropy, data, None,
    ///     &FitConfig::epochs(4), &mut rng, &mut [0u16; 2], |_: &EpochReport| Control::Continue).err(),
    ///     Some(Error::ShuffleBuffer { samples: 3, buffer: 2 }));
    /// # Ok::<(), microtrain::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ShuffleBuffer`] before anything is trained unless `shuffle_buffer` has one
    /// index per training sample (at most 65,536); otherwise as [`Trainer::fit`].
    #[allow(clippy::too_many_arguments)]
    pub fn fit_with_shuffle_buffer<L, R, C>(
        &mut self,
        model: &mut N,
        loss: &L,
        train: Dataset<'_, N::Input, L::Target>,
        validation: Option<Dataset<'_, N::Input, L::Target>>,
        config: &FitConfig,
        rng: &mut R,
        shuffle_buffer: &mut [u16],
        callback: C,
    ) -> Result<FitSummary, Error>
    where
        L: Loss<N::OutputActivation, N::Output>,
        R: Rng + Clone,
        C: Callback<N, O>,
    {
        let (samples, buffer) = (train.len(), shuffle_buffer.len());
        if buffer != samples || samples > usize::from(u16::MAX) + 1 {
            return Err(Error::ShuffleBuffer { samples, buffer });
        }
        let buffer = Some(shuffle_buffer);
        self.run(
            model, loss, train, validation, config, rng, buffer, callback,
        )
    }

    /// The run of [`Trainer::fit_with_callback`], each epoch's order from a
    /// [`Permutation`] or, given `order` (one index per sample, checked by the caller), a
    /// Fisher–Yates shuffle in it.
    #[allow(clippy::too_many_arguments)]
    fn run<L, R, C>(
        &mut self,
        model: &mut N,
        loss: &L,
        train: Dataset<'_, N::Input, L::Target>,
        validation: Option<Dataset<'_, N::Input, L::Target>>,
        config: &FitConfig,
        rng: &mut R,
        mut order: Option<&mut [u16]>,
        mut callback: C,
    ) -> Result<FitSummary, Error>
    where
        L: Loss<N::OutputActivation, N::Output>,
        R: Rng + Clone,
        C: Callback<N, O>,
    {
        if !model.is_initialized() {
            return Err(uninitialized());
        }
        let mut stopping = config.early_stopping.map(EarlyStoppingState::new);
        let mut plateau = config.reduce_lr_on_plateau.map(ReduceLrOnPlateauState::new);
        let monitors = [
            stopping.map(|s| s.rule().monitor()),
            plateau.map(|p| p.rule().monitor()),
        ];
        if let Some(&monitor) = monitors
            .iter()
            .flatten()
            .find(|m| m.needs_validation() && validation.is_none())
        {
            return Err(Error::MissingMetric { monitor });
        }
        if stopping.is_some_and(|s| s.rule().restore_best_weights())
            && self.best_weights.slot().is_none()
        {
            return Err(Error::NoRoomForBestWeights);
        }
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
            stopped_epoch: None,
            best_epoch: None,
            restored_epoch: None,
        };
        let mut refused = 0usize;
        for epoch in 0..config.epochs {
            let epoch_order = match (order.as_deref_mut(), config.shuffle) {
                (Some(order), true) => {
                    // The length was checked: this cannot fail.
                    shuffle_indices(order, rng)?;
                    EpochOrder::Buffer(order)
                }
                (None, true) => EpochOrder::Permutation(Permutation::new(len, rng)),
                (_, false) => EpochOrder::Permutation(Permutation::identity(len)),
            };
            let (mut loss_sum, mut correct, mut counted, mut skipped) =
                (LossSum::default(), None::<f32>, 0usize, 0usize);
            let mut first_refusal = None;
            for batch in 0..batches {
                let start = batch.saturating_mul(B);
                let rows = B.min(len.saturating_sub(start));
                let mut drawn = [0usize; B];
                let index_of = epoch_order.batch(start, &mut drawn[..rows]);
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
            let mut report = EpochReport {
                epoch,
                train: Metrics {
                    loss: loss_sum.mean(counted as f32, len as f32),
                    accuracy: correct.map(|c| c / counted as f32),
                },
                validation,
                skipped_steps: skipped,
                first_refusal,
                learning_rate: self.optimizer.learning_rate(),
                new_learning_rate: None,
                stops_early: false,
            };
            if let Some(plateau) = &mut plateau {
                let current = monitored(plateau.rule().monitor(), &report)?;
                if let Some(rate) = plateau.on_epoch_end(current, report.learning_rate) {
                    self.optimizer.set_learning_rate(rate)?;
                    report.new_learning_rate = Some(rate);
                }
            }
            if let Some(stopping) = &mut stopping {
                let current = monitored(stopping.rule().monitor(), &report)?;
                let verdict = stopping.on_epoch_end(epoch, current);
                if verdict.keep_weights
                    && let Some(best) = self.best_weights.slot()
                {
                    copy_tensors(best.tensors_mut(), model.parameters());
                }
                report.stops_early = verdict.stop;
            }
            summary.epochs = epoch.saturating_add(1);
            summary.last = Some(report);
            let control = callback.on_epoch(&report, model, &self.optimizer);
            if report.stops_early {
                summary.stopped_early = true;
                summary.stopped_epoch = Some(epoch);
                break;
            }
            if control == Control::Stop {
                break;
            }
        }
        if let Some(stopping) = stopping {
            summary.best_epoch = stopping.best_epoch();
            if let (Some(epoch), Some(best)) = (stopping.restores(), self.best_weights.slot()) {
                copy_tensors(model.parameters_mut(), best.tensors());
                summary.restored_epoch = Some(epoch);
            }
        }
        Ok(summary)
    }
}

/// Where one epoch's order of the training samples comes from: a [`Permutation`] (no
/// memory), or a caller's buffer already shuffled ([`Trainer::fit_with_shuffle_buffer`]).
#[derive(Clone, Copy)]
enum EpochOrder<'a> {
    Permutation(Permutation),
    Buffer(&'a [u16]),
}

impl<'a> EpochOrder<'a> {
    /// The samples of the batch at positions `start..start + drawn.len()` of the epoch, by
    /// row (`None` past the buffer's end). A permutation's are drawn into `drawn` at once
    /// ([`Permutation::get_many`], a fraction of the cost of one `get` per row).
    fn batch<'b>(self, start: usize, drawn: &'b mut [usize]) -> impl Fn(usize) -> Option<usize> + 'b
    where
        'a: 'b,
    {
        if let Self::Permutation(permutation) = self {
            permutation.get_many(start, drawn);
        }
        let drawn = &*drawn;
        move |row| match self {
            Self::Permutation(_) => drawn.get(row).copied(),
            Self::Buffer(order) => order
                .get(start.saturating_add(row))
                .map(|&index| usize::from(index)),
        }
    }
}
