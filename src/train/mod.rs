//! Training: mini-batches of compile-time size, seeded shuffling, epochs, validation and
//! early stopping, with no allocation anywhere.
//!
//! - [`Dataset`]: samples paired with targets.
//! - [`Trainer`]: gradients, optimizer state and batch buffers; one checked step.
//! - [`Clipping`]: Keras' gradient clipping options.
//! - [`Trainer::fit`]: epochs, shuffling, validation, callbacks that see the model.
//! - [`EarlyStopping`] (with `restore_best_weights`) and [`ReduceLrOnPlateau`]: Keras'
//!   callbacks of the same names, driven by `fit`, on a [`Monitor`]ed metric.
//! - [`evaluate`] and [`predict`]: inference over a data set.

use rand_core::Rng;

use crate::error::Error;
use crate::layers::{ConstZero, Parameters, Row};
use crate::loss::Loss;
use crate::model::Network;
use crate::optim::Optimizer;

mod clipping;
mod dataset;
mod early_stopping;
mod evaluate;
mod fit;
mod monitor;
mod plateau;

pub use clipping::Clipping;
pub use dataset::Dataset;
pub use early_stopping::{
    BestWeights, BestWeightsBuffer, EarlyStopping, EarlyStoppingState, EarlyStoppingVerdict,
    NoBestWeights,
};
pub(crate) use evaluate::loss_output;
pub use evaluate::{Metrics, evaluate, predict};
pub use fit::{
    Callback, Control, EpochReport, FitConfig, FitSummary, RefusedSteps, WithModel, with_model,
};
pub use monitor::{Mode, Monitor};
pub use plateau::{ReduceLrOnPlateau, ReduceLrOnPlateauState};

/// Statistics of one optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StepReport {
    /// Mean loss over the batch plus the regularization term; with sample or class weights
    /// ([`Dataset::with_sample_weights`]) the batch's `Σ wᵢ·lᵢ / rows`, as Keras'
    /// `sum_over_batch_size`.
    pub loss: f32,
    /// Sum over the batch of each sample's accuracy, if defined.
    pub correct: Option<f32>,
    /// Samples in the batch.
    pub rows: usize,
}

/// Everything training needs besides the model: gradients, optimizer state and the
/// buffers for mini-batches of `B` samples, and room for the best epoch's parameters if
/// [`EarlyStopping::with_restore_best_weights`] is to be used (`K`, see
/// [`Trainer::with_best_weights`]; none by default). Its size is fixed at compile time.
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
pub struct Trainer<N: Network, O, const B: usize, K = NoBestWeights> {
    grads: N::Params,
    optimizer: O,
    workspace: N::Workspace<B>,
    clipping: Clipping,
    checked_updates: bool,
    best_weights: K,
}

/// [`Error::Uninitialized`], out of line and cold, which changes the code of `fit`'s training
/// loop least: with measure.sh's Cortex-M4F firmware, 4 instructions per sample more than no
/// check at all, against 6 with the error built inline.
#[cold]
#[inline(never)]
pub(super) fn uninitialized() -> Error {
    Error::Uninitialized
}

/// True if no value is NaN or infinite.
#[inline(always)]
pub(super) fn all_finite(values: &[f32]) -> bool {
    // A NaN or an infinity makes the sum NaN or infinite; finite values make it finite
    // unless it overflows, and only then are the values tested one by one. One addition per
    // value (and, with `fpu-sqrt`, a load per eight), where a test per value costs about
    // five instructions on a Cortex-M4F. On the
    // SIMD set's machines the test per value vectorizes (a fold with `&`, no early exit),
    // which an ordered float sum does not.
    let each = || values.iter().fold(true, |all, v| all & v.is_finite());
    if crate::kernels::SIMD_ACTIVE {
        return each();
    }
    crate::math::sum_in_any_order(values).is_finite() || each()
}

impl<N: Network, O: Optimizer<N::Params>, const B: usize> Trainer<N, O, B> {
    /// A trainer with zeroed state; `const`, so it can be a `static`. Updates are checked
    /// (see [`Trainer::with_checked_updates`]); no gradient clipping; no room for best
    /// weights (see [`Trainer::with_best_weights`]).
    pub const fn new(optimizer: O) -> Self {
        let () = Self::BATCH_IS_VALID;
        Self {
            grads: N::Params::ZERO,
            optimizer,
            workspace: N::Workspace::<B>::ZERO,
            clipping: Clipping::NONE,
            checked_updates: true,
            best_weights: NoBestWeights,
        }
    }

