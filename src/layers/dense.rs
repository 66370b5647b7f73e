//! The fully connected layer `y = f(x·Wᵀ + b)`.

use rand_core::Rng;

use super::{ConstZero, Hidden, Layer, Parameters};
use crate::activation::{Activation, Elementwise, Identity};
use crate::constraint::{Constraint, Unconstrained};
use crate::kernels::{self, Shape};
use crate::math;
use crate::penalty::{ActivityRegularizer, NoActivityRegularizer, Regularizer};

/// Weights and bias of a [`Dense`] layer; the same type holds their gradients.
///
/// Weights are stored `[[f32; IN]; OUT]`: each output's weights form one contiguous row,
/// so the forward pass is one dot product per output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenseParams<const IN: usize, const OUT: usize> {
    /// `weights[o][i]` connects input `i` to output `o`.
    pub weights: [[f32; IN]; OUT],
    /// One bias per output.
    pub bias: [f32; OUT],
}

impl<const IN: usize, const OUT: usize> ConstZero for DenseParams<IN, OUT> {
    const ZERO: Self = Self {
        weights: [[0.0; IN]; OUT],
        bias: [0.0; OUT],
    };
}

impl<const IN: usize, const OUT: usize> Parameters for DenseParams<IN, OUT> {
    const COUNT: usize = IN * OUT + OUT;
    const TENSORS: Option<usize> = Some(2);
    fn tensors(&self) -> impl Iterator<Item = &[f32]> {
        [self.weights.as_flattened(), &self.bias[..]].into_iter()
    }
    fn tensors_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        [self.weights.as_flattened_mut(), &mut self.bias[..]].into_iter()
    }
    fn biases(&self) -> impl Iterator<Item = bool> {
        [false, true].into_iter()
    }
}

/// How [`Dense::initialize_with`] draws the weights (biases start at zero, as in Keras).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Initializer {
    /// Keras' default `glorot_uniform`: `U(-l, l)`, `l = sqrt(6 / (fan_in + fan_out))`.
    #[default]
    GlorotUniform,
    /// Keras' `he_uniform` (PyTorch's `kaiming_uniform_` with ReLU gain):
    /// `U(-l, l)`, `l = sqrt(6 / fan_in)`.
    HeUniform,
}

/// A fully connected layer with `IN` inputs, `OUT` outputs and activation `A`.
///
/// The last three type parameters are Keras' `activity_regularizer` (`AR`: [`Regularizer`]
/// or, by default, the zero-sized [`NoActivityRegularizer`]), `kernel_constraint` (`K`) and
/// `bias_constraint` (`C`), both [`Unconstrained`] by default (see [`crate::constraint`]).
/// They are types so that a layer without them stores nothing and runs no code for them;
/// the builder methods ([`Dense::with_activity_regularizer`],
/// [`Dense::with_kernel_constraint`], [`Dense::with_bias_constraint`]) return the layer
/// with the parameter set.
///
/// ```
/// use microtrain::{Dense, Relu, Regularizer, Xoshiro128PlusPlus, SeedableRng};
/// // Keras: Dense(64, activation="relu", kernel_regularizer=l2(0.01)) on 30 inputs
/// let mut layer = Dense::<30, 64, Relu>::new(Relu).with_kernel_regularizer(Regularizer::l2(0.01)?);
/// layer.initialize(&mut Xoshiro128PlusPlus::seed_from_u64(1));
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dense<
    const IN: usize,
    const OUT: usize,
    A: Activation = Identity,
    AR: ActivityRegularizer = NoActivityRegularizer,
    K: Constraint = Unconstrained,
    C: Constraint = Unconstrained,
> {
    /// Weights and bias.
    pub params: DenseParams<IN, OUT>,
    activation: A,
    kernel_regularizer: Regularizer,
    bias_regularizer: Regularizer,
    // Infinity means no constraint (4 bytes instead of an Option's 8).
    max_norm: f32,
    activity_regularizer: AR,
    kernel_constraint: K,
    bias_constraint: C,
}

