//! The fully connected layer `y = f(x·Wᵀ + b)`.

use rand_core::Rng;

use super::{ConstZero, Hidden, Layer, Parameters};
use crate::activation::{Activation, Elementwise, Identity};
use crate::kernels::{self, Shape};
use crate::math;
use crate::penalty::Regularizer;

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
/// ```
/// use microtrain::{Dense, Relu, Regularizer, Xoshiro128PlusPlus, SeedableRng};
/// // Keras: Dense(64, activation="relu", kernel_regularizer=l2(0.01)) on 30 inputs
/// let mut layer = Dense::<30, 64, Relu>::new(Relu).with_kernel_regularizer(Regularizer::l2(0.01)?);
/// layer.initialize(&mut Xoshiro128PlusPlus::seed_from_u64(1));
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dense<const IN: usize, const OUT: usize, A: Activation = Identity> {
    /// Weights and bias.
    pub params: DenseParams<IN, OUT>,
    activation: A,
    kernel_regularizer: Regularizer,
    bias_regularizer: Regularizer,
    // Infinity means no constraint (4 bytes instead of an Option's 8).
    max_norm: f32,
}

impl<const IN: usize, const OUT: usize, A: Activation> Dense<IN, OUT, A> {
    const SHAPE_IS_VALID: () = assert!(
        IN > 0 && OUT > 0,
        "Dense<IN, OUT>: both sizes must be at least 1"
    );

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
        }
    }

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

impl<const IN: usize, const OUT: usize, A: Activation> Layer for Dense<IN, OUT, A> {
    type Input = [f32; IN];
    type Output = [f32; OUT];
    type Params = DenseParams<IN, OUT>;
    type Cache = ();
    type Activation = A;

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
        /// Keras' `backend.epsilon()`, in MaxNorm's denominator.
        const EPSILON: f32 = 1e-7;
        if !self.max_norm.is_finite() {
            return;
        }
        for row in &mut self.params.weights {
            let norm = math::sqrt(row.iter().map(|w| w * w).sum());
            let factor = norm.min(self.max_norm) / (EPSILON + norm);
            for w in row {
                *w *= factor;
            }
        }
    }
}

impl<const IN: usize, const OUT: usize, A: Activation> Dense<IN, OUT, A> {
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

impl<const IN: usize, const OUT: usize, A: Activation> super::OutputLayer for Dense<IN, OUT, A> {
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

impl<const IN: usize, const OUT: usize, A: Elementwise> Hidden for Dense<IN, OUT, A> {
    fn derivative_of_output(&self, output: &mut [[f32; OUT]], _: &()) {
        self.activation
            .derivative_in_place(output.as_flattened_mut());
    }
}
