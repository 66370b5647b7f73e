//! Optimizers with statically sized state.
//!
//! An optimizer owns its state as values of the network's parameter type `P` (Adam keeps
//! two, momentum SGD one, plain SGD none), so its size is known at compile time and
//! counted in the training RAM. It walks parameters, gradients and state in lockstep, one
//! tensor at a time.
//!
//! | optimizer | Keras | PyTorch |
//! |---|---|---|
//! | [`Sgd`] | `SGD(learning_rate)` | `SGD(lr)` |
//! | [`SgdMomentum`] | `SGD(learning_rate, momentum, nesterov)`: `v = μv - lr·g; w += v` | `SGD(lr, momentum, nesterov)`: `v = μv + g; w -= lr·v` (the same for a constant `lr`) |
//! | [`Adam`] | `Adam()`: lr 1e-3, β 0.9/0.999, ε 1e-7, ε added to `sqrt(v)` | `Adam()`: ε 1e-8, added to `sqrt(v̂)` |
//! | [`AdamW`] | — | `AdamW()`: decoupled decay `w -= lr·wd·w`, wd 1e-2, ε 1e-8 |

use crate::layers::Parameters;

mod adam;
mod sgd;

pub use adam::{Adam, AdamW};
pub use sgd::{Sgd, SgdMomentum};

/// Updates parameters from their gradients.
pub trait Optimizer<P: Parameters> {
    /// One update. `params` yields the parameter tensors in the order of
    /// [`Parameters::tensors`] of `grads`.
    fn step<'a, I: Iterator<Item = &'a mut [f32]>>(&mut self, params: I, grads: &P);

    /// The base learning rate.
    fn learning_rate(&self) -> f32;

    /// True if the next [`Optimizer::step`] with these parameters and gradients would leave
    /// every parameter and state value finite. It computes the update without writing it,
    /// so that a step can be refused before anything changes (see
    /// [`crate::Trainer::with_checked_updates`]).
    fn update_is_finite<'a, I: Iterator<Item = &'a [f32]>>(&self, params: I, grads: &P) -> bool;

    /// Number of `f32` values in the optimizer's state (what [`Optimizer::state`] yields).
    const STATE_LEN: usize;

    /// The state as flat tensors (moments, step counters as `f32` powers), for saving.
    fn state(&self) -> impl Iterator<Item = &[f32]>;

    /// The state, mutably, in the order of [`Optimizer::state`], for restoring.
    fn state_mut(&mut self) -> impl Iterator<Item = &mut [f32]>;
}
