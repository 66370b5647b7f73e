//! Optimizers with statically sized state.
//!
//! An optimizer owns its state as values of the network's parameter type `P` (Adam and
//! Nadam keep two and a step count, RMSprop three, Adagrad and momentum SGD one, plain SGD
//! none), so its size is known at compile time and
//! counted in the training RAM. It walks parameters, gradients and state in lockstep, one
//! tensor at a time.
//!
//! | optimizer | Keras | PyTorch |
//! |---|---|---|
//! | [`Sgd`] | `SGD(learning_rate)` | `SGD(lr)` |
//! | [`SgdMomentum`] | `SGD(learning_rate, momentum, nesterov)`: `v = μv - lr·g; w += v` | `SGD(lr, momentum, nesterov)`: `v = μv + g; w -= lr·v` (the same for a constant `lr`) |
//! | [`Adam`] | `Adam()`: lr 1e-3, β 0.9/0.999, ε 1e-7, ε added to `sqrt(v)`; Keras' `f32` arithmetic (`f32(1 - β)`, `powf(β, t)`) | `Adam()`: ε 1e-8, added to `sqrt(v̂)` |
//! | [`AdamW`] | — (Keras' `AdamW` is Adam with its `weight_decay`: [`WeightDecay`] over [`Adam`]) | `AdamW()`: decoupled decay `w -= lr·wd·w` as `w·(1 - lr·wd)`, wd 1e-2, ε 1e-8; biases left out with a parameter group ([`AdamW::with_decayed`]) |
//! | [`RMSprop`] | `RMSprop()`: lr 1e-3, ρ 0.9, momentum 0, ε 1e-7 inside the root, `centered` | `RMSprop()`: α 0.99, ε 1e-8 added to the root |
//! | [`Adagrad`] | `Adagrad()`: lr 1e-3, accumulators from 0.1, ε 1e-7 inside the root | `Adagrad()`: accumulators from 0, ε 1e-10 added to the root |
//! | [`Nadam`] | `Nadam()`: lr 1e-3, β 0.9/0.999, ε 1e-7, momentum schedule `β1(1 - ½·0.96^t)` | `NAdam()`: schedule `β1(1 - ½·0.96^(0.004t))`, ε 1e-8 |
//! | [`Scheduled`] | `learning_rate=schedule`, evaluated at `iterations` | `lr_scheduler`, stepped by the caller |
//! | [`WeightDecay`] | `weight_decay=wd` on any optimizer: `w = w - w·wd·lr` before the update, at its rate; [`DecayedTensors::EXCEPT_BIASES`] for `exclude_from_weight_decay(var_names=["bias"])` | `weight_decay=wd` of `SGD`, `Adam`, `RMSprop`…: L2, gradient `+ wd·w` (use an `l2` penalty); `AdamW`'s is decoupled |
//!
//! Learning-rate schedules ([`LearningRateSchedule`]): [`ExponentialDecay`],
//! [`PiecewiseConstantDecay`], [`InverseTimeDecay`], [`PolynomialDecay`], [`CosineDecay`]
//! (with Keras 3's warmup), Keras' formulas in Keras' order; wrap an optimizer in
//! [`Scheduled`] to apply one. [`Sgd`], [`SgdMomentum`], [`Adam`], [`RMSprop`] and
//! [`Adagrad`] give Keras 3's weights bit for bit on `tests/keras_optimizers.rs`' 20-step
//! runs, with or without a [`WeightDecay`] (and its exclusion of the biases), every schedule
//! but the cosine Keras' values bit for bit ([`Nadam`] and the cosine within a few units in
//! the last place).

use crate::error::Error;
use crate::layers::Parameters;

mod adam;
mod nadam;
mod power;
mod rmsprop;
mod schedule;
mod sgd;
mod weight_decay;

pub use adam::{Adam, AdamW};
pub use nadam::Nadam;
pub use rmsprop::{Adagrad, RMSprop};
pub use schedule::{
    CosineDecay, ExponentialDecay, InverseTimeDecay, LearningRateSchedule, PiecewiseConstantDecay,
    PolynomialDecay, Scheduled,
};
pub use sgd::{Sgd, SgdMomentum};
pub use weight_decay::{DecayedTensors, WeightDecay};

