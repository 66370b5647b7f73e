//! Training: mini-batches of compile-time size, seeded shuffling, epochs, validation and
//! early stopping, with no allocation anywhere.

use rand_core::Rng;

use crate::error::Error;
use crate::layers::{ConstZero, Parameters, Row};
use crate::loss::Loss;
use crate::model::Network;
use crate::optim::Optimizer;
use crate::rng::Permutation;

/// Samples and their targets, checked to have the same non-zero length.
#[derive(Debug, Clone, Copy)]
pub struct Dataset<'a, I, T> {
    samples: &'a [I],
    targets: &'a [T],
}

impl<'a, I, T> Dataset<'a, I, T> {
    /// Pairs `samples[k]` with `targets[k]`.
    ///
    /// # Errors
    /// [`Error::EmptyData`] if there are no samples; [`Error::LengthMismatch`] if the
    /// lengths differ.
    pub const fn new(samples: &'a [I], targets: &'a [T]) -> Result<Self, Error> {
        if samples.is_empty() {
            return Err(Error::EmptyData);
        }
        if samples.len() != targets.len() {
            return Err(Error::LengthMismatch {
                samples: samples.len(),
                targets: targets.len(),
            });
        }
        Ok(Self { samples, targets })
    }

    /// Number of samples.
    pub const fn len(&self) -> usize {
        self.samples.len()
    }

    /// Always false: a dataset has at least one sample.
    pub const fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The samples.
    pub const fn samples(&self) -> &'a [I] {
        self.samples
    }

    /// The targets.
    pub const fn targets(&self) -> &'a [T] {
        self.targets
    }

    fn get(&self, index: usize) -> Option<(&'a I, &'a T)> {
        Some((self.samples.get(index)?, self.targets.get(index)?))
    }
}

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

/// Loss and accuracy over a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Metrics {
    /// Mean loss per sample plus the regularization term (as Keras reports it).
    pub loss: f32,
    /// Fraction of predictions that are right, if the loss defines accuracy.
    pub accuracy: Option<f32>,
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

/// Statistics of one optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StepReport {
    /// Mean loss over the batch plus the regularization term.
    pub loss: f32,
    /// Sum over the batch of each sample's accuracy, if defined.
    pub correct: Option<f32>,
    /// Samples in the batch.
    pub rows: usize,
}

/// Everything training needs besides the model: gradients, optimizer state and the
/// buffers for mini-batches of `B` samples. Its size is fixed at compile time.
///
/// ```
/// use microtrain::*;
/// network! { type Net = (Dense<2, 8, Tanh>, Dense<8, 1, Sigmoid>); }
/// let mut model: Net = (Dense::new(Tanh), Dense::new(Sigmoid));
/// let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
/// model.initialize(&mut rng);
/// // The optimizer's type follows from its value: `_`.
/// let mut trainer = Trainer::<Net, _, 4>::new(Adam::new(0.05)?);
/// let x = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
/// let y = [[0.0], [1.0], [1.0], [0.0]];
/// let data = Dataset::new(&x, &y)?;
/// trainer.fit(&mut model, &BinaryCrossEntropy, data, None, &FitConfig::epochs(500), &mut rng,
///     |_| Control::Continue)?;
/// let metrics = evaluate(&model, &BinaryCrossEntropy, data)?;
/// assert_eq!(metrics.accuracy, Some(1.0));
/// # Ok::<(), microtrain::Error>(())
/// ```
pub struct Trainer<N: Network, O, const B: usize> {
    grads: N::Params,
    optimizer: O,
    workspace: N::Workspace<B>,
    clipping: Clipping,
    checked_updates: bool,
}

/// Gradient clipping before each update, with Keras' optimizer options as semantics.
///
/// Applied in this order when several are set: `value`, then per-tensor `norm`, then
/// `global_norm`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clipping {
    // Infinity means "not set": 12 bytes in every trainer instead of three 8-byte Options.
    value: f32,
    norm: f32,
    global_norm: f32,
}

impl Default for Clipping {
    fn default() -> Self {
        Self::NONE
    }
}