    /// The trainer with room for one copy of the parameters, which
    /// [`EarlyStopping::with_restore_best_weights`] needs: `size_of::<N::Params>()` bytes
    /// more, counted in [`Trainer::RAM_BYTES`] and [`Trainer::TRAINING_RAM_BYTES`]. `const`
    /// (for an optimizer that is `Copy`, as the crate's are).
    ///
    /// ```
    /// use microtrain::*;
    /// network! { type Net = (Dense<2, 4, Tanh>, Dense<4, 1, Sigmoid>); }
    /// type Plain = Trainer<Net, Sgd, 4>;
    /// type Restoring = Trainer<Net, Sgd, 4, BestWeightsBuffer<<Net as Network>::Params>>;
    /// const TRAINER: Restoring = Trainer::new(const_config!(Sgd::new(0.1))).with_best_weights();
    /// assert_eq!(Restoring::RAM_BYTES, Plain::RAM_BYTES + size_of::<<Net as Network>::Params>());
    /// # let _ = TRAINER;
    /// ```
    pub const fn with_best_weights(self) -> Trainer<N, O, B, BestWeightsBuffer<N::Params>>
    where
        O: Copy,
        N::Workspace<B>: Copy,
    {
        self.with_room(BestWeightsBuffer::new())
    }

    /// The trainer keeping the best epoch's parameters in the caller's `buffer` (e.g. a
    /// `static` shared with other work), for [`EarlyStopping::with_restore_best_weights`].
    /// `fit` overwrites it whenever an epoch becomes the best.
    pub const fn with_best_weights_in(
        self,
        buffer: &mut N::Params,
    ) -> Trainer<N, O, B, &mut N::Params>
    where
        O: Copy,
        N::Workspace<B>: Copy,
    {
        self.with_room(buffer)
    }

    /// The trainer with `best_weights` as its room for the best weights.
    const fn with_room<K>(self, best_weights: K) -> Trainer<N, O, B, K>
    where
        O: Copy,
        N::Workspace<B>: Copy,
    {
        // `Copy` bounds: a `const fn` cannot drop a generic value, and the const checker
        // does not see that destructuring leaves nothing to drop unless the types are `Copy`
        // (every optimizer and network of the crate is).
        let Trainer {
            grads,
            optimizer,
            workspace,
            clipping,
            checked_updates,
            best_weights: NoBestWeights,
        } = self;
        Trainer {
            grads,
            optimizer,
            workspace,
            clipping,
            checked_updates,
            best_weights,
        }
    }
}

impl<N: Network, O: Optimizer<N::Params>, const B: usize, K> Trainer<N, O, B, K> {
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
        if L::PRE_ACTIVATION {
            model.forward_pre_activation(&mut self.workspace, rows, rng);
        } else {
            model.forward(&mut self.workspace, rows, rng);
        }

        // Keras' `sum_over_batch_size`: the batch loss is `Σ wᵢ·lᵢ / rows`, so row i's
        // gradient is scaled by `wᵢ / rows`. Unweighted data takes the loop without weights,
        // which keeps its bits and its cost.
        let scale = 1.0 / rows as f32;
        let (mut loss_sum, mut correct) = (0.0f32, None::<f32>);
        let activation = *model.output_activation();
        let weights = data.weights();
        for (output, &index) in N::output_rows(&mut self.workspace)
            .iter_mut()
            .zip(&indices)
            .take(rows)
        {
            let (_, target) = data.get(index).ok_or(Error::EmptyData)?;
            if let Some(a) = loss.accuracy(output, target) {
                correct = Some(correct.unwrap_or(0.0) + a);
            }
            match weights {
                None => loss_sum += loss.value_and_delta(&activation, output, target, scale),
                Some(weights) => {
                    let weight = weights.of(index, loss.class_of(target));
                    let value = loss.value_and_delta(&activation, output, target, scale * weight);
                    loss_sum += weight * value;
                }
            }
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
