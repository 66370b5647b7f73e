//! Stochastic gradient descent, plain and with (Nesterov) momentum.

use super::{Optimizer, StateTag};
use crate::error::{Error, positive, unit_interval};
use crate::kernels;
use crate::layers::Parameters;

/// Plain SGD: `w -= lr·g`. No state. With the SIMD kernels the new weights are flushed to
/// zero below `f32::MIN_POSITIVE` ([`kernels::FLUSHES_SUBNORMALS`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sgd {
    learning_rate: f32,
}

impl Sgd {
    /// SGD with the given learning rate.
    ///
    /// # Errors
    /// [`Error::LearningRate`] unless `learning_rate` is finite and positive.
    pub const fn new(learning_rate: f32) -> Result<Self, Error> {
        match positive(learning_rate, Error::LearningRate { learning_rate }) {
            Ok(learning_rate) => Ok(Self { learning_rate }),
            Err(e) => Err(e),
        }
    }
}

impl<P: Parameters> Optimizer<P> for Sgd {
    fn step<'a, I: Iterator<Item = &'a mut [f32]>>(&mut self, params: I, grads: &P) {
        for (w, g) in params.zip(grads.tensors()) {
            for (w, g) in w.iter_mut().zip(g) {
                *w = kernels::updated(*w - self.learning_rate * g);
            }
        }
    }
    fn update_is_finite_at<'a, I: Iterator<Item = &'a [f32]>>(
        &self,
        learning_rate: f32,
        params: I,
        grads: &P,
    ) -> bool {
        params.zip(grads.tensors()).all(|(w, g)| {
            w.iter()
                .zip(g)
                .all(|(w, g)| (w - learning_rate * g).is_finite())
        })
    }
    fn learning_rate(&self) -> f32 {
        self.learning_rate
    }
    fn set_learning_rate(&mut self, learning_rate: f32) -> Result<(), Error> {
        self.learning_rate = super::checked_learning_rate(learning_rate)?;
        Ok(())
    }
    const STATE_LEN: usize = 0;
    /// `SGD ` (no state, no settings: a saved run records only which optimizer it was).
    fn state_tag(&self) -> StateTag {
        StateTag::new(*b"SGD ", [0.0; 4])
    }
    fn state(&self) -> impl Iterator<Item = &[f32]> {
        core::iter::empty()
    }
    fn state_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        core::iter::empty()
    }
}

/// SGD with momentum, Keras' formulation: `v = μ·v - lr·g`, then `w += v`, or with
/// Nesterov `w += μ·v - lr·g`. With the SIMD kernels the new `v` and `w` are flushed to zero
/// below `f32::MIN_POSITIVE` ([`kernels::FLUSHES_SUBNORMALS`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdMomentum<P> {
    learning_rate: f32,
    momentum: f32,
    nesterov: bool,
    velocity: P,
}

impl<P: Parameters> SgdMomentum<P> {
    /// SGD with momentum `μ` (Keras' `SGD(learning_rate, momentum, nesterov)`).
    ///
    /// # Errors
    /// [`Error::LearningRate`] unless `learning_rate` is finite and positive;
    /// [`Error::Beta`] unless `0 <= momentum < 1`.
    pub const fn new(learning_rate: f32, momentum: f32, nesterov: bool) -> Result<Self, Error> {
        let learning_rate = match positive(learning_rate, Error::LearningRate { learning_rate }) {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        let momentum = match unit_interval(momentum, Error::Beta { beta: momentum }) {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        Ok(Self {
            learning_rate,
            momentum,
            nesterov,
            velocity: P::ZERO,
        })
    }
}

impl<P: Parameters> Optimizer<P> for SgdMomentum<P> {
    fn step<'a, I: Iterator<Item = &'a mut [f32]>>(&mut self, params: I, grads: &P) {
        let (lr, mu) = (self.learning_rate, self.momentum);
        for ((w, g), v) in params.zip(grads.tensors()).zip(self.velocity.tensors_mut()) {
            for ((w, g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
                *v = kernels::updated(mu * *v - lr * g);
                *w = kernels::updated(*w + if self.nesterov { mu * *v - lr * g } else { *v });
            }
        }
    }
    fn update_is_finite_at<'a, I: Iterator<Item = &'a [f32]>>(
        &self,
        learning_rate: f32,
        params: I,
        grads: &P,
    ) -> bool {
        let (lr, mu) = (learning_rate, self.momentum);
        params
            .zip(grads.tensors())
            .zip(self.velocity.tensors())
            .all(|((w, g), v)| {
                w.iter().zip(g).zip(v).all(|((w, g), v)| {
                    let v = mu * v - lr * g;
                    let w = w + if self.nesterov { mu * v - lr * g } else { v };
                    v.is_finite() && w.is_finite()
                })
            })
    }
    fn learning_rate(&self) -> f32 {
        self.learning_rate
    }
    fn set_learning_rate(&mut self, learning_rate: f32) -> Result<(), Error> {
        self.learning_rate = super::checked_learning_rate(learning_rate)?;
        Ok(())
    }
    const STATE_LEN: usize = P::COUNT;
    /// `SGDM`: the velocity is the last update (`v = μ·v - lr·g`), whatever the momentum,
    /// the learning rate or Nesterov, so each of them may change between runs.
    fn state_tag(&self) -> StateTag {
        StateTag::new(*b"SGDM", [0.0; 4])
    }
    fn state(&self) -> impl Iterator<Item = &[f32]> {
        self.velocity.tensors()
    }
    fn state_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        self.velocity.tensors_mut()
    }
}
