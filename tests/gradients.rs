//! Central finite-difference checks of the analytic gradients that
//! `Trainer::compute_gradients` produces: every activation, every loss, every penalty,
//! dropout with a replayed mask, and whole models with full and partial batches.
//!
//! The function differentiated is `StepReport::loss` (the batch's mean loss plus the
//! regularization term), evaluated with one parameter moved by `±H`; its slope is compared
//! with the matching entry of `Trainer::gradients`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use microtrain::*;

/// Finite-difference step. Losses here are `f32` values of size ~1 that round at ~1e-7
/// per operation, so the quotient over `2·H` carries ~1e-5 of rounding noise; the
/// truncation error `H²·f'''/6` is ~2e-5 for these small networks (|f'''| ≲ 10).
const H: f32 = 1e-2;
/// Absolute tolerance: the sum of the two error sources above, with a factor 3 to spare.
const ATOL: f32 = 1e-4;
/// Relative tolerance: for gradients of order 1 the truncation error grows with the
/// curvature around them; 0.1% of |g| covers that and still catches any wrong factor.
const RTOL: f32 = 1e-3;
/// Pre-activations of ReLU-like units stay at least this far from 0, so that no `±H` move
/// of one parameter crosses a kink (asserted against the largest move in each test).
const KINK_MARGIN: f32 = 0.05;

fn rng(seed: u64) -> Xoshiro128PlusPlus {
    Xoshiro128PlusPlus::seed_from_u64(seed)
}

fn uniform(rng: &mut Xoshiro128PlusPlus, lo: f32, hi: f32) -> f32 {
    let u = (rng.next_u32() >> 8) as f32 / 16_777_216.0;
    lo + (hi - lo) * u
}

fn row<const N: usize>(rng: &mut Xoshiro128PlusPlus, lo: f32, hi: f32) -> [f32; N] {
    core::array::from_fn(|_| uniform(rng, lo, hi))
}

/// Sets every parameter to `±U(0.1, 0.8)`: no weight within `H` of 0 (where the L1 term
/// has its kink) and non-zero biases, so bias gradients and bias penalties are exercised too.
fn spread_parameters<N: Network>(model: &mut N, seed: u64) {
    let mut r = rng(seed);
    for tensor in model.parameters_mut() {
        for w in tensor {
            let magnitude = uniform(&mut r, 0.1, 0.8);
            *w = if r.next_u32() & 1 == 0 {
                magnitude
            } else {
                -magnitude
            };
        }
    }
}

fn flat(tensors: impl Iterator<Item = impl AsRef<[f32]>>) -> Vec<f32> {
    tensors.flat_map(|t| t.as_ref().to_vec()).collect()
}

/// The pre-activations of `layer` for `input` (the same weights with an identity output).
fn pre_activation<const I: usize, const O: usize, A: Activation>(
    layer: &Dense<I, O, A>,
    input: &[f32; I],
) -> [f32; O] {
    let mut linear = Dense::<I, O, Identity>::new(Identity);
    linear.params = layer.params;
    linear.infer(input)
}