impl<const IN: usize, const OUT: usize, A: Activation> Dense<IN, OUT, A> {
    /// A layer with zero weights and no regularizer; call [`Dense::initialize`] before
    /// training. `const`, so a model can be a `static`.
    pub const fn new(activation: A) -> Self {
        let () = Self::SHAPE_IS_VALID;
        Self {
            params: DenseParams::ZERO,
            activation,
            kernel_regularizer: Regularizer::NONE,
            bias_regularizer: Regularizer::NONE,
            max_norm: f32::INFINITY,
            activity_regularizer: NoActivityRegularizer,
            kernel_constraint: Unconstrained,
            bias_constraint: Unconstrained,
        }
    }
}

impl<
    const IN: usize,
    const OUT: usize,
    A: Activation,
    AR: ActivityRegularizer,
    K: Constraint,
    C: Constraint,
> Dense<IN, OUT, A, AR, K, C>
{
    const SHAPE_IS_VALID: () = assert!(
        IN > 0 && OUT > 0,
        "Dense<IN, OUT>: both sizes must be at least 1"
    );

    /// Sets the weights and bias, e.g. trained on the host and compiled into a `static`
    /// (see [`crate::Frozen`]).
    pub const fn with_params(mut self, params: DenseParams<IN, OUT>) -> Self {
        self.params = params;
        self
    }

    /// Sets Keras' `kernel_regularizer`.
    pub const fn with_kernel_regularizer(mut self, regularizer: Regularizer) -> Self {
        self.kernel_regularizer = regularizer;
        self
    }

    /// Sets Keras' `bias_regularizer`.
    pub const fn with_bias_regularizer(mut self, regularizer: Regularizer) -> Self {
        self.bias_regularizer = regularizer;
        self
    }

    /// Keras' `kernel_constraint=MaxNorm(max_value)`: after every update, each output's
    /// incoming weight vector `w[o]` is rescaled to norm `min(‖w[o]‖, max_value)` (as
    /// Keras: `w · clip(‖w‖, 0, max) / (1e-7 + ‖w‖)`). The classic partner of dropout
    /// (Srivastava et al., 2014).
    ///
    /// # Errors
    /// [`Error::MaxNorm`](crate::Error::MaxNorm) unless `max_value` is finite and positive.
    pub const fn with_max_norm(mut self, max_value: f32) -> Result<Self, crate::Error> {
        match crate::error::positive(max_value, crate::Error::MaxNorm { max_value }) {
            Ok(max_value) => {
                self.max_norm = max_value;
                Ok(self)
            }
            Err(e) => Err(e),
        }
    }

    /// The kernel regularizer.
    pub const fn kernel_regularizer(&self) -> Regularizer {
        self.kernel_regularizer
    }

    /// Sets Keras' `activity_regularizer`: `regularizer` applied to the layer's output
    /// (after the activation), summed over the batch and divided by the batch size as
    /// Keras 3 does, is added to the loss of every training step (and to
    /// [`evaluate`](crate::evaluate)'s, as Keras' `evaluate` reports it). Its gradient is
    /// added to `∂loss/∂output` in backward before the activation's derivative multiplies
    /// it, in the same sweep.
    ///
    /// Only for a hidden layer: a `Dense` with an activity regularizer is not an
    /// [`OutputLayer`](crate::OutputLayer) (the loss overwrites the last layer's outputs
    /// with its gradient, so the term would need a pass of its own there).
    ///
    /// ```
    /// use microtrain::*;
    /// // Keras: Dense(8, relu, activity_regularizer=l1(1e-3)) -> Dense(1, sigmoid)
    /// network! { type Sparse = (Dense<4, 8, Relu, Regularizer>, Dense<8, 1, Sigmoid>); }
    /// let model: Sparse = (
    ///     Dense::new(Relu).with_activity_regularizer(const_config!(l1(1e-3))),
    ///     Dense::new(Sigmoid),
    /// );
    /// # let _ = model;
    /// ```
    pub const fn with_activity_regularizer(
        self,
        regularizer: Regularizer,
    ) -> Dense<IN, OUT, A, Regularizer, K, C> {
        Dense {
            params: self.params,
            activation: self.activation,
            kernel_regularizer: self.kernel_regularizer,
            bias_regularizer: self.bias_regularizer,
            max_norm: self.max_norm,
            activity_regularizer: regularizer,
            kernel_constraint: self.kernel_constraint,
            bias_constraint: self.bias_constraint,
        }
    }

    /// Sets Keras' `kernel_constraint`, applied to the weights after every update (after
    /// [`Dense::with_max_norm`]'s, if both are set). See [`crate::constraint`] for the
    /// constraints and their axes.
    ///
    /// ```
    /// use microtrain::*;
    /// use microtrain::constraint::{NonNeg, UnitNorm};
    /// // Keras: Dense(8, kernel_constraint=NonNeg(), bias_constraint=UnitNorm())
    /// let layer: Dense<4, 8, Identity, NoActivityRegularizer, NonNeg, UnitNorm> = Dense::new(Identity)
    ///     .with_kernel_constraint(NonNeg)
    ///     .with_bias_constraint(const_config!(UnitNorm::new(0)));
    /// # let _ = layer;
    /// ```
    pub const fn with_kernel_constraint<K2: Constraint>(
        self,
        constraint: K2,
    ) -> Dense<IN, OUT, A, AR, K2, C> {
        Dense {
            params: self.params,
            activation: self.activation,
            kernel_regularizer: self.kernel_regularizer,
            bias_regularizer: self.bias_regularizer,
            max_norm: self.max_norm,
            activity_regularizer: self.activity_regularizer,
            kernel_constraint: constraint,
            bias_constraint: self.bias_constraint,
        }
    }

    /// Sets Keras' `bias_constraint`, applied to the bias after every update. A norm
    /// constraint takes the norm of the whole bias vector (see [`crate::constraint`]).
    pub const fn with_bias_constraint<C2: Constraint>(
        self,
        constraint: C2,
    ) -> Dense<IN, OUT, A, AR, K, C2> {
        Dense {
            params: self.params,
            activation: self.activation,
            kernel_regularizer: self.kernel_regularizer,
            bias_regularizer: self.bias_regularizer,
            max_norm: self.max_norm,
            activity_regularizer: self.activity_regularizer,
            kernel_constraint: self.kernel_constraint,
            bias_constraint: constraint,
        }
    }

    /// The activity regularizer, if the layer has one.
    pub fn activity_regularizer(&self) -> Option<Regularizer> {
        self.activity_regularizer.regularizer()
    }

    /// Draws the weights with Keras' default, [`Initializer::GlorotUniform`], and zeroes
    /// the bias.
    pub fn initialize<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        self.initialize_with(rng, Initializer::GlorotUniform);
    }

    /// Draws the weights from `initializer` and zeroes the bias. (The choice is an argument,
    /// not a field, so that it costs no RAM in every layer for the rest of training.)
    pub fn initialize_with<R: Rng + ?Sized>(&mut self, rng: &mut R, initializer: Initializer) {
        let fan = match initializer {
            Initializer::GlorotUniform => IN as f32 + OUT as f32,
            Initializer::HeUniform => IN as f32,
        };
        let limit = math::sqrt(6.0 / fan);
        for w in self.params.weights.as_flattened_mut() {
            *w = limit * (2.0 * crate::rng::unit_f32(rng) - 1.0);
        }
        self.params.bias = [0.0; OUT];
    }

    const fn shape(rows: usize) -> Shape {
        Shape {
            rows,
            inputs: IN,
            outputs: OUT,
        }
    }
}

