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

use crate::error::Error;
use crate::layers::Parameters;

mod adam;
mod sgd;

pub use adam::{Adam, AdamW};
pub use sgd::{Sgd, SgdMomentum};

/// Tensors an optimizer lists on the stack (four dense layers) rather than walking them
/// through the parameter types' chained iterators; see [`Parameters::TENSORS`].
const LISTED: usize = 8;

/// Calls `f` on the `k`-th item of each of the four iterators, in order, while it returns
/// `true`; returns `false` if it stopped early. With `listed`, which the caller sets only
/// when no iterator has more than [`LISTED`] items, the items are first gathered into
/// lists on the stack by internal iteration (which compiles to straight-line code on a
/// chain of iterators); the lockstep walk over four lists is then a few instructions per
/// tensor instead of four chains' state machines.
pub(crate) fn lockstep<A, B, C, D>(
    listed: bool,
    a: impl Iterator<Item = A>,
    b: impl Iterator<Item = B>,
    c: impl Iterator<Item = C>,
    d: impl Iterator<Item = D>,
    mut f: impl FnMut(A, B, C, D) -> bool,
) -> bool {
    fn list<T>(items: impl Iterator<Item = T>) -> heapless::Vec<T, LISTED> {
        let mut list = heapless::Vec::new();
        // Never full when the caller's promise holds; an item past the capacity would be
        // dropped, never a panic.
        items.for_each(|item| {
            let _ = list.push(item);
        });
        list
    }
    if listed {
        let (a, b, c, d) = (list(a), list(b), list(c), list(d));
        let mut all = a.into_iter().zip(b).zip(c).zip(d);
        all.all(|(((a, b), c), d)| f(a, b, c, d))
    } else {
        let mut all = a.zip(b).zip(c).zip(d);
        all.all(|(((a, b), c), d)| f(a, b, c, d))
    }
}

/// True if the tensors of `P` can go through [`lockstep`]'s lists.
pub(crate) const fn listed<P: Parameters>() -> bool {
    matches!(P::TENSORS, Some(n) if n <= LISTED)
}

/// Updates parameters from their gradients.
pub trait Optimizer<P: Parameters> {
    /// One update. `params` yields the parameter tensors in the order of
    /// [`Parameters::tensors`] of `grads`.
    fn step<'a, I: Iterator<Item = &'a mut [f32]>>(&mut self, params: I, grads: &P);

    /// The base learning rate.
    fn learning_rate(&self) -> f32;

    /// Sets the base learning rate for the following steps, keeping the optimizer's state
    /// (Keras' `optimizer.learning_rate = …`): what learning-rate schedules and
    /// `ReduceLROnPlateau` use.
    ///
    /// # Errors
    /// [`Error::LearningRate`] unless `learning_rate` is finite and positive; the rate is
    /// then unchanged.
    fn set_learning_rate(&mut self, learning_rate: f32) -> Result<(), Error>;

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

    /// True if `state` (every value of a saved [`Optimizer::state`], in its order, already
    /// known to be finite) is a state this optimizer can continue from, so that a loaded
    /// state cannot make every later step fail. Every finite state is valid unless the
    /// optimizer says otherwise (Adam: second moments `v ≥ 0`, β powers in `[0, 1]`).
    fn state_is_valid(state: impl Iterator<Item = f32>) -> bool {
        let _ = state;
        true
    }
}

/// The checked learning rate for [`Optimizer::set_learning_rate`].
pub(crate) const fn checked_learning_rate(learning_rate: f32) -> Result<f32, Error> {
    crate::error::positive(learning_rate, Error::LearningRate { learning_rate })
}
