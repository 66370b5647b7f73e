//! Activation functions of a [`Dense`](crate::layers::Dense) layer.
//!
//! Every derivative is computed from the activation's **output**, which is what backward
//! keeps (`relu' = [y > 0]`, `σ' = y(1 - y)`, `tanh' = 1 - y²`); the pre-activation is never
//! stored. [`Softmax`] is not elementwise and only serves in an output layer, where the
//! loss folds its Jacobian in; using it in a hidden layer is a compile error because it does
//! not implement [`Elementwise`].

use crate::error::{Error, non_negative};
use crate::kernels;
use crate::math;

/// An activation applied in place to rows of a layer's output.
pub trait Activation: Copy + core::fmt::Debug {
    /// Applies the activation in place to `values`, rows of `width`.
    fn activate(&self, values: &mut [f32], width: usize);
}

/// An activation applied to each value on its own, whose derivative follows from its output.
pub trait Elementwise: Activation {
    /// Replaces each output `y` by the derivative `f'(z)` at the `z` that produced it.
    fn derivative_in_place(&self, values: &mut [f32]);
    /// `f'(z)` from `y = f(z)`, for one value.
    fn derivative(&self, y: f32) -> f32;
    /// `f(z)` for one value.
    fn apply(&self, z: f32) -> f32;
}

/// An [`Elementwise`] activation whose derivative at an output `y` depends only on the sign
/// of `y`, so it is the same at `s·y` for every `s > 0`: [`Identity`], [`Relu`] and
/// [`LeakyRelu`]. Dropout can then scale such outputs in place, and backward still reads the
/// exact derivative from them (what [`DenseDropout`](crate::DenseDropout) relies on).
///
/// Implement it only for an activation with that property; sigmoid and tanh lack it (their
/// derivative needs the unscaled output).
pub trait SignDerivative: Elementwise {}

impl SignDerivative for Identity {}
impl SignDerivative for Relu {}
impl SignDerivative for LeakyRelu {}

/// `f(z) = z`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Identity;

/// `f(z) = max(z, 0)`; derivative 0 at 0 (as TensorFlow and PyTorch).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Relu;

/// `f(z) = z` for `z > 0`, `alpha·z` otherwise (Keras `LeakyReLU`, default `alpha = 0.3`;
/// PyTorch's default `negative_slope` is 0.01).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakyRelu {
    alpha: f32,
}

/// Logistic sigmoid `1 / (1 + e^-z)`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sigmoid;

/// Hyperbolic tangent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tanh;

/// Keras' `selu`: `scale·z` for `z > 0`, `scale·alpha·(e^z - 1)` otherwise, with Keras'
/// constants [`Selu::ALPHA`] and [`Selu::SCALE`] (Klambauer et al., 2017). The partner of
/// [`AlphaDropout`](crate::AlphaDropout). (Keras pairs it with `lecun_normal` weights,
/// which microtrain's [`Initializer`](crate::Initializer) does not offer.)
///
/// Computed value by value with `libm`'s `expm1f` in both kernel sets (there is no SIMD
/// kernel for it), so its bits are the same on every build.
///
/// Its derivative follows from its output, since SELU is strictly increasing: `scale` for
/// `y > 0`, and for `y ≤ 0`, where `y = scale·alpha·(e^z - 1)`, `scale·alpha·e^z =
/// y + scale·alpha`. At `z = 0` both JAX and this give the negative side's `scale·alpha`.
///
/// ```
/// use microtrain::{Elementwise, Selu};
/// assert_eq!(Selu.apply(1.0), Selu::SCALE);
/// let y = Selu.apply(-1.0);
/// assert!((Selu.derivative(y) - Selu::SCALE * Selu::ALPHA * (-1.0f32).exp()).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Selu;

impl Selu {
    /// Keras' (and JAX's) `alpha`, 1.6732632423543772848170429916717, as an `f32`.
    pub const ALPHA: f32 = 1.673_263_2;
    /// Keras' (and JAX's) `scale`, 1.0507009873554804934193349852946, as an `f32`.
    pub const SCALE: f32 = 1.050_701;
    /// `scale·alpha` rounded once, the derivative's offset for negative outputs.
    const SCALE_ALPHA: f32 = (Self::SCALE as f64 * Self::ALPHA as f64) as f32;
}

