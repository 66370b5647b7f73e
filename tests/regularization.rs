//! What the penalties do to trained weights: L2 shrinks them, more as `λ` grows; L1 sets
//! the weights of inputs that do not matter to (near) zero.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::normal;
use microtrain::rng::unit_f32 as unit;
use microtrain::*;

type Mlp = (Dense<4, 16, Tanh>, Dense<16, 1, Identity>);
const MLP_SAMPLES: usize = 64;

/// Sum of squared kernel weights of an MLP trained with `l2(λ)` on both kernels.
fn trained_kernel_norm(lambda: f32) -> f32 {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(11);
    let x: Vec<[f32; 4]> = (0..MLP_SAMPLES)
        .map(|_| core::array::from_fn(|_| 2.0 * unit(&mut rng) - 1.0))
        .collect();
    let y: Vec<[f32; 1]> = x
        .iter()
        .map(|s| [(2.0 * s[0]).sin() + s[1] * s[2] + 0.3 * normal(&mut rng)])
        .collect();
    let data = Dataset::new(&x, &y).unwrap();
    let penalty = l2(lambda).unwrap();
    let mut model: Mlp = (
        Dense::new(Tanh).with_kernel_regularizer(penalty),
        Dense::new(Identity).with_kernel_regularizer(penalty),
    );
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(12);
    model.initialize(&mut rng);
    let mut trainer =
        Trainer::<Mlp, Adam<<Mlp as Network>::Params>, 16>::new(Adam::new(0.01).unwrap());
    trainer
        .fit(
            &mut model,
            &MeanSquaredError,
            data,
            None,
            &FitConfig::epochs(200),
            &mut rng,
            |_: &EpochReport| Control::Continue,
        )
        .unwrap();
    [
        model.0.params.weights.as_flattened(),
        model.1.params.weights.as_flattened(),
    ]
    .iter()
    .flat_map(|w| w.iter())
    .map(|w| w * w)
    .sum()
}

#[test]
fn l2_shrinks_the_weight_norm_as_lambda_grows() {
    let lambdas = [0.0f32, 1e-3, 1e-2, 1e-1];
    let norms: Vec<f32> = lambdas.iter().map(|&l| trained_kernel_norm(l)).collect();
    for (pair, lambda) in norms.windows(2).zip(lambdas.windows(2)) {
        assert!(
            pair[1] < pair[0],
            "Σw² did not shrink from λ = {} to λ = {}: {} -> {} (all: λ {lambdas:?}, Σw² {norms:?})",
            lambda[0],
            lambda[1],
            pair[0],
            pair[1]
        );
    }
    // λ = 0.1 costs 0.1·Σw² against a data loss of order 0.1-1: at the optimum that is a
    // strong pull, so at least half of the unregularized norm must be gone.
    assert!(
        norms[3] < 0.5 * norms[0],
        "l2(0.1) left Σw² at {} of {} without penalty (λ {lambdas:?}, Σw² {norms:?})",
        norms[3],
        norms[0]
    );
}