fn max_abs(values: &[f32]) -> f32 {
    values.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

fn min_abs(values: &[f32]) -> f32 {
    values.iter().fold(f32::INFINITY, |m, v| m.min(v.abs()))
}

/// Compares `compute_gradients` with central differences of `StepReport::loss` for every
/// parameter. `dropout_seed` seeds a fresh generator for each evaluation, so every forward
/// pass draws the same dropout mask. Returns the report at the unperturbed parameters.
fn check_gradients<N, L, const B: usize>(
    case: &str,
    model: &N,
    loss: &L,
    data: Dataset<'_, N::Input, L::Target>,
    indices: &[usize],
    dropout_seed: u64,
) -> StepReport
where
    N: Network + Copy,
    L: Loss<N::OutputActivation, N::Output>,
{
    let mut trainer = Trainer::<N, Sgd, B>::new(Sgd::new(0.1).unwrap());
    let report = trainer
        .compute_gradients(model, loss, data, indices, &mut rng(dropout_seed))
        .unwrap_or_else(|e| panic!("{case}: compute_gradients failed: {e}"));
    assert!(report.loss.is_finite(), "{case}: loss {}", report.loss);
    let analytic = flat(trainer.gradients().tensors());
    let base = flat(model.parameters());
    assert_eq!(analytic.len(), N::PARAMETERS, "{case}: gradient count");
    assert_eq!(base.len(), N::PARAMETERS, "{case}: parameter count");

    // Every tensor must carry gradients large enough that a wrong one would be noticed.
    for (t, g) in trainer.gradients().tensors().enumerate() {
        assert!(
            max_abs(g) > 10.0 * ATOL,
            "{case}: tensor {t} has only negligible gradients {g:?}: the check would be vacuous"
        );
    }

    let mut probe = Trainer::<N, Sgd, B>::new(Sgd::new(0.1).unwrap());
    let mut loss_with = |k: usize, value: f32| {
        let mut moved = *model;
        let slot = moved
            .parameters_mut()
            .flat_map(|t| t.iter_mut())
            .nth(k)
            .unwrap();
        *slot = value;
        probe
            .compute_gradients(&moved, loss, data, indices, &mut rng(dropout_seed))
            .unwrap_or_else(|e| panic!("{case}: parameter {k} = {value}: {e}"))
            .loss
    };
    for (k, (&w, &g)) in base.iter().zip(&analytic).enumerate() {
        let (up, down) = (w + H, w - H);
        let fd = (loss_with(k, up) - loss_with(k, down)) / (up - down);
        let tolerance = ATOL + RTOL * fd.abs().max(g.abs());
        assert!(
            (fd - g).abs() <= tolerance,
            "{case}: parameter {k} (value {w}): finite difference {fd}, analytic {g}, \
             |difference| {} > tolerance {tolerance}",
            (fd - g).abs()
        );
    }
    report
}

/// Draws `count` samples in `[-1, 1]` for a two-layer model whose pre-activations all stay
/// `KINK_MARGIN` away from 0, so ReLU-like units never switch under a `±H` move.
fn samples_away_from_kinks<const I: usize, const M: usize, const O: usize, A, C>(
    model: &(Dense<I, M, A>, Dense<M, O, C>),
    count: usize,
    seed: u64,
) -> Vec<[f32; I]>
where
    A: Elementwise,
    C: Activation,
{
    // Largest change of any pre-activation when one parameter moves by H: a first-layer
    // weight moves z1 by H·|x| (|x| ≤ 1) and z2 by |w2|·H·|x| (slopes ≤ 1); a second-layer
    // weight moves z2 by H·|h1|, |h1| ≤ Σ|w1| + |b1|.
    let w1 = model.0.params;
    let hidden_bound = w1
        .weights
        .iter()
        .zip(&w1.bias)
        .map(|(w, b)| w.iter().map(|v| v.abs()).sum::<f32>() + b.abs())
        .fold(0.0f32, f32::max);
    let w2_max = max_abs(model.1.params.weights.as_flattened());
    let reach = H * 1.0f32.max(hidden_bound).max(w2_max);
    assert!(
        reach < KINK_MARGIN,
        "a ±{H} move reaches {reach}, past the kink margin {KINK_MARGIN}"
    );
    let mut r = rng(seed);
    let mut samples = Vec::new();
    while samples.len() < count {
        let x: [f32; I] = row(&mut r, -1.0, 1.0);
        let z1 = pre_activation(&model.0, &x);
        let z2 = pre_activation(&model.1, &model.0.infer(&x));
        if min_abs(&z1) > KINK_MARGIN && min_abs(&z2) > KINK_MARGIN {
            samples.push(x);
        }
    }
    samples
}

const BATCH: usize = 6;
const ALL: [usize; BATCH] = [0, 1, 2, 3, 4, 5];

fn two_layer_mse<A: Elementwise + Copy>(activation: A, case: &str, seed: u64) {
    // The activation serves both as hidden (derivative_of_output) and as output (the
    // loss's derivative) layer.
    let mut model: (Dense<3, 5, A>, Dense<5, 2, A>) =
        (Dense::new(activation), Dense::new(activation));
    spread_parameters(&mut model, seed);
    let x = samples_away_from_kinks(&model, BATCH, seed + 1);
    let mut r = rng(seed + 2);
    let y: Vec<[f32; 2]> = (0..BATCH).map(|_| row(&mut r, 0.1, 0.9)).collect();
    let data = Dataset::new(&x, &y).unwrap();
    check_gradients::<_, _, BATCH>(case, &model, &MeanSquaredError, data, &ALL, 0);
}

#[test]
fn identity_gradients_match_finite_differences() {
    two_layer_mse(Identity, "identity", 10);
}

#[test]
fn relu_gradients_match_finite_differences() {
    two_layer_mse(Relu, "relu", 20);
}

#[test]
fn leaky_relu_gradients_match_finite_differences() {
    two_layer_mse(LeakyRelu::new(0.2).unwrap(), "leaky relu 0.2", 30);
}

#[test]
fn sigmoid_gradients_match_finite_differences() {
    two_layer_mse(Sigmoid, "sigmoid", 40);
}

#[test]
fn tanh_gradients_match_finite_differences() {
    two_layer_mse(Tanh, "tanh", 50);
}

type SoftmaxNet = (Dense<3, 4, Tanh>, Dense<4, 3, Softmax>);

fn softmax_net(seed: u64) -> (SoftmaxNet, Vec<[f32; 3]>) {
    let mut model: SoftmaxNet = (Dense::new(Tanh), Dense::new(Softmax));
    spread_parameters(&mut model, seed);
    let mut r = rng(seed + 1);
    let x = (0..BATCH).map(|_| row(&mut r, -1.0, 1.0)).collect();
    (model, x)
}

#[test]
fn softmax_with_mean_squared_error_matches_finite_differences() {
    let (model, x) = softmax_net(60);
    let mut r = rng(61);
    let y: Vec<[f32; 3]> = (0..BATCH).map(|_| row(&mut r, 0.0, 1.0)).collect();
    let data = Dataset::new(&x, &y).unwrap();
    check_gradients::<_, _, BATCH>("softmax + mse", &model, &MeanSquaredError, data, &ALL, 0);
}

#[test]
fn categorical_cross_entropy_matches_finite_differences() {
    let (model, x) = softmax_net(70);
    let one_hot: Vec<[f32; 3]> = (0..BATCH)
        .map(|k| core::array::from_fn(|c| if c == k % 3 { 1.0 } else { 0.0 }))
        .collect();
    let data = Dataset::new(&x, &one_hot).unwrap();
    check_gradients::<_, _, BATCH>(
        "cce one-hot",
        &model,
        &CategoricalCrossEntropy,
        data,
        &ALL,
        0,
    );

    // Targets that are not one-hot, and do not even sum to 1 (label smoothing, weights):
    // the fused gradient is p·Σt - t.
    let mut r = rng(71);
    let soft: Vec<[f32; 3]> = (0..BATCH).map(|_| row(&mut r, 0.0, 0.7)).collect();
    let data = Dataset::new(&x, &soft).unwrap();
    check_gradients::<_, _, BATCH>("cce soft", &model, &CategoricalCrossEntropy, data, &ALL, 0);
}

#[test]
fn sparse_categorical_cross_entropy_matches_finite_differences() {
    let (model, x) = softmax_net(80);
    let labels: Vec<usize> = (0..BATCH).map(|k| (k * 2) % 3).collect();
    let data = Dataset::new(&x, &labels).unwrap();
    let loss = SparseCategoricalCrossEntropy::<usize>::new();
    check_gradients::<_, _, BATCH>("scce usize", &model, &loss, data, &ALL, 0);

    let small: Vec<u8> = labels.iter().map(|&l| l as u8).collect();
    let data = Dataset::new(&x, &small).unwrap();
    let loss = SparseCategoricalCrossEntropy::<u8>::new();
    check_gradients::<_, _, BATCH>("scce u8", &model, &loss, data, &ALL, 0);
}

type BinaryNet = (Dense<3, 4, Tanh>, Dense<4, 2, Sigmoid>);

#[test]
fn binary_cross_entropy_matches_finite_differences() {
    let mut model: BinaryNet = (Dense::new(Tanh), Dense::new(Sigmoid));
    spread_parameters(&mut model, 90);
    let mut r = rng(91);
    let x: Vec<[f32; 3]> = (0..BATCH).map(|_| row(&mut r, -1.0, 1.0)).collect();
    // Hard and soft targets; logits stay within |z| < 4, far from the ε clamp (|z| ≈ 16).
    let y: Vec<[f32; 2]> = (0..BATCH)
        .map(|k| [(k % 2) as f32, uniform(&mut r, 0.0, 1.0)])
        .collect();
    let data = Dataset::new(&x, &y).unwrap();
    check_gradients::<_, _, BATCH>("bce", &model, &BinaryCrossEntropy, data, &ALL, 0);
}

#[test]
fn binary_cross_entropy_from_logits_matches_finite_differences() {
    let mut model: (Dense<3, 4, Tanh>, Dense<4, 2, Identity>) =
        (Dense::new(Tanh), Dense::new(Identity));
    spread_parameters(&mut model, 100);
    let mut r = rng(101);
    let x: Vec<[f32; 3]> = (0..BATCH).map(|_| row(&mut r, -1.0, 1.0)).collect();
    let y: Vec<[f32; 2]> = (0..BATCH)
        .map(|k| [(k % 2) as f32, uniform(&mut r, 0.0, 1.0)])
        .collect();
    let data = Dataset::new(&x, &y).unwrap();
    check_gradients::<_, _, BATCH>(
        "bce from logits",
        &model,
        &BinaryCrossEntropyFromLogits,
        data,
        &ALL,
        0,
    );
}

/// `max(z, 0) - z·t + ln(1 + e^-|z|)` in f64, the reference for the logits loss.
fn logit_bce_f64(z: f64, t: f64) -> f64 {
    z.max(0.0) - z * t + (-z.abs()).exp().ln_1p()
}

fn sigmoid_f64(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[test]
fn binary_cross_entropy_from_logits_stays_finite_and_exact_at_large_logits() {
    // Relative accuracy of libm's expf/log1pf plus one rounding per operation.
    const VALUE_RTOL: f64 = 1e-6;
    let loss = BinaryCrossEntropyFromLogits;
    for z in [-100.0f32, -30.0, -5.0, -0.5, 0.0, 0.5, 5.0, 30.0, 100.0] {
        for t in [0.0f32, 0.25, 1.0] {
            let value = Loss::<Identity, [f32; 1]>::value(&loss, &[z], &[t]);
            let expected = logit_bce_f64(f64::from(z), f64::from(t));
            assert!(
                value.is_finite()
                    && (f64::from(value) - expected).abs() <= VALUE_RTOL * expected.abs() + 1e-30,
                "logit {z}, target {t}: loss {value}, expected {expected}"
            );
            let mut delta = [z];
            loss.delta(&Identity, &mut delta, &[t], 1.0);
            let expected = sigmoid_f64(f64::from(z)) - f64::from(t);
            assert!(
                delta[0].is_finite() && (f64::from(delta[0]) - expected).abs() <= 1e-6,
                "logit {z}, target {t}: gradient {}, expected {expected}",
                delta[0]
            );
        }
    }

    // Through a model, one sample at a time, logits ±100 for both targets. The loss is
    // linear in z out there (its curvature is ~e^-100), so a unit step of the bias gives an
    // exact difference; its only error is the rounding of losses near 100 (ulp 7.6e-6).
    const LINEAR_FD_TOL: f32 = 1e-5;
    let mut model: (Dense<2, 1, Identity>,) = (Dense::new(Identity),);
    model.0.params.weights = [[40.0, 20.0]];
    for (x, t) in [
        ([1.0f32, 3.0], 1.0f32),
        ([1.0, 3.0], 0.0),
        ([-1.0, -3.0], 1.0),
        ([-1.0, -3.0], 0.0),
    ] {
        let z = 40.0 * x[0] + 20.0 * x[1];
        let (samples, targets) = ([x], [[t]]);
        let data = Dataset::new(&samples, &targets).unwrap();
        let mut trainer = Trainer::<_, Sgd, 1>::new(Sgd::new(0.1).unwrap());
        let report = trainer
            .compute_gradients(&model, &loss, data, &[0], &mut rng(0))
            .unwrap();
        let g = trainer.gradients().0;
        let expected_loss = logit_bce_f64(f64::from(z), f64::from(t));
        assert!(
            (f64::from(report.loss) - expected_loss).abs() <= VALUE_RTOL * expected_loss + 1e-30,
            "logit {z}, target {t}: loss {}, expected {expected_loss}",
            report.loss
        );
        let expected_bias = sigmoid_f64(f64::from(z)) - f64::from(t);
        for (name, got, expected) in [
            ("bias", g.bias[0], expected_bias),
            ("weight 0", g.weights[0][0], expected_bias * f64::from(x[0])),
            ("weight 1", g.weights[0][1], expected_bias * f64::from(x[1])),
        ] {
            assert!(
                got.is_finite() && (f64::from(got) - expected).abs() <= 1e-6,
                "logit {z}, target {t}: {name} gradient {got}, expected {expected}"
            );
        }
        let mut moved = model;
        moved.0.params.bias = [1.0];
        let up = trainer
            .compute_gradients(&moved, &loss, data, &[0], &mut rng(0))
            .unwrap()
            .loss;
        moved.0.params.bias = [-1.0];
        let down = trainer
            .compute_gradients(&moved, &loss, data, &[0], &mut rng(0))
            .unwrap()
            .loss;
        let fd = (up - down) / 2.0;
        assert!(
            (fd - g.bias[0]).abs() <= LINEAR_FD_TOL,
            "logit {z}, target {t}: finite difference {fd} (losses {up}, {down}), analytic {}",
            g.bias[0]
        );
    }
}

type PenaltyNet = (Dense<3, 4, Tanh>, Dense<4, 2, Sigmoid>);

/// Checks the regularized gradients of `model`, and that `StepReport::loss` is the
/// unregularized loss plus `Network::penalty()` plus the independently computed penalty.
fn check_penalty(case: &str, model: PenaltyNet, expected_penalty: f64) {
    let mut r = rng(200);
    let x: Vec<[f32; 3]> = (0..BATCH).map(|_| row(&mut r, -1.0, 1.0)).collect();
    let y: Vec<[f32; 2]> = (0..BATCH).map(|k| [(k % 2) as f32, 0.3]).collect();
    let data = Dataset::new(&x, &y).unwrap();
    let report = check_gradients::<_, _, BATCH>(case, &model, &BinaryCrossEntropy, data, &ALL, 0);

    // Rounding of a sum of ~20 terms of size ~0.1–1 in f32.
    const PENALTY_RTOL: f64 = 1e-5;
    let penalty = model.penalty();
    assert!(
        (f64::from(penalty) - expected_penalty).abs() <= PENALTY_RTOL * expected_penalty,
        "{case}: Network::penalty() {penalty}, expected {expected_penalty}"
    );
    let plain = (
        model
            .0
            .with_kernel_regularizer(Regularizer::NONE)
            .with_bias_regularizer(Regularizer::NONE),
        model
            .1
            .with_kernel_regularizer(Regularizer::NONE)
            .with_bias_regularizer(Regularizer::NONE),
    );
    let mut trainer = Trainer::<PenaltyNet, Sgd, BATCH>::new(Sgd::new(0.1).unwrap());
    let unregularized = trainer
        .compute_gradients(&plain, &BinaryCrossEntropy, data, &ALL, &mut rng(0))
        .unwrap();
    let expected_loss = f64::from(unregularized.loss) + expected_penalty;
    assert!(
        (f64::from(report.loss) - expected_loss).abs() <= PENALTY_RTOL * expected_loss,
        "{case}: StepReport.loss {}, expected data loss {} + penalty {expected_penalty}",
        report.loss,
        unregularized.loss
    );
}

fn l1_sum(values: &[f32]) -> f64 {
    values.iter().map(|&v| f64::from(v).abs()).sum()
}

fn l2_sum(values: &[f32]) -> f64 {
    values.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
}

fn penalty_net(seed: u64) -> PenaltyNet {
    let mut model: PenaltyNet = (Dense::new(Tanh), Dense::new(Sigmoid));
    spread_parameters(&mut model, seed);
    model
}

#[test]
fn l1_kernel_penalty_gradient_matches_finite_differences() {
    let base = penalty_net(210);
    let model = (base.0.with_kernel_regularizer(l1(0.05).unwrap()), base.1);
    let expected = f64::from(0.05f32) * l1_sum(base.0.params.weights.as_flattened());
    check_penalty("l1 kernel", model, expected);
}

#[test]
fn l2_kernel_penalty_gradient_matches_finite_differences() {
    let base = penalty_net(220);
    let model = (base.0, base.1.with_kernel_regularizer(l2(0.1).unwrap()));
    let expected = f64::from(0.1f32) * l2_sum(base.1.params.weights.as_flattened());
    check_penalty("l2 kernel", model, expected);
}

#[test]
fn l1_l2_kernel_penalty_gradient_matches_finite_differences() {
    let base = penalty_net(230);
    let reg = l1_l2(0.03, 0.07).unwrap();
    let model = (
        base.0.with_kernel_regularizer(reg),
        base.1.with_kernel_regularizer(reg),
    );
    let weights = [
        base.0.params.weights.as_flattened(),
        base.1.params.weights.as_flattened(),
    ];
    let expected: f64 = weights
        .iter()
        .map(|w| f64::from(0.03f32) * l1_sum(w) + f64::from(0.07f32) * l2_sum(w))
        .sum();
    check_penalty("l1_l2 kernel", model, expected);
}

#[test]
fn bias_penalty_gradient_matches_finite_differences() {
    let base = penalty_net(240);
    let model = (
        base.0.with_bias_regularizer(l1(0.04).unwrap()),
        base.1.with_bias_regularizer(l1_l2(0.02, 0.09).unwrap()),
    );
    let expected = f64::from(0.04f32) * l1_sum(&base.0.params.bias)
        + f64::from(0.02f32) * l1_sum(&base.1.params.bias)
        + f64::from(0.09f32) * l2_sum(&base.1.params.bias);
    check_penalty("bias", model, expected);
}

type DropoutNet = (Dense<3, 8, Tanh>, Dropout<8>, Dense<8, 2, Identity>);

#[test]
fn dropout_gradients_match_finite_differences_with_the_mask_fixed() {
    let mut model: DropoutNet = (
        Dense::new(Tanh),
        Dropout::new(0.4).unwrap(),
        Dense::new(Identity),
    );
    spread_parameters(&mut model, 300);
    let mut r = rng(301);
    let x: Vec<[f32; 3]> = (0..BATCH).map(|_| row(&mut r, -1.0, 1.0)).collect();
    let y: Vec<[f32; 2]> = (0..BATCH).map(|_| row(&mut r, -1.0, 1.0)).collect();
    let data = Dataset::new(&x, &y).unwrap();
    let masked =
        check_gradients::<_, _, BATCH>("dropout", &model, &MeanSquaredError, data, &ALL, 302);

    // The mask must do something, or the check above says nothing about it.
    let no_dropout = (model.0, Dropout::new(0.0).unwrap(), model.2);
    let mut trainer = Trainer::<DropoutNet, Sgd, BATCH>::new(Sgd::new(0.1).unwrap());
    let plain = trainer
        .compute_gradients(&no_dropout, &MeanSquaredError, data, &ALL, &mut rng(302))
        .unwrap();
    assert_ne!(
        masked.loss, plain.loss,
        "dropout 0.4 left the loss unchanged: no unit was dropped"
    );
}

type WholeNet = (Dense<4, 6, Relu>, Dense<6, 5, Tanh>, Dense<5, 3, Softmax>);
const WHOLE_BATCH: usize = 8;

fn whole_net() -> (WholeNet, Vec<[f32; 4]>, Vec<usize>) {
    let mut model: WholeNet = (
        Dense::new(Relu).with_kernel_regularizer(l2(0.01).unwrap()),
        Dense::new(Tanh),
        Dense::new(Softmax).with_bias_regularizer(l1(0.01).unwrap()),
    );
    spread_parameters(&mut model, 400);
    // Only the first layer has a kink; a ±H move of one of its parameters shifts its
    // pre-activations by at most H·max(1, |x|) = H, later parameters not at all.
    const { assert!(H < KINK_MARGIN) };
    let mut r = rng(401);
    let mut x = Vec::new();
    while x.len() < 12 {
        let sample: [f32; 4] = row(&mut r, -1.0, 1.0);
        if min_abs(&pre_activation(&model.0, &sample)) > KINK_MARGIN {
            x.push(sample);
        }
    }
    let labels = (0..x.len()).map(|k| k % 3).collect();
    (model, x, labels)
}

#[test]
fn three_layer_model_gradients_match_finite_differences_on_a_full_batch() {
    let (model, x, labels) = whole_net();
    let data = Dataset::new(&x, &labels).unwrap();
    let loss = SparseCategoricalCrossEntropy::<usize>::new();
    let indices = [11, 0, 7, 3, 9, 1, 4, 6];
    check_gradients::<_, _, WHOLE_BATCH>("3 layers, full batch", &model, &loss, data, &indices, 0);
}

#[test]
fn three_layer_model_gradients_match_finite_differences_on_a_partial_batch() {
    let (model, x, labels) = whole_net();
    let data = Dataset::new(&x, &labels).unwrap();
    let loss = SparseCategoricalCrossEntropy::<usize>::new();
    let indices = [2, 10, 5, 8, 0];
    let report = check_gradients::<_, _, WHOLE_BATCH>(
        "3 layers, 5 of 8 rows",
        &model,
        &loss,
        data,
        &indices,
        0,
    );

    // The differences above cannot see a wrong batch mean (value and gradient would share
    // it): the reported loss must be the mean over the 5 rows, as `evaluate` computes it
    // one sample at a time. Different summation order: a few f32 roundings of ~1.
    const MEAN_RTOL: f32 = 1e-5;
    let batch_x: Vec<[f32; 4]> = indices.iter().map(|&i| x[i]).collect();
    let batch_y: Vec<usize> = indices.iter().map(|&i| labels[i]).collect();
    let expected = evaluate(&model, &loss, Dataset::new(&batch_x, &batch_y).unwrap())
        .unwrap()
        .loss;
    assert_eq!(report.rows, indices.len());
    assert!(
        (report.loss - expected).abs() <= MEAN_RTOL * expected.abs(),
        "5 of 8 rows: StepReport.loss {}, expected the 5-sample mean plus penalty {expected}",
        report.loss
    );
}

#[test]
fn model_with_dropout_and_penalties_matches_finite_differences_on_a_partial_batch() {
    let mut model: (Dense<4, 8, LeakyRelu>, Dropout<8>, Dense<8, 3, Softmax>) = (
        Dense::new(LeakyRelu::new(0.1).unwrap())
            .with_kernel_regularizer(l1_l2(0.01, 0.02).unwrap()),
        Dropout::new(0.25).unwrap(),
        Dense::new(Softmax).with_bias_regularizer(l2(0.05).unwrap()),
    );
    spread_parameters(&mut model, 500);
    let mut r = rng(501);
    let mut x = Vec::new();
    while x.len() < 10 {
        let sample: [f32; 4] = row(&mut r, -1.0, 1.0);
        if min_abs(&pre_activation(&model.0, &sample)) > KINK_MARGIN {
            x.push(sample);
        }
    }
    let targets: Vec<[f32; 3]> = (0..x.len())
        .map(|k| core::array::from_fn(|c| if c == k % 3 { 0.9 } else { 0.05 }))
        .collect();
    let data = Dataset::new(&x, &targets).unwrap();
    check_gradients::<_, _, WHOLE_BATCH>(
        "dropout + penalties, 6 of 8 rows",
        &model,
        &CategoricalCrossEntropy,
        data,
        &[9, 1, 4, 7, 2, 5],
        502,
    );
}

#[test]
fn partial_batch_gradients_ignore_rows_left_from_a_previous_batch() {
    let (model, x, labels) = whole_net();
    let data = Dataset::new(&x, &labels).unwrap();
    let loss = SparseCategoricalCrossEntropy::<usize>::new();
    let partial = [2, 10, 5];

    let mut fresh = Trainer::<WholeNet, Sgd, WHOLE_BATCH>::new(Sgd::new(0.1).unwrap());
    fresh
        .compute_gradients(&model, &loss, data, &partial, &mut rng(0))
        .unwrap();

    // Fill every row of the workspace with another batch first.
    let mut used = Trainer::<WholeNet, Sgd, WHOLE_BATCH>::new(Sgd::new(0.1).unwrap());
    used.compute_gradients(&model, &loss, data, &[0, 1, 3, 4, 6, 7, 8, 9], &mut rng(0))
        .unwrap();
    used.compute_gradients(&model, &loss, data, &partial, &mut rng(0))
        .unwrap();

    // A trainer whose batch is exactly the partial batch.
    let mut exact = Trainer::<WholeNet, Sgd, 3>::new(Sgd::new(0.1).unwrap());
    exact
        .compute_gradients(&model, &loss, data, &partial, &mut rng(0))
        .unwrap();

    let reference = flat(fresh.gradients().tensors());
    for (name, other) in [
        ("used trainer", flat(used.gradients().tensors())),
        ("B = 3 trainer", flat(exact.gradients().tensors())),
    ] {
        for (k, (a, b)) in reference.iter().zip(&other).enumerate() {
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "gradient {k}: fresh B = 8 trainer {a}, {name} {b}"
            );
        }
    }
}

/// `DenseDropout` against finite differences: ReLU (backward reads the mask from the
/// outputs), leaky ReLU and identity (backward replays it).
fn dense_dropout_case<A: SignDerivative + Copy>(activation: A, case: &str, seed: u64) {
    let dense = (
        Dense::<3, 5, A>::new(activation),
        Dense::<5, 2, Identity>::new(Identity),
    );
    let mut model: (DenseDropout<3, 5, A>, _) = (
        DenseDropout::new(dense.0, Dropout::new(0.4).unwrap()),
        dense.1,
    );
    spread_parameters(&mut model, seed);
    let x = samples_away_from_kinks(&(model.0.dense, model.1), BATCH, seed + 1);
    let mut r = rng(seed + 2);
    let y: Vec<[f32; 2]> = (0..BATCH).map(|_| row(&mut r, -1.0, 1.0)).collect();
    let data = Dataset::new(&x, &y).unwrap();
    let masked = check_gradients::<_, _, BATCH>(case, &model, &MeanSquaredError, data, &ALL, 7);

    // The mask must do something, or the check above says nothing about it.
    let mut plain = model;
    plain.0.dropout = Dropout::new(0.0).unwrap();
    let unmasked = check_gradients::<_, _, BATCH>(case, &plain, &MeanSquaredError, data, &ALL, 7);
    assert_ne!(
        masked.loss, unmasked.loss,
        "{case}: dropout 0.4 left the loss unchanged: no unit was dropped"
    );
}

#[test]
fn dense_dropout_gradients_match_finite_differences_with_the_mask_fixed() {
    dense_dropout_case(Relu, "dense+dropout, relu", 310);
    dense_dropout_case(
        LeakyRelu::new(0.2).unwrap(),
        "dense+dropout, leaky relu",
        320,
    );
    dense_dropout_case(Identity, "dense+dropout, identity", 330);
}

type LogitNet = (Dense<3, 4, Tanh>, Dense<4, 3, Identity>);

fn logit_net(seed: u64) -> (LogitNet, Vec<[f32; 3]>) {
    let mut model: LogitNet = (Dense::new(Tanh), Dense::new(Identity));
    spread_parameters(&mut model, seed);
    let mut r = rng(seed + 1);
    let x = (0..BATCH).map(|_| row(&mut r, -1.0, 1.0)).collect();
    (model, x)
}

fn one_hot_targets() -> Vec<[f32; 3]> {
    (0..BATCH)
        .map(|k| core::array::from_fn(|c| if c == k % 3 { 1.0 } else { 0.0 }))
        .collect()
}

#[test]
fn categorical_cross_entropy_from_logits_matches_finite_differences() {
    let (model, x) = logit_net(110);
    let one_hot = one_hot_targets();
    let data = Dataset::new(&x, &one_hot).unwrap();
    let loss = CategoricalCrossEntropyFromLogits;
    check_gradients::<_, _, BATCH>("cce logits one-hot", &model, &loss, data, &ALL, 0);
    let mut r = rng(111);
    let soft: Vec<[f32; 3]> = (0..BATCH).map(|_| row(&mut r, 0.0, 0.7)).collect();
    let data = Dataset::new(&x, &soft).unwrap();
    check_gradients::<_, _, BATCH>("cce logits soft", &model, &loss, data, &ALL, 0);
}

#[test]
fn sparse_categorical_cross_entropy_from_logits_matches_finite_differences() {
    let (model, x) = logit_net(120);
    let labels: Vec<u16> = (0..BATCH).map(|k| ((k * 2) % 3) as u16).collect();
    let data = Dataset::new(&x, &labels).unwrap();
    let loss = SparseCategoricalCrossEntropyFromLogits::<u16>::new();
    check_gradients::<_, _, BATCH>("scce logits", &model, &loss, data, &ALL, 0);
}

#[test]
fn label_smoothing_gradients_match_finite_differences() {
    let one_hot = one_hot_targets();
    let (model, x) = softmax_net(130);
    let data = Dataset::new(&x, &one_hot).unwrap();
    let loss = CategoricalCrossEntropy::with_label_smoothing(0.2).unwrap();
    check_gradients::<_, _, BATCH>("cce ls 0.2", &model, &loss, data, &ALL, 0);

    let (model, x) = logit_net(131);
    let data = Dataset::new(&x, &one_hot).unwrap();
    let loss = CategoricalCrossEntropyFromLogits::with_label_smoothing(0.3).unwrap();
    check_gradients::<_, _, BATCH>("cce logits ls 0.3", &model, &loss, data, &ALL, 0);

    let mut r = rng(132);
    let binary: Vec<[f32; 2]> = (0..BATCH)
        .map(|k| [(k % 2) as f32, uniform(&mut r, 0.0, 1.0)])
        .collect();
    let mut model: BinaryNet = (Dense::new(Tanh), Dense::new(Sigmoid));
    spread_parameters(&mut model, 133);
    let x: Vec<[f32; 3]> = (0..BATCH).map(|_| row(&mut r, -1.0, 1.0)).collect();
    let data = Dataset::new(&x, &binary).unwrap();
    let loss = BinaryCrossEntropy::with_label_smoothing(0.25).unwrap();
    check_gradients::<_, _, BATCH>("bce ls 0.25", &model, &loss, data, &ALL, 0);

    let mut model: (Dense<3, 4, Tanh>, Dense<4, 2, Identity>) =
        (Dense::new(Tanh), Dense::new(Identity));
    spread_parameters(&mut model, 134);
    let loss = BinaryCrossEntropyFromLogits::with_label_smoothing(0.1).unwrap();
    check_gradients::<_, _, BATCH>("bce logits ls 0.1", &model, &loss, data, &ALL, 0);
}

#[test]
fn sample_and_class_weight_gradients_match_finite_differences() {
    let weights = [1.0f32, 0.5, 2.0, 0.0, 1.5, 3.0];
    let (model, x) = softmax_net(140);
    let labels: Vec<usize> = (0..BATCH).map(|k| (k * 2) % 3).collect();
    let loss = SparseCategoricalCrossEntropy::<usize>::new();
    let data = Dataset::new(&x, &labels)
        .unwrap()
        .with_sample_weights(&weights)
        .unwrap();
    check_gradients::<_, _, BATCH>("scce sample weights", &model, &loss, data, &ALL, 0);
    let data = Dataset::new(&x, &labels)
        .unwrap()
        .with_class_weights(&[0.5, 2.0, 1.25])
        .unwrap();
    check_gradients::<_, _, BATCH>("scce class weights", &model, &loss, data, &ALL, 0);
    // Both, on a partial batch: the mean is over the rows of the batch.
    let data = data.with_sample_weights(&weights).unwrap();
    check_gradients::<_, _, BATCH>("scce both", &model, &loss, data, &ALL[..4], 0);

    let one_hot = one_hot_targets();
    let (model, x) = logit_net(141);
    let data = Dataset::new(&x, &one_hot)
        .unwrap()
        .with_class_weights(&[3.0, 0.25])
        .unwrap();
    let loss = CategoricalCrossEntropyFromLogits::with_label_smoothing(0.1).unwrap();
    check_gradients::<_, _, BATCH>(
        "cce logits ls + class weights",
        &model,
        &loss,
        data,
        &ALL,
        0,
    );
}