impl Activation for Selu {
    fn activate(&self, values: &mut [f32], _: usize) {
        for v in values {
            *v = self.apply(*v);
        }
    }
}
impl Elementwise for Selu {
    fn derivative_in_place(&self, values: &mut [f32]) {
        for v in values {
            *v = self.derivative(*v);
        }
    }
    fn derivative(&self, y: f32) -> f32 {
        if y > 0.0 {
            Self::SCALE
        } else {
            y + Self::SCALE_ALPHA
        }
    }
    fn apply(&self, z: f32) -> f32 {
        // As JAX: `scale * where(z > 0, z, alpha * expm1(z))`, rounded in the same order.
        if z > 0.0 {
            Self::SCALE * z
        } else {
            Self::SCALE * (Self::ALPHA * math::exp_m1(z))
        }
    }
}

/// Softmax over each output row; only for an output layer (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Softmax;

impl LeakyRelu {
    /// Keras' default slope, 0.3.
    pub const KERAS_DEFAULT: Self = Self { alpha: 0.3 };

    /// A leaky ReLU with slope `alpha` for negative inputs.
    ///
    /// # Errors
    /// [`Error::Slope`] if `alpha` is negative or not finite (a negative slope would flip
    /// signs and break the derivative-from-output rule).
    pub const fn new(alpha: f32) -> Result<Self, Error> {
        match non_negative(alpha, Error::Slope { alpha }) {
            Ok(alpha) => Ok(Self { alpha }),
            Err(e) => Err(e),
        }
    }

    /// The slope for negative inputs.
    pub const fn alpha(&self) -> f32 {
        self.alpha
    }
}

impl Default for LeakyRelu {
    fn default() -> Self {
        Self::KERAS_DEFAULT
    }
}

impl Activation for Identity {
    fn activate(&self, _: &mut [f32], _: usize) {}
}
impl Elementwise for Identity {
    fn derivative_in_place(&self, values: &mut [f32]) {
        values.fill(1.0);
    }
    fn derivative(&self, _: f32) -> f32 {
        1.0
    }
    fn apply(&self, z: f32) -> f32 {
        z
    }
}

impl Activation for Relu {
    fn activate(&self, values: &mut [f32], _: usize) {
        kernels::relu(values);
    }
}
impl Elementwise for Relu {
    fn derivative_in_place(&self, values: &mut [f32]) {
        kernels::relu_derivative(values);
    }
    fn derivative(&self, y: f32) -> f32 {
        if y > 0.0 { 1.0 } else { 0.0 }
    }
    fn apply(&self, z: f32) -> f32 {
        // As `kernels::relu`: NaN stays NaN.
        if z <= 0.0 { 0.0 } else { z }
    }
}

impl Activation for LeakyRelu {
    fn activate(&self, values: &mut [f32], _: usize) {
        kernels::leaky_relu(values, self.alpha);
    }
}
impl Elementwise for LeakyRelu {
    fn derivative_in_place(&self, values: &mut [f32]) {
        kernels::leaky_relu_derivative(values, self.alpha);
    }
    fn derivative(&self, y: f32) -> f32 {
        if y > 0.0 { 1.0 } else { self.alpha }
    }
    fn apply(&self, z: f32) -> f32 {
        if z > 0.0 { z } else { self.alpha * z }
    }
}

impl Activation for Sigmoid {
    fn activate(&self, values: &mut [f32], _: usize) {
        kernels::sigmoid(values);
    }
}
impl Elementwise for Sigmoid {
    fn derivative_in_place(&self, values: &mut [f32]) {
        kernels::sigmoid_derivative(values);
    }
    fn derivative(&self, y: f32) -> f32 {
        y * (1.0 - y)
    }
    fn apply(&self, z: f32) -> f32 {
        math::sigmoid(z)
    }
}

impl Activation for Tanh {
    fn activate(&self, values: &mut [f32], _: usize) {
        kernels::tanh(values);
    }
}
impl Elementwise for Tanh {
    fn derivative_in_place(&self, values: &mut [f32]) {
        kernels::tanh_derivative(values);
    }
    fn derivative(&self, y: f32) -> f32 {
        1.0 - y * y
    }
    fn apply(&self, z: f32) -> f32 {
        math::tanh(z)
    }
}

impl Activation for Softmax {
    fn activate(&self, values: &mut [f32], width: usize) {
        kernels::softmax(values, width);
    }
}