/// True if some value is neither `0.0` nor `-0.0`; stops at the first such value (the first
/// weight, for a drawn or trained layer). Out of line and not generic: one short loop in a
/// firmware instead of a copy unrolled for every layer size (2.1 KB of flash on a
/// Cortex-M4F for the two layers of `examples/cortex-m4f`).
#[inline(never)]
fn any_non_zero(values: &[f32]) -> bool {
    values.iter().any(|&w| w != 0.0)
}

impl<
    const IN: usize,
    const OUT: usize,
    A: Activation,
    AR: ActivityRegularizer,
    K: Constraint,
    C: Constraint,
> Layer for Dense<IN, OUT, A, AR, K, C>
{
    type Input = [f32; IN];
    type Output = [f32; OUT];
    type Params = DenseParams<IN, OUT>;
    type Cache = ();
    type Activation = A;

    const HAS_ACTIVITY_REGULARIZER: bool = AR::ACTIVE;

    fn params(&self) -> &Self::Params {
        &self.params
    }
    fn params_mut(&mut self) -> &mut Self::Params {
        &mut self.params
    }
    fn activation(&self) -> &A {
        &self.activation
    }

    fn infer(&self, input: &[f32; IN]) -> [f32; OUT] {
        let mut output = self.linear(input);
        self.activation.activate(&mut output, OUT);
        output
    }

    #[inline(never)]
    fn forward<R: Rng + ?Sized>(
        &self,
        input: &[[f32; IN]],
        output: &mut [[f32; OUT]],
        _: &mut (),
        _: &mut R,
    ) {
        let output = self.linear_rows(input, output);
        self.activation.activate(output, OUT);
    }

    #[inline(never)]
    fn parameter_gradients(
        &self,
        input: &[[f32; IN]],
        d_output: &[[f32; OUT]],
        grads: &mut DenseParams<IN, OUT>,
    ) -> f32 {
        let rows = input.len().min(d_output.len());
        let kernel_penalty = kernels::dense_weight_gradient(
            d_output.as_flattened(),
            input.as_flattened(),
            self.params.weights.as_flattened(),
            grads.weights.as_flattened_mut(),
            Self::shape(rows),
            self.kernel_regularizer,
        );
        let bias_penalty = kernels::dense_bias_gradient(
            d_output.as_flattened(),
            &self.params.bias,
            &mut grads.bias,
            rows,
            self.bias_regularizer,
        );
        kernel_penalty + bias_penalty
    }

    #[inline(never)]
    fn propagate(&self, d_output: &[[f32; OUT]], d_input: &mut [[f32; IN]], _: &()) {
        let rows = d_input.len().min(d_output.len());
        kernels::dense_input_gradient(
            d_output.as_flattened(),
            self.params.weights.as_flattened(),
            d_input.as_flattened_mut(),
            Self::shape(rows),
        );
    }

    fn penalty(&self) -> f32 {
        self.kernel_regularizer
            .loss(self.params.weights.as_flattened())
            + self.bias_regularizer.loss(&self.params.bias)
    }

    fn initialize<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        Dense::initialize(self, rng);
    }

    fn is_initialized(&self) -> bool {
        any_non_zero(self.params.weights.as_flattened())
    }

    fn apply_constraints(&mut self) {
        if self.max_norm.is_finite() {
            crate::constraint::max_norm_rows(
                self.params.weights.as_flattened_mut(),
                IN,
                self.max_norm,
            );
        }
        self.kernel_constraint
            .apply(self.params.weights.as_flattened_mut(), IN);
        self.bias_constraint.apply_to_vector(&mut self.params.bias);
    }

    fn activity_loss(&self, outputs: &[[f32; OUT]]) -> f32 {
        match self.activity_regularizer.regularizer() {
            Some(regularizer) if !outputs.is_empty() => {
                regularizer.loss(outputs.as_flattened()) / outputs.len() as f32
            }
            // The additive identity (see `Layer::activity_loss`).
            _ => -0.0,
        }
    }
}

