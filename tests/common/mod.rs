//! Helpers shared by the integration tests.

use microtrain::Xoshiro128PlusPlus;
use microtrain::rng::unit_f32;

/// A standard normal draw (Box–Muller), for synthetic data and label noise.
#[allow(dead_code)] // not every test crate that shares this module draws noise
pub fn normal(rng: &mut Xoshiro128PlusPlus) -> f32 {
    let u = 1.0 - unit_f32(rng); // in (0, 1], so the logarithm is finite
    let v = unit_f32(rng);
    (-2.0 * u.ln()).sqrt() * (2.0 * core::f32::consts::PI * v).cos()
}

/// `trainer.fit` on `train` with no validation set and a callback that never stops: the
/// whole-run set-up most tests share (`tests/reliability.rs`, `tests/usability.rs`).
#[allow(dead_code)] // not every test crate that shares this module trains whole runs
pub fn fit_plain<N, O, const B: usize, K, L>(
    trainer: &mut microtrain::Trainer<N, O, B, K>,
    model: &mut N,
    loss: &L,
    train: microtrain::Dataset<'_, N::Input, L::Target>,
    config: &microtrain::FitConfig,
    rng: &mut Xoshiro128PlusPlus,
) -> Result<microtrain::FitSummary, microtrain::Error>
where
    N: microtrain::Network,
    O: microtrain::Optimizer<N::Params>,
    K: microtrain::BestWeights<N::Params>,
    L: microtrain::Loss<N::OutputActivation, N::Output>,
{
    trainer.fit(model, loss, train, None, config, rng, |_| {
        microtrain::Control::Continue
    })
}
