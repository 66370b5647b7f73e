//! Freezing a layer: Keras' `layer.trainable = False`, chosen at compile time.

use core::borrow::Borrow;
use core::marker::PhantomData;

use rand_core::Rng;

use super::{Hidden, Layer, NoParams, OutputLayer};

/// A layer whose parameters are not trained: Keras' `layer.trainable = False`, PyTorch's
/// `requires_grad_(False)` on its parameters, decided by the type.
///
/// A frozen layer's parameter set is [`NoParams`], so it has **no gradient and no optimizer
/// state** (both are zero-sized): [`Trainer::TRAINING_RAM_BYTES`](crate::Trainer) drops by
/// exactly what the layer's gradients and optimizer state took. The layer is reached only
/// through `&`, so no update, constraint or initialisation can change it. Backward skips its
/// weight-gradient sweep, and a network propagates no input gradient below its lowest
/// trainable layer: a frozen prefix costs a forward pass only (see [`Layer::TRAINABLE`]).
///
/// `S` is how the layer is held: by value (`Frozen<L>`, from [`Frozen::new`]) or borrowed
/// (`Frozen<L, &'a L>`, from [`Frozen::borrowed`]). Borrowed from a `static`, the frozen
/// parameters stay in flash on a microcontroller and cost no RAM:
///
/// ```
/// use microtrain::*;
/// // Trained on the host, compiled into flash.
/// static FEATURES: Dense<4, 8, Relu> = Dense::new(Relu).with_params(DenseParams {
///     weights: [[0.5, -0.25, 0.0, 1.0]; 8],
///     bias: [0.1; 8],
/// });
/// type Adapted = (Frozen<Dense<4, 8, Relu>, &'static Dense<4, 8, Relu>>, Dense<8, 3, Softmax>);
/// let model: Adapted = (Frozen::borrowed(&FEATURES), Dense::new(Softmax));
/// // Only the head is trained: its 27 parameters, not the prefix's 40.
/// assert_eq!(<Adapted as Network>::PARAMETERS, 8 * 3 + 3);
/// // The prefix costs the model a reference.
/// assert_eq!(core::mem::size_of::<Adapted>(),
///     core::mem::size_of::<&Dense<4, 8, Relu>>() + core::mem::size_of::<Dense<8, 3, Softmax>>());
/// ```
///
/// # Regularizers of a frozen layer
/// They are not part of the loss: [`Layer::penalty`] is 0, as in Keras 3, whose
/// `Layer.losses` takes weight regularizers from `trainable_weights` only. (`tf.keras` in
/// Keras 2 still added a frozen layer's regularization to the loss, a constant that moves no
/// gradient; [`Frozen::layer`]`().penalty()` gives that term.)
///
/// # Saving
/// [`crate::persist`] saves what [`crate::Network::parameters`] yields, the trainable
/// tensors: a frozen model's file holds its trainable part (and optimizer state), the
/// frozen part being the firmware's own. Load the whole host-trained model into the
/// unfrozen type and wrap its layers (`(Frozen::new(host.0), host.1)`) to freeze it. A file
/// records the layer widths and the number of values, not which layers were frozen: load it
/// into the type that saved it (two splits with equal counts would not be told apart).
pub struct Frozen<L, S = L> {
    layer: S,
    // Zero-sized: lets `params_mut` hand out the (empty) trainable set.
    no_params: NoParams,
    of: PhantomData<fn() -> L>,
}

impl<L> Frozen<L, L> {
    /// Freezes `layer`, held by value (its parameters stay in the model's RAM).
    pub const fn new(layer: L) -> Self {
        Self {
            layer,
            no_params: NoParams,
            of: PhantomData,
        }
    }

    /// The layer, to train it again (Keras' `trainable = True`: put it back in a network
    /// of unfrozen type).
    pub fn into_inner(self) -> L {
        self.layer
    }
}

impl<'a, L> Frozen<L, &'a L> {
    /// Freezes a borrowed layer: from a `static`, its parameters stay in flash.
    pub const fn borrowed(layer: &'a L) -> Self {
        Self {
            layer,
            no_params: NoParams,
            of: PhantomData,
        }
    }
}

impl<L, S: Borrow<L>> Frozen<L, S> {
    /// The frozen layer.
    pub fn layer(&self) -> &L {
        self.layer.borrow()
    }
}

// Written out because derive would demand bounds on `L`, which is only a tag when borrowed.
impl<L, S: Clone> Clone for Frozen<L, S> {
    fn clone(&self) -> Self {
        Self {
            layer: self.layer.clone(),
            no_params: NoParams,
            of: PhantomData,
        }
    }
}
impl<L, S: Copy> Copy for Frozen<L, S> {}

impl<L, S: core::fmt::Debug> core::fmt::Debug for Frozen<L, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Frozen").field(&self.layer).finish()
    }
}

impl<L, S: PartialEq> PartialEq for Frozen<L, S> {
    fn eq(&self, other: &Self) -> bool {
        self.layer == other.layer
    }
}

impl<L: Layer, S: Borrow<L>> Layer for Frozen<L, S> {
    type Input = L::Input;
    type Output = L::Output;
    type Params = NoParams;
    type Cache = L::Cache;
    type Activation = L::Activation;

    fn params(&self) -> &NoParams {
        &self.no_params
    }
    fn params_mut(&mut self) -> &mut NoParams {
        &mut self.no_params
    }
    fn activation(&self) -> &Self::Activation {
        self.layer().activation()
    }

    fn infer(&self, input: &Self::Input) -> Self::Output {
        self.layer().infer(input)
    }

    fn forward<R: Rng + ?Sized>(
        &self,
        input: &[Self::Input],
        output: &mut [Self::Output],
        cache: &mut Self::Cache,
        rng: &mut R,
    ) {
        self.layer().forward(input, output, cache, rng);
    }

    /// Nothing to compute: no gradient, and no penalty in the loss (see the type's docs).
    fn parameter_gradients(&self, _: &[Self::Input], _: &[Self::Output], _: &mut NoParams) -> f32 {
        0.0
    }

    fn propagate(
        &self,
        d_output: &[Self::Output],
        d_input: &mut [Self::Input],
        cache: &Self::Cache,
    ) {
        self.layer().propagate(d_output, d_input, cache);
    }

    fn penalty(&self) -> f32 {
        0.0
    }
}

impl<L: Hidden, S: Borrow<L>> Hidden for Frozen<L, S> {
    fn derivative_of_output(&self, output: &mut [Self::Output], cache: &Self::Cache) {
        self.layer().derivative_of_output(output, cache);
    }
}

impl<L: OutputLayer, S: Borrow<L>> OutputLayer for Frozen<L, S> {
    fn forward_pre_activation<R: Rng + ?Sized>(
        &self,
        input: &[Self::Input],
        output: &mut [Self::Output],
        cache: &mut Self::Cache,
        rng: &mut R,
    ) {
        self.layer()
            .forward_pre_activation(input, output, cache, rng);
    }

    fn infer_pre_activation(&self, input: &Self::Input) -> Self::Output {
        self.layer().infer_pre_activation(input)
    }
}