impl<
    const IN: usize,
    const OUT: usize,
    A: Activation,
    AR: ActivityRegularizer,
    K: Constraint,
    C: Constraint,
> Dense<IN, OUT, A, AR, K, C>
{
    /// `x·Wᵀ + b` for one sample: the pre-activation.
    fn linear(&self, input: &[f32; IN]) -> [f32; OUT] {
        let mut output = [0.0; OUT];
        kernels::dense_forward(
            input,
            self.params.weights.as_flattened(),
            &self.params.bias,
            &mut output,
            Self::shape(1),
        );
        output
    }

    /// `x·Wᵀ + b` for the rows of `input` (up to the shorter length) into `output`, which it
    /// returns flattened.
    fn linear_rows<'o>(&self, input: &[[f32; IN]], output: &'o mut [[f32; OUT]]) -> &'o mut [f32] {
        let rows = input.len().min(output.len());
        let output = output.as_flattened_mut();
        kernels::dense_forward(
            input.as_flattened(),
            self.params.weights.as_flattened(),
            &self.params.bias,
            output,
            Self::shape(rows),
        );
        output
    }
}

// Not with an activity regularizer (see `Dense::with_activity_regularizer`).
impl<const IN: usize, const OUT: usize, A: Activation, K: Constraint, C: Constraint>
    super::OutputLayer for Dense<IN, OUT, A, NoActivityRegularizer, K, C>
{
    #[inline(never)]
    fn forward_pre_activation<R: Rng + ?Sized>(
        &self,
        input: &[[f32; IN]],
        output: &mut [[f32; OUT]],
        _: &mut (),
        _: &mut R,
    ) {
        self.linear_rows(input, output);
    }

    fn infer_pre_activation(&self, input: &[f32; IN]) -> [f32; OUT] {
        self.linear(input)
    }
}

