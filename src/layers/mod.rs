//! Layers with sizes fixed at compile time, and the protocol they follow in training.
//!
//! # How a training step moves through the buffers
//! A network keeps **one buffer per layer boundary** (`[[f32; WIDTH]; B]`), used for the
//! activation in the forward pass and for its gradient in the backward pass; no activation
//! is stored twice and no separate gradient buffers exist.
//!
//! - Forward: each layer reads its input buffer and overwrites its output buffer.
//! - The loss turns the last buffer into `δ = ∂loss/∂(pre-activation)`.
//! - Backward, for each layer from the last: [`Layer::parameter_gradients`] reads the input
//!   activations and `δ`; then the previous layer replaces its own outputs (this layer's
//!   input buffer) by its activation derivative ([`Hidden::derivative_of_output`]), and
//!   [`Layer::propagate`] multiplies the back-propagated gradient into them, which leaves the
//!   previous layer's `δ` there. The first layer propagates nothing.
//! - Those last two steps are [`Hidden::backward_through_output`], which a layer with an
//!   activity regularizer ([`Dense::with_activity_regularizer`]) overrides: it has the
//!   layer above propagate into a few rows of stack (ones) at a time, so that its own
//!   outputs `y` are still there to add the regularizer's gradient to `∂loss/∂y` before
//!   multiplying by the activation's derivative.
//! - Noise layers ([`GaussianNoise`], [`GaussianDropout`], [`AlphaDropout`], like
//!   [`Dropout`]) keep an 8-byte seed as their cache and regenerate their noise from it in
//!   backward.

use rand_core::Rng;

use crate::activation::Activation;

mod dense;
mod dense_dropout;
mod dropout;
mod frozen;
mod noise;

pub use dense::{Dense, DenseParams, Initializer};
pub use dense_dropout::DenseDropout;
pub use dropout::{Dropout, MaskSeed};
pub use frozen::Frozen;
pub use noise::{AlphaDropout, GaussianDropout, GaussianNoise};

/// A value that has an all-zero constant, so that models and trainers can be built in a
/// `const` context and placed in a `static` (zero-initialised memory costs no flash).
pub trait ConstZero: Sized {
    /// The all-zero value.
    const ZERO: Self;
}

impl ConstZero for f32 {
    const ZERO: Self = 0.0;
}
impl ConstZero for u64 {
    const ZERO: Self = 0;
}
// Class labels (see [`crate::Label`]), e.g. the targets a `ReplayBuffer` stores.
impl ConstZero for u8 {
    const ZERO: Self = 0;
}
impl ConstZero for u16 {
    const ZERO: Self = 0;
}
impl ConstZero for u32 {
    const ZERO: Self = 0;
}
impl ConstZero for usize {
    const ZERO: Self = 0;
}
impl ConstZero for () {
    const ZERO: Self = ();
}
impl<T: ConstZero + Copy, const N: usize> ConstZero for [T; N] {
    const ZERO: Self = [T::ZERO; N];
}

/// One sample's values at a layer boundary: `[f32; WIDTH]`.
pub trait Row: Copy + ConstZero + core::fmt::Debug {
    /// Number of values.
    const WIDTH: usize;
    /// The values as a slice.
    fn as_slice(&self) -> &[f32];
    /// The values as a mutable slice.
    fn as_mut_slice(&mut self) -> &mut [f32];
}

impl<const N: usize> Row for [f32; N] {
    const WIDTH: usize = N;
    fn as_slice(&self) -> &[f32] {
        self
    }
    fn as_mut_slice(&mut self) -> &mut [f32] {
        self
    }
}