/// Tensors an optimizer lists on the stack (four dense layers) rather than walking them
/// through the parameter types' chained iterators; see [`Parameters::TENSORS`].
const LISTED: usize = 8;

/// Calls `f` on the `k`-th item of each of the four iterators, in order, while it returns
/// `true`; returns `false` if it stopped early. With `listed`, which the caller sets only
/// when no iterator has more than [`LISTED`] items, the items are first gathered into
/// lists on the stack by internal iteration (which compiles to straight-line code on a
/// chain of iterators); the lockstep walk over four lists is then a few instructions per
/// tensor instead of four chains' state machines.
pub(crate) fn lockstep<A, B, C, D>(
    listed: bool,
    a: impl Iterator<Item = A>,
    b: impl Iterator<Item = B>,
    c: impl Iterator<Item = C>,
    d: impl Iterator<Item = D>,
    mut f: impl FnMut(A, B, C, D) -> bool,
) -> bool {
    fn list<T>(items: impl Iterator<Item = T>) -> heapless::Vec<T, LISTED> {
        let mut list = heapless::Vec::new();
        // Never full when the caller's promise holds; an item past the capacity would be
        // dropped, never a panic.
        items.for_each(|item| {
            let _ = list.push(item);
        });
        list
    }
    if listed {
        let (a, b, c, d) = (list(a), list(b), list(c), list(d));
        let mut all = a.into_iter().zip(b).zip(c).zip(d);
        all.all(|(((a, b), c), d)| f(a, b, c, d))
    } else {
        let mut all = a.zip(b).zip(c).zip(d);
        all.all(|(((a, b), c), d)| f(a, b, c, d))
    }
}

/// True if the tensors of `P` can go through [`lockstep`]'s lists.
pub(crate) const fn listed<P: Parameters>() -> bool {
    matches!(P::TENSORS, Some(n) if n <= LISTED)
}

/// What a saved optimizer state records about the optimizer that wrote it
/// ([`Optimizer::state_tag`]): which algorithm, and the settings the state's values are
/// defined by. [`crate::persist`] refuses to load a state whose tag differs from the loading
/// optimizer's ([`crate::Error::OptimizerMismatch`]).
///
/// Only settings the state depends on belong here, so that what may change between two runs
/// (a learning rate set by a schedule, ε, a weight decay) still may: Adam records `β1` and
/// `β2`, whose powers its state holds; SGD with momentum records nothing but its kind.
///
/// ```
/// use microtrain::{Adam, DenseParams, Optimizer, StateTag};
/// let adam = Adam::<DenseParams<4, 2>>::keras_default();
/// assert_eq!(adam.state_tag(), StateTag::new(*b"ADAM", [0.9, 0.999, 0.0, 0.0]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTag {
    kind: [u8; 4],
    // Bit patterns: equality is exact, and the tag is `Eq`.
    settings: [u32; 4],
}

impl StateTag {
    /// The tag of an optimizer that does not say what it is (the default of
    /// [`Optimizer::state_tag`]): its state loads only into an optimizer that does not say
    /// either, with the same [`Optimizer::STATE_LEN`].
    pub const UNTAGGED: Self = Self::new([0; 4], [0.0; 4]);

    /// A tag for the algorithm `kind` (four bytes, ASCII by convention: `*b"ADAM"`) with the
    /// settings the state depends on, unused ones zero. Settings compare by their bits.
    pub const fn new(kind: [u8; 4], settings: [f32; 4]) -> Self {
        let [a, b, c, d] = settings;
        Self {
            kind,
            settings: [a.to_bits(), b.to_bits(), c.to_bits(), d.to_bits()],
        }
    }

    /// The algorithm's four bytes.
    pub const fn kind(&self) -> [u8; 4] {
        self.kind
    }