/// Rows per call of the layer above's `propagate` in an activity-regularized backward pass
/// (each call fills a stack buffer of this many rows): the SIMD input-gradient kernel
/// works on tiles of 4 rows, the scalar one row by row.
const ACTIVITY_ROWS: usize = if kernels::SIMD_ACTIVE { 4 } else { 1 };

impl<
    const IN: usize,
    const OUT: usize,
    A: Elementwise,
    AR: ActivityRegularizer,
    K: Constraint,
    C: Constraint,
> Hidden for Dense<IN, OUT, A, AR, K, C>
{
    fn derivative_of_output(&self, output: &mut [[f32; OUT]], _: &()) {
        self.activation
            .derivative_in_place(output.as_flattened_mut());
    }

    /// With an activity regularizer `ρ`: `δ = f'(z)·(∂loss/∂y + ∂ρ(y)/∂y / rows)`, the
    /// regularizer's gradient added before the activation's derivative multiplies in, as
    /// the chain rule has it. The gradient from above is computed into a stack buffer of
    /// a few rows (`4·OUT` floats with SIMD, `OUT` without), then one sweep over the rows
    /// turns each `y` into its `δ` and sums `ρ(y)` for the loss.
    fn backward_through_output(
        &self,
        output: &mut [[f32; OUT]],
        cache: &(),
        mut propagate: impl FnMut(usize, &mut [[f32; OUT]]),
    ) -> f32 {
        let Some(regularizer) = self.activity_regularizer.regularizer() else {
            self.derivative_of_output(output, cache);
            propagate(0, output);
            return -0.0;
        };
        if output.is_empty() {
            return -0.0;
        }
        let scale = 1.0 / output.len() as f32;
        let mut loss = 0.0f32;
        let mut from_above = [[0.0f32; OUT]; ACTIVITY_ROWS];
        for (block, outputs) in output.chunks_mut(ACTIVITY_ROWS).enumerate() {
            let from_above = from_above.get_mut(..outputs.len()).unwrap_or_default();
            from_above.as_flattened_mut().fill(1.0);
            propagate(block.saturating_mul(ACTIVITY_ROWS), from_above);
            loss += regularizer.loss(outputs.as_flattened());
            let pairs = outputs
                .as_flattened_mut()
                .iter_mut()
                .zip(from_above.as_flattened());
            for (y, &g) in pairs {
                *y = self.activation.derivative(*y) * (g + regularizer.gradient(*y) * scale);
            }
        }
        loss / output.len() as f32
    }
}
