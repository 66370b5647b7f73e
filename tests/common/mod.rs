//! Helpers shared by the integration tests.

use microtrain::Xoshiro128PlusPlus;
use microtrain::rng::unit_f32;

/// A standard normal draw (Box–Muller), for synthetic data and label noise.
pub fn normal(rng: &mut Xoshiro128PlusPlus) -> f32 {
    let u = 1.0 - unit_f32(rng); // in (0, 1], so the logarithm is finite
    let v = unit_f32(rng);
    (-2.0 * u.ln()).sqrt() * (2.0 * core::f32::consts::PI * v).cos()
}