/// Trainable tensors of a layer or network, visited in a fixed order.
///
/// The optimizer walks the parameters, their gradients and its own state (values of the
/// same type) in lockstep through [`Parameters::tensors`] / [`Parameters::tensors_mut`].
pub trait Parameters: ConstZero + Copy {
    /// Number of trainable scalars.
    const COUNT: usize;
    /// Number of tensors [`Parameters::tensors`] yields, if known. Optimizers then list the
    /// tensors on the stack before walking them, which costs far less per tensor than
    /// stepping the chained iterators of a tuple network (about a hundred instructions
    /// per tensor on a Cortex-M4F). `None`, the default, walks the iterators.
    const TENSORS: Option<usize> = None;
    /// The tensors as flat slices, in a fixed order.
    fn tensors(&self) -> impl Iterator<Item = &[f32]>;
    /// The tensors as flat mutable slices, in the same order.
    fn tensors_mut(&mut self) -> impl Iterator<Item = &mut [f32]>;
    /// For each tensor of [`Parameters::tensors`], in the same order, true if it is a bias
    /// (one offset per unit), which a weight decay may exclude
    /// ([`crate::optim::DecayedTensors::EXCEPT_BIASES`], Keras'
    /// `exclude_from_weight_decay(var_names=["bias"])`). The default says none is.
    ///
    /// ```
    /// use microtrain::{DenseParams, Parameters, layers::ConstZero};
    /// let biases: Vec<bool> = DenseParams::<4, 2>::ZERO.biases().collect();
    /// assert_eq!(biases, [false, true]); // the kernel, then the bias
    /// ```
    fn biases(&self) -> impl Iterator<Item = bool> {
        self.tensors().map(|_| false)
    }
    /// Sets every value to zero in place (no temporary copy of the whole set).
    fn fill_zero(&mut self) {
        // `for_each`, not a `for` loop: internal iteration runs a tuple's chained iterators
        // as straight-line code.
        self.tensors_mut().for_each(|t| t.fill(0.0));
    }
}

/// The parameters of a layer that has none (e.g. [`Dropout`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NoParams;

impl ConstZero for NoParams {
    const ZERO: Self = NoParams;
}
impl Parameters for NoParams {
    const COUNT: usize = 0;
    const TENSORS: Option<usize> = Some(0);
    fn tensors(&self) -> impl Iterator<Item = &[f32]> {
        core::iter::empty()
    }
    fn tensors_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        core::iter::empty()
    }
    fn biases(&self) -> impl Iterator<Item = bool> {
        core::iter::empty()
    }
}

/// `a + b` if both are known and the sum fits (how tuples add up [`Parameters::TENSORS`]).
pub(crate) const fn add_known(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => a.checked_add(b),
        _ => None,
    }
}

/// A layer: its sizes, its parameters and its part in the training protocol (module docs).
pub trait Layer {
    /// One input sample, `[f32; IN]`.
    type Input: Row;
    /// One output sample, `[f32; OUT]`.
    type Output: Row;
    /// Trainable parameters; also the type of their gradients.
    type Params: Parameters;
    /// What a training forward pass keeps for backward besides the buffers (e.g. a seed).
    type Cache: Copy + ConstZero;
    /// The activation applied last; a loss on this layer's output folds its derivative in.
    type Activation: Activation;

    /// True if the layer has parameters to train, i.e. its [`Layer::parameter_gradients`]
    /// reads `d_output`. A network back-propagates into a layer's input only when some
    /// layer below is trainable, so a prefix of untrained layers ([`Frozen`], or a
    /// [`Dropout`] first) costs no backward work.
    const TRAINABLE: bool = <Self::Params as Parameters>::COUNT > 0;

    /// True if the layer adds an activity-regularization term ([`Layer::activity_loss`]);
    /// a network then takes the layer's backward step through
    /// [`Hidden::backward_through_output`], and otherwise through the two plain steps.
    const HAS_ACTIVITY_REGULARIZER: bool = false;

