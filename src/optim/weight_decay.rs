//! Keras' `weight_decay` argument, for any optimizer, and which tensors a weight decay
//! applies to (Keras' `exclude_from_weight_decay`).

use super::{Optimizer, StateTag};
use crate::error::{Error, non_negative};
use crate::kernels;
use crate::layers::Parameters;

/// Which parameter tensors a weight decay applies to: every tensor, every one but the
/// biases ([`Parameters::biases`]), and any tensor left out by its index in the order of
/// [`Parameters::tensors`]. Settable in a `const`.
///
/// ```
/// use microtrain::{DecayedTensors, DenseParams, Parameters, layers::ConstZero};
/// type Net = (DenseParams<4, 8>, DenseParams<8, 1>); // tensors: kernel, bias, kernel, bias
/// // Keras: optimizer.exclude_from_weight_decay(var_names=["bias"])
/// const KERNELS: DecayedTensors = DecayedTensors::EXCEPT_BIASES;
/// let net = Net::ZERO;
/// let decays: Vec<bool> = KERNELS.of(&net).collect();
/// assert_eq!(decays, [true, false, true, false]);
/// // Only the first layer's kernel: the last layer's (tensor 2) left out by its index.
/// const FIRST: DecayedTensors = DecayedTensors::EXCEPT_BIASES.excluding(2);
/// assert_eq!(FIRST.of(&net).collect::<Vec<_>>(), [true, false, false, false]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecayedTensors {
    biases: bool,
    // Bit `i` set: tensor `i` is left out. Tensors from the 64th on are never left out by
    // index.
    excluded: u64,
}

impl DecayedTensors {
    /// Every tensor, biases included (Keras' default, and PyTorch's default parameter group).
    pub const ALL: Self = Self {
        biases: true,
        excluded: 0,
    };

    /// Every tensor but the biases: Keras' `exclude_from_weight_decay(var_names=["bias"])`,
    /// PyTorch's usual parameter group without decay for the biases.
    pub const EXCEPT_BIASES: Self = Self {
        biases: false,
        excluded: 0,
    };

    /// These tensors and not the one at `index` in the order of [`Parameters::tensors`]
    /// (Keras' `exclude_from_weight_decay(var_list=[...])`). An index of 64 or more leaves
    /// out nothing.
    pub const fn excluding(self, index: usize) -> Self {
        let bit = if index < 64 { 1u64 << index } else { 0 };
        Self {
            excluded: self.excluded | bit,
            ..self
        }
    }

    /// True if the tensor at `index`, a bias if `bias`, decays.
    #[inline(always)]
    pub const fn decays(&self, index: usize, bias: bool) -> bool {
        let excluded = index < 64 && (self.excluded >> index) & 1 == 1;
        !excluded && (self.biases || !bias)
    }

    /// For each tensor of `params`, in order, true if it decays.
    pub fn of<P: Parameters>(self, params: &P) -> impl Iterator<Item = bool> {
        params
            .biases()
            .enumerate()
            .map(move |(index, bias)| self.decays(index, bias))
    }
}

/// An optimizer with Keras' weight decay (Keras' `weight_decay` argument, which every
/// Keras 3 optimizer has): before each update, each decayed tensor becomes
///
/// ```text
/// w = w - w·wd·lr
/// ```
///
/// in `f32`, with `lr` the learning rate of that update (a schedule's rate under
/// [`Scheduled`](super::Scheduled), in either order of wrapping), as Keras'
/// `_apply_weight_decay` computes it after gradient clipping and before the update step.
/// Keras' weights bit for bit (`tests/keras_optimizers.rs`). With the SIMD kernels a
/// decayed weight below `f32::MIN_POSITIVE` is flushed to zero
/// ([`kernels::FLUSHES_SUBNORMALS`]).
///
/// Keras' `AdamW` is [`Adam`](super::Adam) with this decay. PyTorch's is another:
/// `torch.optim.AdamW` multiplies by `1 - lr·wd` ([`AdamW`](super::AdamW)), and the
/// `weight_decay` of `torch.optim.Adam` and `SGD` is an L2 term `wd·w` added to the
/// gradient (microtrain's [`l2`](crate::l2) penalty with λ = wd/2).
///
/// The decay changes no optimizer state: the state, its length and its
/// [`Optimizer::state_tag`] are the inner optimizer's, so a run saved with a weight decay
/// continues without one and the other way round. An optimizer without weight decay is
/// not wrapped and pays nothing; a wrapped one pays one multiply-subtract per decayed
/// value and step, and its [`Optimizer::update_is_finite`] checks the inner update on a
/// decayed copy of the parameters: `size_of::<P>()` bytes of stack during a checked step
/// (exact, where a bound on the decayed values would need each optimizer's check to know
/// the decay).
///
/// ```
/// use microtrain::*;
/// // Keras: AdamW(learning_rate=1e-3, weight_decay=0.004), biases excluded.
/// const ADAMW: Result<WeightDecay<Adam<DenseParams<4, 2>>>, Error> =
///     WeightDecay::new(Adam::keras_default(), 0.004);
/// let mut adamw = ADAMW?.with_decayed(DecayedTensors::EXCEPT_BIASES);
/// let mut w = DenseParams::<4, 2>::ZERO;
/// w.weights = [[1.0; 4]; 2];
/// w.bias = [1.0; 2];
/// adamw.step(w.tensors_mut(), &DenseParams::ZERO); // zero gradients: only the decay moves w
/// assert_eq!(w.weights[0][0], 1.0 - 1.0 * 0.004 * 1e-3);
/// assert_eq!(w.bias[0], 1.0);
/// assert!(WeightDecay::new(Sgd::new(0.1)?, -1.0).is_err());
/// # Ok::<(), microtrain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightDecay<O> {
    optimizer: O,
    weight_decay: f32,
    decayed: DecayedTensors,
}