impl Clipping {
    /// No clipping.
    pub const NONE: Self = Self {
        value: f32::INFINITY,
        norm: f32::INFINITY,
        global_norm: f32::INFINITY,
    };

    /// Keras' `clipvalue`: each gradient value is clamped to `[-limit, limit]`.
    ///
    /// # Errors
    /// [`Error::Clip`] unless `limit` is finite and positive.
    pub const fn value(mut self, limit: f32) -> Result<Self, Error> {
        self.value = match checked_limit(limit) {
            Ok(limit) => limit,
            Err(e) => return Err(e),
        };
        Ok(self)
    }

    /// Keras' `clipnorm`: each tensor's gradient (a layer's weights, or its bias) is scaled
    /// down so that its L2 norm is at most `limit`.
    ///
    /// # Errors
    /// [`Error::Clip`] unless `limit` is finite and positive.
    pub const fn norm(mut self, limit: f32) -> Result<Self, Error> {
        self.norm = match checked_limit(limit) {
            Ok(limit) => limit,
            Err(e) => return Err(e),
        };
        Ok(self)
    }

    /// Keras' `global_clipnorm` (PyTorch's `clip_grad_norm_`): all gradients are scaled
    /// down together so that their joint L2 norm is at most `limit`.
    ///
    /// # Errors
    /// [`Error::Clip`] unless `limit` is finite and positive.
    pub const fn global_norm(mut self, limit: f32) -> Result<Self, Error> {
        self.global_norm = match checked_limit(limit) {
            Ok(limit) => limit,
            Err(e) => return Err(e),
        };
        Ok(self)
    }

    /// True if clipping by value is on: it would turn an infinite gradient into a finite one.
    const fn clamps_values(&self) -> bool {
        self.value.is_finite()
    }

    fn apply<P: Parameters>(&self, grads: &mut P) {
        if self.value.is_finite() {
            let limit = self.value;
            for tensor in grads.tensors_mut() {
                for g in tensor {
                    // Not `f32::clamp`: its panic on unordered bounds (impossible here, the
                    // limit is validated) drags float formatting into firmware (~20 KB of
                    // flash). Same results, NaN included.
                    if *g < -limit {
                        *g = -limit;
                    } else if *g > limit {
                        *g = limit;
                    }
                }
            }
        }
        if self.norm.is_finite() {
            let limit = self.norm;
            for tensor in grads.tensors_mut() {
                scale_to_norm(tensor, squared_norm(tensor), limit);
            }
        }
        if self.global_norm.is_finite() {
            let limit = self.global_norm;
            let total: f32 = grads.tensors().map(squared_norm).sum();
            for tensor in grads.tensors_mut() {
                scale_to_norm(tensor, total, limit);
            }
        }
    }
}

/// [`Error::Uninitialized`], out of line and cold, which changes the code of `fit`'s training
/// loop least: with measure.sh's Cortex-M4F firmware, 4 instructions per sample more than no
/// check at all, against 6 with the error built inline.
#[cold]
#[inline(never)]
fn uninitialized() -> Error {
    Error::Uninitialized
}

/// True if no value is NaN or infinite.
fn all_finite(values: &[f32]) -> bool {
    // A NaN or an infinity makes the sum NaN or infinite; finite values make it finite
    // unless it overflows, and only then are the values tested one by one. One addition per
    // value, where a test per value costs about five instructions on a Cortex-M4F. On the
    // SIMD set's machines the test per value vectorizes (a fold with `&`, no early exit),
    // which an ordered float sum does not.
    let each = || values.iter().fold(true, |all, v| all & v.is_finite());
    if crate::kernels::SIMD_ACTIVE {
        return each();
    }
    values.iter().sum::<f32>().is_finite() || each()
}

const fn checked_limit(limit: f32) -> Result<f32, Error> {
    crate::error::positive(limit, Error::Clip { limit })
}

fn squared_norm(values: &[f32]) -> f32 {
    values.iter().map(|g| g * g).sum()
}

/// Scales `values` by `limit / norm` if `norm = sqrt(squared) > limit` (TensorFlow's
/// `clip_by_norm` / `clip_by_global_norm`).
fn scale_to_norm(values: &mut [f32], squared: f32, limit: f32) {
    let norm = crate::math::sqrt(squared);
    if norm > limit {
        let factor = limit / norm;
        for g in values {
            *g *= factor;
        }
    }
}