    /// The parameters.
    fn params(&self) -> &Self::Params;
    /// The parameters, mutably.
    fn params_mut(&mut self) -> &mut Self::Params;
    /// The output activation.
    fn activation(&self) -> &Self::Activation;
    /// Inference on one sample (dropout is the identity here).
    fn infer(&self, input: &Self::Input) -> Self::Output;
    /// Training forward pass over `input.len()` rows; overwrites `output`.
    fn forward<R: Rng + ?Sized>(
        &self,
        input: &[Self::Input],
        output: &mut [Self::Output],
        cache: &mut Self::Cache,
        rng: &mut R,
    );
    /// Writes the parameter gradients (the batch's sum, with the regularizer's) into `grads`,
    /// overwriting them, from the input activations and `d_output = ∂loss/∂(pre-activation)`;
    /// returns the regularization loss term, computed in the same sweep.
    fn parameter_gradients(
        &self,
        input: &[Self::Input],
        d_output: &[Self::Output],
        grads: &mut Self::Params,
    ) -> f32;
    /// `d_input *= ∂loss/∂input`, given `d_output = ∂loss/∂(pre-activation)`. Rows are
    /// independent: a call on a block of rows gives those rows what a call on all of them
    /// gives (what [`Hidden::backward_through_output`] relies on).
    fn propagate(
        &self,
        d_output: &[Self::Output],
        d_input: &mut [Self::Input],
        cache: &Self::Cache,
    );
    /// This layer's regularization term of the loss.
    fn penalty(&self) -> f32;
    /// Draws fresh initial parameters (layers without parameters do nothing).
    fn initialize<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        let _ = rng;
    }
    /// False while the layer's weights are all zero, as its `const` constructor leaves them:
    /// it was never initialised ([`Layer::initialize`]) nor loaded, and training it would
    /// keep every unit alike. Layers without weights are always initialised.
    fn is_initialized(&self) -> bool {
        true
    }
    /// Projects the parameters back onto their constraint (e.g. max-norm) after an update.
    fn apply_constraints(&mut self) {}
    /// This layer's activity-regularization term of the loss for a batch of its outputs:
    /// the regularizer summed over the rows, divided by their number (Keras 3). For a
    /// layer without one, the default, `-0.0`: the additive identity (`x + -0.0 = x` for
    /// every `x`, where `-0.0 + 0.0 = 0.0`), so that adding it compiles to nothing.
    fn activity_loss(&self, outputs: &[Self::Output]) -> f32 {
        let _ = outputs;
        -0.0
    }
}

/// A layer that may end a network: its activation is what a [`crate::Loss`] pairs with.
/// ([`Dropout`] is not one: a loss on a dropped-out output would ignore its mask.)
///
/// An output layer can also leave its **pre-activation** (the logits) instead of its
/// output, for a loss that applies the activation itself ([`crate::Loss::PRE_ACTIVATION`]):
/// softmax cross-entropy takes its value from the logits (log-sum-exp), which the
/// probabilities cannot give once they round to 0.
pub trait OutputLayer: Layer {
    /// [`Layer::forward`] without the output activation: overwrites `output` with the
    /// pre-activation.
    fn forward_pre_activation<R: Rng + ?Sized>(
        &self,
        input: &[Self::Input],
        output: &mut [Self::Output],
        cache: &mut Self::Cache,
        rng: &mut R,
    );
    /// [`Layer::infer`] without the output activation: the pre-activation of one sample.
    fn infer_pre_activation(&self, input: &Self::Input) -> Self::Output;
}

/// A layer that can stand before another one: its output's derivative is elementwise.
pub trait Hidden: Layer {
    /// Replaces this layer's outputs by `∂output/∂(pre-activation)`, elementwise.
    fn derivative_of_output(&self, output: &mut [Self::Output], cache: &Self::Cache);

    /// The backward step through this layer's outputs: on entry `output` holds them; on
    /// return it holds `δ = ∂loss/∂(pre-activation)`. `propagate(first, rows)` multiplies
    /// the gradient from the layer above, `∂loss/∂output` of the rows `first..`, into
    /// `rows` (the layer above's [`Layer::propagate`]). Returns this layer's
    /// activity-regularization term of the loss ([`Layer::activity_loss`]).
    ///
    /// The default is the protocol of the module docs: [`Hidden::derivative_of_output`],
    /// then one `propagate` over every row. A layer with an activity regularizer
    /// overrides it to add the regularizer's gradient to `∂loss/∂output` before its
    /// activation's derivative multiplies in.
    fn backward_through_output(
        &self,
        output: &mut [Self::Output],
        cache: &Self::Cache,
        mut propagate: impl FnMut(usize, &mut [Self::Output]),
    ) -> f32 {
        self.derivative_of_output(output, cache);
        propagate(0, output);
        // The additive identity (see `Layer::activity_loss`).
        -0.0
    }
}