impl<O> WeightDecay<O> {
    /// `optimizer` with Keras' `weight_decay = weight_decay` on every tensor.
    ///
    /// # Errors
    /// [`Error::WeightDecay`] unless `weight_decay` is finite and non-negative.
    pub const fn new(optimizer: O, weight_decay: f32) -> Result<Self, Error> {
        match non_negative(weight_decay, Error::WeightDecay { weight_decay }) {
            Ok(weight_decay) => Ok(Self {
                optimizer,
                weight_decay,
                decayed: DecayedTensors::ALL,
            }),
            Err(e) => {
                // Nothing to drop in a `const fn`: the optimizers hold plain values.
                core::mem::forget(optimizer);
                Err(e)
            }
        }
    }

    /// Sets which tensors decay (every one by default).
    pub const fn with_decayed(mut self, decayed: DecayedTensors) -> Self {
        self.decayed = decayed;
        self
    }

    /// The inner optimizer.
    pub const fn optimizer(&self) -> &O {
        &self.optimizer
    }

    /// The weight decay.
    pub const fn weight_decay(&self) -> f32 {
        self.weight_decay
    }

    /// Which tensors decay.
    pub const fn decayed(&self) -> DecayedTensors {
        self.decayed
    }
}

/// Keras' decay of one weight, `w - w·wd·lr`, in Keras' order.
#[inline(always)]
fn decayed(w: f32, weight_decay: f32, learning_rate: f32) -> f32 {
    kernels::updated(w - w * weight_decay * learning_rate)
}

impl<P: Parameters, O: Optimizer<P>> Optimizer<P> for WeightDecay<O> {
    fn step<'a, I: Iterator<Item = &'a mut [f32]>>(&mut self, params: I, grads: &P) {
        let (weight_decay, learning_rate) = (self.weight_decay, self.optimizer.learning_rate());
        // Each tensor decays as the inner optimizer reaches it, just before its update: the
        // decay's loop and the update's meet the tensor in turn while it is in cache, with
        // no copy. Folding the decay into each optimizer's update loop would save that
        // loop, at the cost of a decay argument in every optimizer and kernel.
        let params = params.zip(self.decayed.of(grads)).map(move |(w, decays)| {
            if decays {
                w.iter_mut()
                    .for_each(|x| *x = decayed(*x, weight_decay, learning_rate));
            }
            w
        });
        self.optimizer.step(params, grads);
    }
    fn learning_rate(&self) -> f32 {
        self.optimizer.learning_rate()
    }
    fn set_learning_rate(&mut self, learning_rate: f32) -> Result<(), Error> {
        self.optimizer.set_learning_rate(learning_rate)
    }
    /// The inner optimizer's check on the decayed parameters, computed into a copy.
    fn update_is_finite_at<'a, I: Iterator<Item = &'a [f32]>>(
        &self,
        learning_rate: f32,
        params: I,
        grads: &P,
    ) -> bool {
        let (mut copy, mut finite) = (P::ZERO, true);
        let tensors = copy.tensors_mut().zip(params).zip(self.decayed.of(grads));
        tensors.for_each(|((copy, w), decays)| {
            let wd = self.weight_decay;
            for (copy, &w) in copy.iter_mut().zip(w) {
                *copy = if decays {
                    decayed(w, wd, learning_rate)
                } else {
                    w
                };
                finite &= copy.is_finite();
            }
        });
        finite
            && self
                .optimizer
                .update_is_finite_at(learning_rate, copy.tensors(), grads)
    }
    const STATE_LEN: usize = O::STATE_LEN;
    fn state(&self) -> impl Iterator<Item = &[f32]> {
        self.optimizer.state()
    }
    fn state_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        self.optimizer.state_mut()
    }
    fn state_is_valid(state: impl Iterator<Item = f32>) -> bool {
        O::state_is_valid(state)
    }
    /// The inner optimizer's: a weight decay changes no state ([`StateTag`]).
    fn state_tag(&self) -> StateTag {
        self.optimizer.state_tag()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::DenseParams;
    use crate::optim::{Adam, Sgd};

    /// What README's memory section says a weight decay adds.
    #[test]
    fn a_weight_decay_adds_at_most_24_bytes() {
        let added = |optimizer: usize, wrapped: usize| wrapped - optimizer;
        type A = Adam<DenseParams<4, 2>>;
        assert!(added(size_of::<Sgd>(), size_of::<WeightDecay<Sgd>>()) <= 24);
        assert!(added(size_of::<A>(), size_of::<WeightDecay<A>>()) <= 24);
    }
}