impl<N: Network, O: Optimizer<N::Params>, const B: usize> Trainer<N, O, B> {
    const BATCH_IS_VALID: () = assert!(
        B > 0,
        "Trainer<_, _, B>: the batch size B must be at least 1"
    );

    /// Bytes of RAM this trainer occupies: gradients, optimizer state, batch buffers.
    pub const RAM_BYTES: usize = core::mem::size_of::<Self>();

    /// Bytes of RAM to train a model `N` with this trainer: the model (parameters and
    /// configuration) plus [`Trainer::RAM_BYTES`]. The caller's random generator (16 bytes
    /// for the default xoshiro128++) and the stack frames of the calls come on top; a
    /// step's frame holds its rows' sample indices (`B` words).
    pub const TRAINING_RAM_BYTES: usize = core::mem::size_of::<N>() + Self::RAM_BYTES;

    /// A trainer with zeroed state; `const`, so it can be a `static`. Updates are checked
    /// (see [`Trainer::with_checked_updates`]); no gradient clipping.
    pub const fn new(optimizer: O) -> Self {
        let () = Self::BATCH_IS_VALID;
        Self {
            grads: N::Params::ZERO,
            optimizer,
            workspace: N::Workspace::<B>::ZERO,
            clipping: Clipping::NONE,
            checked_updates: true,
        }
    }

    /// Clips gradients before every update.
    pub const fn with_clipping(mut self, clipping: Clipping) -> Self {
        self.clipping = clipping;
        self
    }

    /// Whether each update is checked before it is written, to refuse a step that would
    /// make a parameter or the optimizer's state NaN or infinite (e.g. an exploding
    /// learning rate) before anything changes. On by default. The check is one read-only
    /// pass over parameters, gradients and state that proves a bound on the update (each
    /// tensor's sums of magnitudes on the scalar kernel set, a test per value on the SIMD
    /// set); only a tensor that fails it has its update computed exactly. Turning it off
    /// saves that pass (on a Cortex-M4F about 13 instructions per parameter and step);
    /// samples, losses and gradients are still checked, so only a finite gradient that
    /// overflows a weight or a second moment can then get through.
    pub const fn with_checked_updates(mut self, checked: bool) -> Self {
        self.checked_updates = checked;
        self
    }