const INPUTS: usize = 12;
/// Only the first three inputs enter the target.
const TRUE_WEIGHTS: [f32; INPUTS] = [4.0, -3.5, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
const RELEVANT: usize = 3;
const SAMPLES: usize = 128;
/// Label noise. With inputs uniform in [-1, 1] (variance 1/3), an unregularized fit
/// estimates each weight with a standard error of NOISE / sqrt(SAMPLES / 3) ≈ 0.31, so
/// the irrelevant weights come out at ~0.24 in magnitude on average (0.8 standard errors).
const NOISE: f32 = 2.0;
/// One standard error of the estimates above.
const STANDARD_ERROR: f32 = 0.31;
/// Plain full-batch SGD: the L1 term moves a weight near zero by LEARNING_RATE·λ per step
/// either way, so with L1 the irrelevant weights end within about ±0.008 of zero.
const LEARNING_RATE: f32 = 0.01;
/// At w = 0 an irrelevant weight's data gradient, 2·mean(residual·x), has a standard
/// deviation of 2·NOISE·sqrt(1/3)/sqrt(SAMPLES) ≈ 0.2: λ = 0.8 (4 of those) pins all nine
/// at 0, and shrinks the true weights by only about λ/(2·1/3) = 1.2.
const LAMBDA: f32 = 0.8;
/// Full-batch steps: the slowest direction contracts by (1 - 2·lr/3)^t ≈ e^-20.
const STEPS: usize = 3000;

/// Kernel of a linear regression fitted with the given kernel regularizer.
fn fitted_linear_weights(penalty: Regularizer) -> [f32; INPUTS] {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(21);
    let x: Vec<[f32; INPUTS]> = (0..SAMPLES)
        .map(|_| core::array::from_fn(|_| 2.0 * unit(&mut rng) - 1.0))
        .collect();
    let y: Vec<[f32; 1]> = x
        .iter()
        .map(|s| {
            let clean: f32 = s.iter().zip(&TRUE_WEIGHTS).map(|(a, b)| a * b).sum();
            [clean + NOISE * normal(&mut rng)]
        })
        .collect();
    let data = Dataset::new(&x, &y).unwrap();
    type Linear = (Dense<INPUTS, 1, Identity>,);
    let mut model: Linear = (Dense::new(Identity).with_kernel_regularizer(penalty),);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(22);
    model.initialize(&mut rng);
    let mut trainer = Trainer::<Linear, Sgd, SAMPLES>::new(Sgd::new(LEARNING_RATE).unwrap());
    trainer
        .fit(
            &mut model,
            &MeanSquaredError,
            data,
            None,
            &FitConfig::epochs(STEPS).with_shuffle(false),
            &mut rng,
            |_: &EpochReport| Control::Continue,
        )
        .unwrap();
    model.0.params.weights[0]
}

#[test]
fn l1_drives_the_weights_of_irrelevant_inputs_to_zero() {
    /// Three times the L1 oscillation amplitude LEARNING_RATE·LAMBDA.
    const NEAR_ZERO: f32 = 3.0 * LEARNING_RATE * LAMBDA;
    let sparse = fitted_linear_weights(l1(LAMBDA).unwrap());
    for (i, &w) in sparse.iter().enumerate().skip(RELEVANT) {
        assert!(
            w.abs() <= NEAR_ZERO,
            "with l1({LAMBDA}) irrelevant input {i} kept weight {w}, expected |w| <= {NEAR_ZERO} \
             (all weights {sparse:?})"
        );
    }
    // The true weights (|w| ≥ 3) lose about 1.2 to the penalty, give or take a few
    // standard errors: they stay well above 1.
    for (i, (&w, &truth)) in sparse.iter().zip(&TRUE_WEIGHTS).enumerate().take(RELEVANT) {
        assert!(
            w * truth.signum() > 1.0,
            "with l1({LAMBDA}) relevant input {i} (true weight {truth}) got {w} (all {sparse:?})"
        );
    }
}

#[test]
fn without_l1_irrelevant_weights_stay_clearly_non_zero() {
    // Expected mean magnitude ~0.24 with a spread of ~0.06 over nine weights (see NOISE);
    // 0.05 is three spreads below it and twice the L1 fit's bound, so the two tests together
    // show that the penalty made the difference.
    const CLEARLY_NON_ZERO: f32 = 0.05;
    let dense = fitted_linear_weights(Regularizer::NONE);
    let irrelevant = &dense[RELEVANT..];
    let mean_abs = irrelevant.iter().map(|w| w.abs()).sum::<f32>() / irrelevant.len() as f32;
    assert!(
        mean_abs > CLEARLY_NON_ZERO,
        "without a penalty the irrelevant weights {irrelevant:?} have mean |w| {mean_abs}, \
         expected > {CLEARLY_NON_ZERO}"
    );
    // The fit itself is sound: the true weights are recovered within 3.5 standard errors.
    for (i, (&w, &truth)) in dense.iter().zip(&TRUE_WEIGHTS).enumerate().take(RELEVANT) {
        assert!(
            (w - truth).abs() < 3.5 * STANDARD_ERROR,
            "without a penalty input {i} got {w}, true weight {truth} (all {dense:?})"
        );
    }
}
