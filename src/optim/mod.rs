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
}
