//! A dense layer and the dropout after it, sharing one buffer.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;

use super::{Dense, DenseParams, Dropout, Hidden, Layer, MaskSeed};
use crate::activation::SignDerivative;

/// `Dense<IN, OUT, A>` followed by `Dropout<OUT>`, with the dropout applied in place on the
/// dense layer's outputs: the same model as the pair `(Dense<IN, OUT, A>, Dropout<OUT>)`,
/// one `[[f32; OUT]; B]` batch buffer smaller. PyTorch offers the same trade as
/// `nn.Dropout(inplace=True)`.
///
/// The pair keeps the activation's output for backward, where `A'` is read from it; in
/// place, only the dropped and scaled output survives. That is enough, exactly, when `A'`
/// depends only on the output's sign ([`SignDerivative`]: ReLU, leaky ReLU, identity), so
/// sigmoid and tanh do not compile here. With [`Relu`](crate::Relu) training follows the
/// pair bit for bit, and backward does not even replay the mask (a non-zero output was
/// kept); with the others the derivative's factors are multiplied in another order, which
/// can move the last bit.
///
/// A saved model ([`crate::persist`]) records every layer boundary, so a file saved from the
/// pair is refused by the in-place form, and the reverse ([`crate::Error::Shape`]). Their
/// parameters are the same tensors in the same order: copy them across with
/// [`Network::parameters`](crate::Network::parameters) and
/// [`Network::parameters_mut`](crate::Network::parameters_mut).
///
/// ```
/// use microtrain::{Dense, DenseDropout, Dropout, Relu, Sigmoid, Network};
/// // Keras: Dense(64, relu) -> Dropout(0.5) -> Dense(1, sigmoid), 30 inputs.
/// type Pair = (Dense<30, 64, Relu>, Dropout<64>, Dense<64, 1, Sigmoid>);
/// type InPlace = (DenseDropout<30, 64, Relu>, Dense<64, 1, Sigmoid>);
/// let model: InPlace = (
///     DenseDropout::new(Dense::new(Relu), Dropout::new(0.5)?),
///     Dense::new(Sigmoid),
/// );
/// assert_eq!(<Pair as Network>::PARAMETERS, <InPlace as Network>::PARAMETERS);
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, PartialEq)]
pub struct DenseDropout<
    const IN: usize,
    const OUT: usize,
    A: SignDerivative,
    G = Xoshiro128PlusPlus,
> {
    /// The dense layer: parameters, activation, regularizers, constraint.
    pub dense: Dense<IN, OUT, A>,
    /// The dropout on its outputs.
    pub dropout: Dropout<OUT, G>,
}

// Written out because derive would demand `G: Copy` (see `Dropout`).
impl<const IN: usize, const OUT: usize, A: SignDerivative, G> Clone
    for DenseDropout<IN, OUT, A, G>
{
    fn clone(&self) -> Self {
        *self
    }
}
impl<const IN: usize, const OUT: usize, A: SignDerivative, G> Copy for DenseDropout<IN, OUT, A, G> {}

impl<const IN: usize, const OUT: usize, A: SignDerivative, G> DenseDropout<IN, OUT, A, G> {
    /// Joins a dense layer and the dropout on its outputs; `const`, so a model can be a
    /// `static`.
    pub const fn new(dense: Dense<IN, OUT, A>, dropout: Dropout<OUT, G>) -> Self {
        Self { dense, dropout }
    }
}

impl<const IN: usize, const OUT: usize, A: SignDerivative, G: Rng + SeedableRng> Layer
    for DenseDropout<IN, OUT, A, G>
{
    type Input = [f32; IN];
    type Output = [f32; OUT];
    type Params = DenseParams<IN, OUT>;
    type Cache = MaskSeed;
    type Activation = A;

    fn params(&self) -> &Self::Params {
        &self.dense.params
    }
    fn params_mut(&mut self) -> &mut Self::Params {
        &mut self.dense.params
    }
    fn activation(&self) -> &A {
        self.dense.activation()
    }

    fn infer(&self, input: &[f32; IN]) -> [f32; OUT] {
        self.dense.infer(input)
    }

    fn forward<R: Rng + ?Sized>(
        &self,
        input: &[[f32; IN]],
        output: &mut [[f32; OUT]],
        seed: &mut MaskSeed,
        rng: &mut R,
    ) {
        let rows = input.len().min(output.len());
        self.dense.forward(input, output, &mut (), rng);
        let output = output.get_mut(..rows).unwrap_or_default();
        self.dropout
            .drop_in_place(output.as_flattened_mut(), seed, rng);
    }

    fn parameter_gradients(
        &self,
        input: &[[f32; IN]],
        d_output: &[[f32; OUT]],
        grads: &mut DenseParams<IN, OUT>,
    ) -> f32 {
        self.dense.parameter_gradients(input, d_output, grads)
    }

    fn propagate(&self, d_output: &[[f32; OUT]], d_input: &mut [[f32; IN]], _: &MaskSeed) {
        self.dense.propagate(d_output, d_input, &());
    }

    fn penalty(&self) -> f32 {
        self.dense.penalty()
    }

    fn initialize<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        self.dense.initialize(rng);
    }

    fn is_initialized(&self) -> bool {
        self.dense.is_initialized()
    }

    fn apply_constraints(&mut self) {
        self.dense.apply_constraints();
    }
}

impl<const IN: usize, const OUT: usize, A: SignDerivative, G: Rng + SeedableRng> Hidden
    for DenseDropout<IN, OUT, A, G>
{
    fn derivative_of_output(&self, output: &mut [[f32; OUT]], seed: &MaskSeed) {
        self.dropout.derivative_after(
            self.dense.activation(),
            seed.get(),
            output.as_flattened_mut(),
        );
    }
}