    /// The settings, as given to [`StateTag::new`].
    pub const fn settings(&self) -> [f32; 4] {
        let [a, b, c, d] = self.settings;
        [
            f32::from_bits(a),
            f32::from_bits(b),
            f32::from_bits(c),
            f32::from_bits(d),
        ]
    }
}

/// Updates parameters from their gradients.
pub trait Optimizer<P: Parameters> {
    /// One update. `params` yields the parameter tensors in the order of
    /// [`Parameters::tensors`] of `grads`.
    fn step<'a, I: Iterator<Item = &'a mut [f32]>>(&mut self, params: I, grads: &P);

    /// The base learning rate.
    fn learning_rate(&self) -> f32;

    /// Sets the base learning rate for the following steps, keeping the optimizer's state
    /// (Keras' `optimizer.learning_rate = …`): what learning-rate schedules and
    /// `ReduceLROnPlateau` use.
    ///
    /// A rate of 0 is accepted (a schedule may decay to it, as Keras' `CosineDecay` does
    /// with its default `alpha = 0`): the moments still move, the weights do not.
    ///
    /// # Errors
    /// [`Error::LearningRate`] unless `learning_rate` is finite and non-negative; the rate
    /// is then unchanged. [`Error::ScheduledLearningRate`] for an optimizer whose rate a
    /// schedule sets ([`Scheduled`]).
    fn set_learning_rate(&mut self, learning_rate: f32) -> Result<(), Error>;

    /// True if the next [`Optimizer::step`] with these parameters and gradients would leave
    /// every parameter and state value finite. It computes the update without writing it,
    /// so that a step can be refused before anything changes (see
    /// [`crate::Trainer::with_checked_updates`]). This is
    /// [`Optimizer::update_is_finite_at`] at the current [`Optimizer::learning_rate`].
    fn update_is_finite<'a, I: Iterator<Item = &'a [f32]>>(&self, params: I, grads: &P) -> bool {
        self.update_is_finite_at(self.learning_rate(), params, grads)
    }

    /// [`Optimizer::update_is_finite`] as if the learning rate were `learning_rate`: what
    /// [`Scheduled`] asks before it sets the scheduled rate, and what an optimizer
    /// implements. An optimizer that cannot check at another rate than its own may refuse
    /// every other (as [`Scheduled`] itself does, whose rate the schedule sets).
    fn update_is_finite_at<'a, I: Iterator<Item = &'a [f32]>>(
        &self,
        learning_rate: f32,
        params: I,
        grads: &P,
    ) -> bool;

    /// Number of `f32` values in the optimizer's state (what [`Optimizer::state`] yields).
    const STATE_LEN: usize;

    /// The state as flat tensors (moments, step counts as integer-valued `f32`), for saving.
    fn state(&self) -> impl Iterator<Item = &[f32]>;

    /// The state, mutably, in the order of [`Optimizer::state`], for restoring.
    fn state_mut(&mut self) -> impl Iterator<Item = &mut [f32]>;

    /// True if `state` (every value of a saved [`Optimizer::state`], in its order, already
    /// known to be finite) is a state this optimizer can continue from, so that a loaded
    /// state cannot make every later step fail. Every finite state is valid unless the
    /// optimizer says otherwise (Adam: second moments `v ≥ 0`, a step count that is an integer
    /// in `[0, 2^24]`).
    fn state_is_valid(state: impl Iterator<Item = f32>) -> bool {
        let _ = state;
        true
    }

    /// The optimizer and the settings its state depends on, saved with the state so that
    /// a state written by another optimizer (AdamW into Adam) or under other settings (Adam
    /// with other betas) is refused on loading ([`StateTag`]). Every optimizer of this crate
    /// gives its own; the default, [`StateTag::UNTAGGED`], is for one that says nothing.
    fn state_tag(&self) -> StateTag {
        StateTag::UNTAGGED
    }
}

/// The checked learning rate for [`Optimizer::set_learning_rate`].
pub(crate) const fn checked_learning_rate(learning_rate: f32) -> Result<f32, Error> {
    crate::error::non_negative(learning_rate, Error::LearningRate { learning_rate })
}