    /// The summary of the model and of the RAM to train it with this trainer, as Keras'
    /// `model.summary()` (see [`Summary`](crate::summary::Summary)).
    pub fn summary(&self) -> crate::summary::Summary<N> {
        crate::summary::Summary::with_training(B, Self::RAM_BYTES, Self::TRAINING_RAM_BYTES)
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &O {
        &self.optimizer
    }

    /// The optimizer, mutably (e.g. to restore its saved state).
    pub fn optimizer_mut(&mut self) -> &mut O {
        &mut self.optimizer
    }

    /// The gradients of the last step or [`Trainer::compute_gradients`] call that returned
    /// `Ok`, after clipping, as long as no call has since returned an error. A refused call
    /// does not restore them (that would take a second copy of the gradients in RAM): after
    /// an error they hold whatever the refused call had computed when it stopped — the
    /// previous gradients if it stopped at a sample or target, partial, raw or clipped
    /// gradients of the refused batch if it stopped later.
    pub fn gradients(&self) -> &N::Params {
        &self.grads
    }

    /// One optimizer step on the samples `data[indices[k]]` (at most `B` of them; the rest
    /// are ignored). The step is refused if a sample, target, loss (the batch's, the
    /// penalty or their sum) or raw gradient (before clipping) is not finite, if a target is
    /// invalid, or (with checked updates) if the update would make a parameter or the
    /// optimizer's state NaN or infinite. A refused step changes nothing the run depends
    /// on: the model, the optimizer's state and the generator `rng` are bit for bit as they
    /// were (the generator is cloned before the step — 16 bytes of stack for xoshiro128++ —
    /// and restored from the clone if the step is refused, so the dropout seeds a refused
    /// step drew are drawn again by the next one). Only [`Trainer::gradients`] may differ.
    ///
    /// # Errors
    /// [`Error::EmptyData`] for no indices or an index past the data;
    /// [`Error::NonFinite`] or [`Error::LabelOutOfRange`] when the step was refused;
    /// [`Error::Uninitialized`] for a model never initialised nor loaded.
    pub fn step<L, R>(
        &mut self,
        model: &mut N,
        loss: &L,
        data: Dataset<'_, N::Input, L::Target>,
        indices: &[usize],
        rng: &mut R,
    ) -> Result<StepReport, Error>
    where
        L: Loss<N::OutputActivation, N::Output>,
        R: Rng + Clone,
    {
        if !model.is_initialized() {
            return Err(Error::Uninitialized);
        }
        let rows = indices.len().min(B);
        self.step_with(
            model,
            loss,
            data,
            rows,
            |row| indices.get(row).copied(),
            rng,
        )
    }

    /// Computes the gradients of one batch into [`Trainer::gradients`] without updating the
    /// model: forward, loss, backward. Useful to check gradients or to inspect a step.
    /// Unlike [`Trainer::step`] it draws its dropout seeds from `rng` whether or not it
    /// succeeds, and applies no clipping.
    ///
    /// # Errors
    /// As [`Trainer::step`].
    pub fn compute_gradients<L, R>(
        &mut self,
        model: &N,
        loss: &L,
        data: Dataset<'_, N::Input, L::Target>,
        indices: &[usize],
        rng: &mut R,
    ) -> Result<StepReport, Error>
    where
        L: Loss<N::OutputActivation, N::Output>,
        R: Rng + ?Sized,
    {
        let rows = indices.len().min(B);
        let index_of = |row| indices.get(row).copied();
        self.gradients_with(model, loss, data, rows, index_of, true, rng)
    }

    fn step_with<L, R>(
        &mut self,
        model: &mut N,
        loss: &L,
        data: Dataset<'_, N::Input, L::Target>,
        rows: usize,
        index_of: impl Fn(usize) -> Option<usize>,
        rng: &mut R,
    ) -> Result<StepReport, Error>
    where
        L: Loss<N::OutputActivation, N::Output>,
        R: Rng + Clone,
    {
        // A refused step must not move the run's random stream either.
        let saved = rng.clone();
        let result = self.apply_step(model, loss, data, rows, index_of, rng);
        if result.is_err() {
            *rng = saved;
        }
        result
    }

    fn apply_step<L, R>(
        &mut self,
        model: &mut N,
        loss: &L,
        data: Dataset<'_, N::Input, L::Target>,
        rows: usize,
        index_of: impl Fn(usize) -> Option<usize>,
        rng: &mut R,
    ) -> Result<StepReport, Error>
    where
        L: Loss<N::OutputActivation, N::Output>,
        R: Rng + ?Sized,
    {
        // Opaque addresses. A model and trainer in a `static` (as firmware keeps them) have
        // constant addresses, which LLVM propagates into the layers' out-of-line methods;
        // on targets whose loads take only small offsets (Thumb-2: ±1,020 bytes) every
        // element's address is then built in a register of its own, a second instruction
        // per load. Through `black_box` the kernels index from a base register: 7 % fewer
        // instructions per training sample on the Cortex-M4F, the same bits.
        let (this, model) = (core::hint::black_box(self), core::hint::black_box(model));
        // Checked updates fail on any NaN or infinity they meet, gradients included, so the
        // separate scan of the gradients is only needed without them, or when clipping by
        // value would first clamp an infinite gradient to a finite limit.
        let check_gradients = !this.checked_updates || this.clipping.clamps_values();
        let report =
            this.gradients_with(model, loss, data, rows, index_of, check_gradients, rng)?;
        this.clipping.apply(&mut this.grads);
        if this.checked_updates
            && !this
                .optimizer
                .update_is_finite(model.parameters(), &this.grads)
        {
            return Err(Error::NonFinite);
        }
        this.optimizer.step(model.parameters_mut(), &this.grads);
        model.apply_constraints();
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    fn gradients_with<L, R>(
        &mut self,
        model: &N,
        loss: &L,
        data: Dataset<'_, N::Input, L::Target>,
        rows: usize,
        index_of: impl Fn(usize) -> Option<usize>,
        check_gradients: bool,
        rng: &mut R,
    ) -> Result<StepReport, Error>
    where
        L: Loss<N::OutputActivation, N::Output>,
        R: Rng + ?Sized,
    {
        let rows = rows.min(B);
        if rows == 0 {
            return Err(Error::EmptyData);
        }
        // The rows' sample indices, kept for the loss: `index_of` may be a shuffle's
        // permutation, a few dozen cycles per call (`B` words of stack).
        let mut indices = [0usize; B];
        for ((row, slot), kept) in N::input_rows(&mut self.workspace)
            .iter_mut()
            .enumerate()
            .zip(&mut indices)
            .take(rows)
        {
            let index = index_of(row).ok_or(Error::EmptyData)?;
            let (sample, target) = data.get(index).ok_or(Error::EmptyData)?;
            if !all_finite(sample.as_slice()) {
                return Err(Error::NonFinite);
            }
            loss.check(target)?;
            *slot = *sample;
            *kept = index;
        }
        model.forward(&mut self.workspace, rows, rng);

        let scale = 1.0 / rows as f32;
        let (mut loss_sum, mut correct) = (0.0f32, None::<f32>);
        let activation = *model.output_activation();
        for (output, &index) in N::output_rows(&mut self.workspace)
            .iter_mut()
            .zip(&indices)
            .take(rows)
        {
            let (_, target) = data.get(index).ok_or(Error::EmptyData)?;
            loss_sum += loss.value(output, target);
            if let Some(a) = loss.accuracy(output, target) {
                correct = Some(correct.unwrap_or(0.0) + a);
            }
            loss.delta(&activation, output, target, scale);
        }
        if !loss_sum.is_finite() {
            return Err(Error::NonFinite);
        }

        // Backward overwrites the gradients: no zeroing pass.
        let penalty = model.backward(&mut self.workspace, rows, &mut self.grads);
        let finite = !check_gradients || self.grads.tensors().all(all_finite);
        // Both parts can be finite and their sum not: the reported loss is checked too.
        let total = loss_sum * scale + penalty;
        if !finite || !total.is_finite() {
            return Err(Error::NonFinite);
        }
        Ok(StepReport {
            loss: total,
            correct,
            rows,
        })
    }

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

/// Refuses a data set with a sample that is not finite or a target the loss cannot use.
fn check_samples<N, L>(loss: &L, data: Dataset<'_, N::Input, L::Target>) -> Result<(), Error>
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

/// Runs the model on every sample (inference: dropout off) and averages loss and accuracy;
/// the loss includes the regularization term, as Keras' `evaluate` does.
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
    for (sample, target) in data.samples().iter().zip(data.targets()) {
        if !all_finite(sample.as_slice()) {
            return Err(Error::NonFinite);
        }
        loss.check(target)?;
        let output = model.infer(sample);
        sum.add(loss.value(&output, target), 1.0, n);
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
struct LossSum {
    plain: f32,
    scaled: f32,
}

impl LossSum {
    fn add(&mut self, loss: f32, weight: f32, total: f32) {
        self.plain += loss * weight;
        self.scaled += loss * (weight / total);
    }

    /// The mean over the `count` of the `total` weight that was added.
    fn mean(&self, count: f32, total: f32) -> f32 {
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

#[cfg(test)]
mod tests {
    use super::all_finite;

    #[test]
    fn all_finite_sees_every_nan_and_infinity_and_no_overflow() {
        assert!(all_finite(&[]));
        assert!(all_finite(&[1.0, -2.0, 0.0, -0.0]));
        // The sum overflows, the values are finite.
        assert!(all_finite(&[f32::MAX, f32::MAX, -1.0]));
        assert!(!all_finite(&[f32::MAX, f32::NAN]));
        assert!(!all_finite(&[1.0, f32::INFINITY]));
        assert!(!all_finite(&[f32::NEG_INFINITY, f32::INFINITY]));
        assert!(!all_finite(&[f32::NEG_INFINITY]));
    }
}
