//! A bad sample, label or learning rate never corrupts a model: refused steps leave the
//! weights and the optimizer state exactly as they were. Clipping and max-norm follow Keras.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use microtrain::persist;
use microtrain::rng::unit_f32;
use microtrain::*;

type Net = (Dense<3, 6, Tanh>, Dropout<6>, Dense<6, 3, Softmax>);
type Opt = Adam<<Net as Network>::Params>;
type Labels = SparseCategoricalCrossEntropy<u8>;

fn model() -> Net {
    let mut net: Net = (
        Dense::new(Tanh).with_kernel_regularizer(l1_l2(1e-3, 1e-3).unwrap()),
        Dropout::new(0.3).unwrap(),
        Dense::new(Softmax),
    );
    net.initialize(&mut Xoshiro128PlusPlus::seed_from_u64(12));
    net
}

fn samples() -> (Vec<[f32; 3]>, Vec<u8>) {
    let x = vec![
        [0.1, -0.4, 0.9],
        [1.0, 0.2, -0.3],
        [-0.7, 0.5, 0.0],
        [0.3, 0.3, 0.3],
    ];
    let y = vec![0, 1, 2, 1];
    (x, y)
}

/// Everything a step could touch, as bits: parameters and the optimizer's saved state.
fn snapshot(net: &Net, optimizer: &Opt) -> Vec<u8> {
    let mut buffer = vec![0u8; persist::training_state_len::<Net, Opt>()];
    persist::save_with_optimizer(net, optimizer, &mut buffer).unwrap();
    buffer
}

/// Warms the optimizer up so that its state is not all zeros, then returns model + trainer.
fn warmed_up(learning_rate: f32) -> (Net, Trainer<Net, Opt, 2>, Xoshiro128PlusPlus) {
    let mut net = model();
    let mut trainer = Trainer::<Net, Opt, 2>::new(Adam::new(learning_rate).unwrap());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
    let (x, y) = samples();
    let data = Dataset::new(&x, &y).unwrap();
    trainer
        .step(&mut net, &Labels::new(), data, &[0, 1], &mut rng)
        .unwrap();
    (net, trainer, rng)
}

fn assert_refused(x: &[[f32; 3]], y: &[u8], learning_rate: f32, expected: Error) {
    let (mut net, mut trainer, mut rng) = warmed_up(learning_rate);
    let before = snapshot(&net, trainer.optimizer());
    let data = Dataset::new(x, y).unwrap();
    let result = trainer.step(&mut net, &Labels::new(), data, &[0, 1], &mut rng);
    assert_eq!(
        result.err(),
        Some(expected),
        "x {x:?}, y {y:?}, lr {learning_rate}"
    );
    assert_eq!(
        snapshot(&net, trainer.optimizer()),
        before,
        "a refused step changed the model or optimizer"
    );
}

#[test]
fn nan_and_infinite_samples_leave_model_and_optimizer_untouched() {
    let (mut x, y) = samples();
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        x[1][2] = bad;
        assert_refused(&x, &y, 1e-3, Error::NonFinite);
    }
}

#[test]
fn out_of_range_label_leaves_model_and_optimizer_untouched() {
    let (x, mut y) = samples();
    y[1] = 3;
    assert_refused(
        &x,
        &y,
        1e-3,
        Error::LabelOutOfRange {
            label: 3,
            classes: 3,
        },
    );
}

#[test]
fn exploding_learning_rate_leaves_model_and_optimizer_untouched() {
    let (x, y) = samples();
    assert_refused(&x, &y, f32::MAX, Error::NonFinite);
}

#[test]
fn huge_inputs_with_finite_values_are_refused_when_the_loss_overflows() {
    let (mut x, y) = samples();
    x[0] = [f32::MAX, f32::MAX, -f32::MAX];
    let (mut net, mut trainer, mut rng) = warmed_up(1e-3);
    let before = snapshot(&net, trainer.optimizer());
    let result = trainer.step(
        &mut net,
        &Labels::new(),
        Dataset::new(&x, &y).unwrap(),
        &[0, 1],
        &mut rng,
    );
    // Either the step is refused and nothing changed, or it went through and all is finite.
    match result {
        Err(_) => assert_eq!(snapshot(&net, trainer.optimizer()), before),
        Ok(_) => assert!(net.parameters().flatten().all(|v| v.is_finite())),
    }
}

#[test]
fn fit_counts_refused_steps_and_keeps_training() {
    let (mut x, y) = samples();
    x[2][0] = f32::NAN;
    let mut net = model();
    let mut trainer = Trainer::<Net, Opt, 1>::new(Adam::keras_default());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
    let mut skipped = Vec::new();
    let config = FitConfig::epochs(3).with_refused_steps(RefusedSteps::Skip { max: 3 });
    trainer
        .fit(
            &mut net,
            &Labels::new(),
            Dataset::new(&x, &y).unwrap(),
            None,
            &config,
            &mut rng,
            |r: &EpochReport| {
                skipped.push(r.skipped_steps);
                Control::Continue
            },
        )
        .unwrap();
    assert_eq!(
        skipped,
        vec![1, 1, 1],
        "one bad sample per epoch of 4 single-sample steps"
    );
    assert!(net.parameters().flatten().all(|v| v.is_finite()));
}

#[test]
fn unchecked_updates_still_refuse_bad_samples() {
    let (mut x, y) = samples();
    x[0][0] = f32::NAN;
    let mut net = model();
    let mut trainer =
        Trainer::<Net, Opt, 2>::new(Adam::keras_default()).with_checked_updates(false);
    let before = snapshot(&net, trainer.optimizer());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
    let result = trainer.step(
        &mut net,
        &Labels::new(),
        Dataset::new(&x, &y).unwrap(),
        &[0, 1],
        &mut rng,
    );
    assert_eq!(result.err(), Some(Error::NonFinite));
    assert_eq!(snapshot(&net, trainer.optimizer()), before);
}

/// One SGD step with lr 1 from zero-initialised... weights: the update equals -gradient.
fn clipped_update(clipping: Clipping) -> (Vec<f32>, Vec<f32>) {
    type Linear = (Dense<2, 2>,);
    let mut net: Linear = (Dense::new(Identity),);
    let mut trainer =
        Trainer::<Linear, Sgd, 1>::new(Sgd::new(1.0).unwrap()).with_clipping(clipping);
    let x = [[3.0, -4.0]];
    let y = [[10.0, 0.5]];
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    let data = Dataset::new(&x, &y).unwrap();
    let mut raw = Trainer::<Linear, Sgd, 1>::new(Sgd::new(1.0).unwrap());
    raw.compute_gradients(&net, &MeanSquaredError, data, &[0], &mut rng)
        .unwrap();
    let gradient: Vec<f32> = raw.gradients().tensors().flatten().copied().collect();
    trainer
        .step(&mut net, &MeanSquaredError, data, &[0], &mut rng)
        .unwrap();
    let update: Vec<f32> = net.parameters().flatten().map(|w| -w).collect();
    (gradient, update)
}

#[test]
fn clip_value_clamps_each_gradient() {
    let (gradient, update) = clipped_update(Clipping::NONE.value(2.0).unwrap());
    for (g, u) in gradient.iter().zip(&update) {
        assert_eq!(
            *u,
            g.clamp(-2.0, 2.0),
            "gradient {gradient:?} update {update:?}"
        );
    }
    assert!(
        gradient.iter().any(|g| g.abs() > 2.0),
        "the case must actually clip: {gradient:?}"
    );
}

#[test]
fn clip_norm_limits_each_tensor_and_global_norm_limits_all() {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let (gradient, update) = clipped_update(Clipping::NONE.norm(1.0).unwrap());
    // Tensors: 4 weights, then 2 biases.
    let (w, b) = update.split_at(4);
    assert!(
        (norm(w) - 1.0).abs() < 1e-6 && norm(&gradient[..4]) > 1.0,
        "weights {w:?}"
    );
    assert!(norm(b) <= 1.0 + 1e-6, "bias {b:?}");
    let (gradient, update) = clipped_update(Clipping::NONE.global_norm(1.0).unwrap());
    assert!(norm(&gradient) > 1.0);
    assert!((norm(&update) - 1.0).abs() < 1e-6, "update {update:?}");
    // Direction is kept: the update is a positive multiple of the gradient.
    let ratio = update[0] / gradient[0];
    for (g, u) in gradient.iter().zip(&update) {
        assert!(
            (u - ratio * g).abs() < 1e-6,
            "gradient {gradient:?} update {update:?}"
        );
    }
}

#[test]
fn bad_clipping_and_max_norm_limits_are_refused() {
    for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        assert!(Clipping::NONE.value(bad).is_err());
        assert!(Clipping::NONE.norm(bad).is_err());
        assert!(Clipping::NONE.global_norm(bad).is_err());
        assert!(matches!(
            Dense::<2, 2, Relu>::new(Relu).with_max_norm(bad),
            Err(Error::MaxNorm { .. })
        ));
    }
}

type Wide = (Dense<5, 4, Relu>, Dense<4, 1, Sigmoid>);

/// Trains `net` for 20 epochs (4 under Miri, where an epoch takes seconds) at a high
/// learning rate and returns the norm of each hidden unit's incoming weights.
fn trained_unit_norms(mut net: Wide) -> Vec<f32> {
    const EPOCHS: usize = if cfg!(miri) { 4 } else { 20 };
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(8);
    net.initialize(&mut rng);
    let x: Vec<[f32; 5]> = (0..32)
        .map(|k| core::array::from_fn(|i| ((k * 7 + i * 3) % 11) as f32 - 5.0))
        .collect();
    let y: Vec<[f32; 1]> = x
        .iter()
        .map(|v| [if v[0] > 0.0 { 1.0 } else { 0.0 }])
        .collect();
    let mut trainer =
        Trainer::<Wide, Adam<<Wide as Network>::Params>, 8>::new(Adam::new(0.1).unwrap());
    common::fit_plain(
        &mut trainer,
        &mut net,
        &BinaryCrossEntropy,
        Dataset::new(&x, &y).unwrap(),
        &FitConfig::epochs(EPOCHS),
        &mut rng,
    )
    .unwrap();
    net.0
        .params
        .weights
        .iter()
        .map(|r| r.iter().map(|w| w * w).sum::<f32>().sqrt())
        .collect()
}

#[test]
fn max_norm_keeps_every_unit_within_the_limit() {
    let constrained = trained_unit_norms((
        Dense::new(Relu).with_max_norm(0.5).unwrap(),
        Dense::new(Sigmoid),
    ));
    for norm in &constrained {
        assert!(
            *norm <= 0.5 * (1.0 + 1e-6),
            "unit norm {norm} above 0.5: {constrained:?}"
        );
    }
    // Without the constraint the same run grows past it, so the test can fail.
    let free = trained_unit_norms((Dense::new(Relu), Dense::new(Sigmoid)));
    let largest = free.iter().copied().fold(0.0, f32::max);
    assert!(largest > 0.5, "unconstrained largest norm {largest}");
}

#[test]
fn errors_display_the_bad_value() {
    let text = format!("{}", Dropout::<4>::new(1.5).unwrap_err());
    assert!(text.contains("1.5"), "{text}");
    let text = format!(
        "{}",
        Error::LabelOutOfRange {
            label: 7,
            classes: 3
        }
    );
    assert!(text.contains('7') && text.contains('3'), "{text}");
    let boxed: Box<dyn std::error::Error> = Box::new(Error::Checksum);
    assert!(!boxed.to_string().is_empty());
}

/// `Optimizer::update_is_finite` answers exactly "would this step leave everything
/// finite?", whichever quick test the kernel set uses first, on states built to sit at the
/// edges: weights near `f32::MAX`, gradients whose square overflows, negative or NaN second
/// moments (as a corrupted restore could leave them), infinities and signed zeros.
#[test]
fn update_check_agrees_with_the_step_it_predicts() {
    // 33 weights: more than one vector of them on every SIMD width, and a tail.
    type P = DenseParams<11, 3>;
    const EDGES: [f32; 12] = [
        0.0,
        -0.0,
        1e-3,
        -2.5,
        1e19,
        -3e19,
        1e37,
        f32::MAX,
        -f32::MAX,
        f32::INFINITY,
        f32::NAN,
        -1e-3,
    ];
    // The case index cycles through the 36 combinations of learning rate, ε and moment scale;
    // under Miri (0.4 s a case) 108 cases, each combination three times with other random
    // values and edges.
    const CASES: usize = if cfg!(miri) { 108 } else { 4000 };
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(99);
    let (mut refused, mut accepted) = (0, 0);
    for case in 0..CASES {
        // Learning rates and epsilons from Keras' defaults to the extremes where `lr_t·m`
        // overflows while the quotient would not (lr 1e35, ε 1e6).
        let learning_rate = [1e-3, 0.5, 1e30, 1e35][case % 4];
        let epsilon = [1e-7, 1e6, 2.0][case / 4 % 3];
        let mut adam = Adam::<P>::new(learning_rate)
            .unwrap()
            .with_epsilon(epsilon)
            .unwrap();
        let (mut params, mut grads) = (P::ZERO, P::ZERO);
        for t in params.tensors_mut().chain(grads.tensors_mut()) {
            t.iter_mut().for_each(|x| *x = unit_f32(&mut rng) - 0.5);
        }
        // Moments of a run in progress: v >= 0, some of them large.
        let scale = [0.1, 1e4, 1e6][case / 12 % 3];
        for t in adam.state_mut().skip(1) {
            t.iter_mut().for_each(|x| *x = unit_f32(&mut rng) * scale);
        }
        // Then up to two values anywhere (weights, gradients, m or v) moved to an edge.
        for _ in 0..case % 3 {
            let edge = EDGES[(rng.next_u32() as usize) % EDGES.len()];
            let which = rng.next_u32() as usize % 4;
            let at = rng.next_u32() as usize % P::COUNT;
            let target = match which {
                0 => params.tensors_mut().flat_map(|t| t.iter_mut()).nth(at),
                1 => grads.tensors_mut().flat_map(|t| t.iter_mut()).nth(at),
                2 => adam.state_mut().skip(1).flat_map(|t| t.iter_mut()).nth(at),
                _ => adam
                    .state_mut()
                    .skip(1)
                    .flat_map(|t| t.iter_mut())
                    .nth(P::COUNT + at),
            };
            if let Some(x) = target {
                *x = edge;
            }
        }
        let predicted = adam.update_is_finite(params.tensors(), &grads);
        let mut after = params;
        adam.step(after.tensors_mut(), &grads);
        let finite = after.tensors().flatten().all(|v| v.is_finite())
            && adam.state().flatten().all(|v| v.is_finite());
        assert_eq!(
            predicted, finite,
            "case {case}: params {params:?} grads {grads:?}"
        );
        if finite {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    // Both verdicts occur often enough for the comparison to mean something.
    assert!(
        accepted > CASES / 8 && refused > CASES / 8,
        "accepted {accepted}, refused {refused}"
    );
}

/// The case that once wrote `w = -inf`: lr 1e35 and ε 1e6 make `lr_t/ε` small (3e28) while
/// the product `lr_t·m` the kernels compute first overflows (m = 2e4 after one step on a
/// gradient of 2e5). Checked at the optimizer (with the active kernel set: run under
/// `--features scalar` too) and through a trainer.
#[test]
fn adam_check_counts_the_product_before_the_quotient() {
    type P = DenseParams<3, 2>;
    let adam = Adam::<P>::new(1e35).unwrap().with_epsilon(1e6).unwrap();
    let params = P::ZERO;
    let mut grads = P::ZERO;
    grads.tensors_mut().flatten().for_each(|g| *g = 2e5);
    let predicted = adam.update_is_finite(params.tensors(), &grads);
    let (mut after, mut stepped) = (params, adam);
    stepped.step(after.tensors_mut(), &grads);
    let finite = after.tensors().flatten().all(|v| v.is_finite());
    assert!(!finite, "the case must overflow: {after:?}");
    assert!(
        !predicted,
        "the check passed an update that wrote {after:?}"
    );

    type Line = (Dense<1, 1>,);
    let mut net: Line = (Dense::new(Identity),);
    let mut trainer = Trainer::<Line, Adam<<Line as Network>::Params>, 1>::new(
        Adam::new(1e35).unwrap().with_epsilon(1e6).unwrap(),
    );
    let (x, y) = ([[1.0f32]], [[-1e5f32]]);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    let data = Dataset::new(&x, &y).unwrap();
    let result = trainer.step(&mut net, &MeanSquaredError, data, &[0], &mut rng);
    assert!(
        result.is_err() || net.parameters().flatten().all(|v| v.is_finite()),
        "{result:?}: {net:?}"
    );
}

/// Found by `fuzz/`'s `step` target: with lr 1e35, ε 4.4e-39 and a gradient of 1.8e-18,
/// the new `v` (3.4e-39) is subnormal. The SIMD kernels flush it to zero, so the quotient
/// `lr_t·m/(0 + ε)` is infinite, while the exact check, computing with the unflushed `v`,
/// found it finite (3e35) and let the step write `inf`. The check must predict the active
/// kernel set's arithmetic (run under `--features scalar` too, where nothing is flushed).
#[test]
fn adam_check_predicts_the_flush_of_a_subnormal_moment() {
    type P = DenseParams<3, 2>;
    let adam = Adam::<P>::new(1e35).unwrap().with_epsilon(4.4e-39).unwrap();
    let params = P::ZERO;
    let mut grads = P::ZERO;
    grads
        .tensors_mut()
        .flatten()
        .for_each(|g| *g = -1.839_25e-18);
    let predicted = adam.update_is_finite(params.tensors(), &grads);
    let (mut after, mut stepped) = (params, adam);
    stepped.step(after.tensors_mut(), &grads);
    let finite = after
        .tensors()
        .flatten()
        .chain(stepped.state().flatten())
        .all(|v| v.is_finite());
    assert_eq!(
        predicted, finite,
        "the check predicted {predicted}: {after:?}"
    );
    assert_eq!(
        finite,
        !microtrain::kernels::FLUSHES_SUBNORMALS,
        "{after:?}"
    );
}

type Line = (Dense<1, 1>,);
type LineSgd = Trainer<Line, Sgd, 1>;

/// A line `y = w·x + b` with the given parameters.
fn line(w: f32, b: f32) -> Line {
    let mut net: Line = (Dense::new(Identity),);
    net.0.params.weights = [[w]];
    net.0.params.bias = [b];
    net
}

fn line_bits(net: &Line) -> Vec<u32> {
    net.parameters().flatten().map(|v| v.to_bits()).collect()
}

/// x = 3e38 and δ = -2 give a weight gradient of -inf with a loss of 1: clipping by value
/// would clamp it to the limit; the raw gradient is checked before.
#[test]
fn clip_by_value_does_not_hide_an_infinite_gradient() {
    let (x, y) = ([[3e38f32]], [[1.0f32]]);
    let data = Dataset::new(&x, &y).unwrap();
    for checked in [true, false] {
        for clipping in [
            Clipping::NONE.value(1.0).unwrap(),
            Clipping::NONE.norm(1.0).unwrap(),
            Clipping::NONE.global_norm(1.0).unwrap(),
        ] {
            let mut net = line(0.0, 0.0);
            let before = line_bits(&net);
            let mut trainer = LineSgd::new(Sgd::new(0.1).unwrap())
                .with_clipping(clipping)
                .with_checked_updates(checked);
            let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
            let result = trainer.step(&mut net, &MeanSquaredError, data, &[0], &mut rng);
            assert_eq!(result.err(), Some(Error::NonFinite), "{clipping:?}");
            assert_eq!(line_bits(&net), before, "{clipping:?}, checked {checked}");
        }
    }
}

/// Batch loss 3.24e38 and penalty 3e38 are each finite; the loss the step would report is
/// their sum, infinity.
#[test]
fn a_step_whose_total_loss_overflows_is_refused() {
    let (x, y) = ([[0.0f32]], [[1.8e19f32]]);
    let data = Dataset::new(&x, &y).unwrap();
    let mut net = line(1e19, 0.0);
    net.0 = net.0.with_kernel_regularizer(l2(3.0).unwrap());
    let before = line_bits(&net);
    let mut trainer = LineSgd::new(Sgd::new(1e-30).unwrap());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    let result = trainer.step(&mut net, &MeanSquaredError, data, &[0], &mut rng);
    assert_eq!(result.err(), Some(Error::NonFinite), "{result:?}");
    assert_eq!(line_bits(&net), before);
}

/// Refused steps leave the caller's generator where it was, whatever refused them (a
/// sample, a label, the loss, the update), so a run with a refused step draws the same
/// dropout masks afterwards as a run without it.
#[test]
fn a_refused_step_does_not_advance_the_generator() {
    let (mut x, mut y) = samples();
    x[2][1] = f32::NAN;
    y[3] = 7;
    // Refused at the sample, at the label, and (lr f32::MAX) at the update, after the
    // dropout seed was drawn.
    let cases: [(&[usize], f32); 3] = [(&[0, 2], 1e-3), (&[3, 1], 1e-3), (&[0, 1], f32::MAX)];
    for (indices, learning_rate) in cases {
        let (mut net, mut trainer, mut rng) = warmed_up(learning_rate);
        let before = rng.clone();
        let data = Dataset::new(&x, &y).unwrap();
        let result = trainer.step(&mut net, &Labels::new(), data, indices, &mut rng);
        assert!(result.is_err(), "{indices:?}: {result:?}");
        assert_eq!(rng, before, "{indices:?} moved the generator");
    }
    // And an accepted step with dropout does advance it (the comparison can fail).
    let (mut net, mut trainer, mut rng) = warmed_up(1e-3);
    let before = rng.clone();
    let data = Dataset::new(&x, &y).unwrap();
    trainer
        .step(&mut net, &Labels::new(), data, &[0, 1], &mut rng)
        .unwrap();
    assert_ne!(rng, before);
}

/// Trains the reliability network with `config` on `x`, `y`, validating on `validation`.
fn fit_with(
    x: &[[f32; 3]],
    y: &[u8],
    validation: Option<(&[[f32; 3]], &[u8])>,
    optimizer: Opt,
    config: FitConfig,
) -> (Result<FitSummary, Error>, Net, Net) {
    let mut net = model();
    let start = net;
    let mut trainer = Trainer::<Net, Opt, 2>::new(optimizer);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(4);
    let validation = validation.map(|(x, y)| Dataset::new(x, y).unwrap());
    let result = trainer.fit(
        &mut net,
        &Labels::new(),
        Dataset::new(x, y).unwrap(),
        validation,
        &config,
        &mut rng,
        |_: &EpochReport| Control::Continue,
    );
    (result, start, net)
}

/// Labels 1..=3 for three classes (a 1-based data set): by default the first refused step
/// ends `fit` with its error, where it used to return `Ok` after skipping nearly every step.
#[test]
fn fit_reports_one_based_labels() {
    let (x, _) = samples();
    let y = [1, 2, 3, 1];
    let (result, ..) = fit_with(&x, &y, None, Adam::keras_default(), FitConfig::epochs(3));
    assert_eq!(
        result.err(),
        Some(Error::LabelOutOfRange {
            label: 3,
            classes: 3
        })
    );
}

/// Configurations that validate but make every step fail: `fit` returns the error, under
/// every refused-step policy.
#[test]
fn fit_fails_when_every_step_is_refused() {
    let (x, y) = samples();
    for refused in [RefusedSteps::Fail, RefusedSteps::Skip { max: usize::MAX }] {
        let config = FitConfig::epochs(3).with_refused_steps(refused);
        // The first step jumps to weights near f32::MAX; every later one is refused.
        let (result, ..) = fit_with(&x, &y, None, Adam::new(f32::MAX).unwrap(), config);
        assert_eq!(result.err(), Some(Error::NonFinite), "{refused:?}");

        let mut net: Net = (
            Dense::new(Tanh).with_kernel_regularizer(l2(f32::MAX).unwrap()),
            Dropout::new(0.3).unwrap(),
            Dense::new(Softmax),
        );
        net.initialize(&mut Xoshiro128PlusPlus::seed_from_u64(12));
        let mut trainer = Trainer::<Net, Opt, 2>::new(Adam::keras_default());
        let result = common::fit_plain(
            &mut trainer,
            &mut net,
            &Labels::new(),
            Dataset::new(&x, &y).unwrap(),
            &config,
            &mut Xoshiro128PlusPlus::seed_from_u64(4),
        );
        assert_eq!(result.err(), Some(Error::NonFinite), "{refused:?}");
    }
}

/// `Skip { max }` skips up to `max` refused steps over the run, keeps the first error of
/// each epoch in its report, and fails on the next one.
#[test]
fn skip_policy_counts_refusals_over_the_run() {
    let (mut x, y) = samples();
    x[2][0] = f32::NAN;
    let mut net = model();
    let mut trainer = Trainer::<Net, Opt, 1>::new(Adam::keras_default());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
    let mut reports = Vec::new();
    let config = FitConfig::epochs(3).with_refused_steps(RefusedSteps::Skip { max: 2 });
    let result = trainer.fit(
        &mut net,
        &Labels::new(),
        Dataset::new(&x, &y).unwrap(),
        None,
        &config,
        &mut rng,
        |r: &EpochReport| {
            reports.push((r.skipped_steps, r.first_refusal));
            Control::Continue
        },
    );
    assert_eq!(result.err(), Some(Error::NonFinite));
    assert_eq!(reports, vec![(1, Some(Error::NonFinite)); 2]);
}

#[test]
fn evaluate_refuses_bad_labels_and_samples() {
    let (mut x, mut y) = samples();
    let net = model();
    let scored = evaluate(&net, &Labels::new(), Dataset::new(&x, &y).unwrap()).unwrap();
    assert!(scored.loss.is_finite());
    y[3] = 3;
    assert_eq!(
        evaluate(&net, &Labels::new(), Dataset::new(&x, &y).unwrap()).err(),
        Some(Error::LabelOutOfRange {
            label: 3,
            classes: 3
        })
    );
    y[3] = 1;
    x[0][1] = f32::NAN;
    assert_eq!(
        evaluate(&net, &Labels::new(), Dataset::new(&x, &y).unwrap()).err(),
        Some(Error::NonFinite)
    );
}

/// A NaN in the validation set is an error before anything trains, not an early stop.
#[test]
fn nan_validation_data_is_an_error() {
    let (x, y) = samples();
    let (mut vx, vy) = samples();
    vx[1][0] = f32::NAN;
    let config = FitConfig::epochs(5).with_patience(1);
    let (result, start, net) = fit_with(&x, &y, Some((&vx, &vy)), Adam::keras_default(), config);
    assert_eq!(result.err(), Some(Error::NonFinite));
    assert_eq!(net, start);
}

#[test]
fn min_delta_is_validated_and_its_magnitude_used() {
    let (x, y) = samples();
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        assert!(
            matches!(
                EarlyStopping::new(Monitor::Loss).with_min_delta(bad),
                Err(Error::MinDelta { min_delta }) if min_delta.to_bits() == bad.to_bits()
            ),
            "{bad}"
        );
        assert!(
            matches!(
                ReduceLrOnPlateau::new(Monitor::Loss).with_min_delta(bad),
                Err(Error::MinDelta { min_delta }) if min_delta.to_bits() == bad.to_bits()
            ),
            "{bad}"
        );
    }
    assert_eq!(
        EarlyStopping::new(Monitor::Loss)
            .with_min_delta(-0.5)
            .unwrap()
            .min_delta(),
        0.5
    );
    // A negative min_delta taken as is would count any worsening below 1e6 as progress and
    // never stop; as |min_delta| no epoch after the first (which improves on +inf)
    // improves by 1e6, so patience 2 stops after 3.
    let rule = EarlyStopping::new(Monitor::Loss)
        .with_patience(2)
        .with_min_delta(-1e6)
        .unwrap();
    let config = FitConfig::epochs(10).with_early_stopping(rule);
    let (result, ..) = fit_with(&x, &y, None, Adam::keras_default(), config);
    let summary = result.unwrap();
    assert!(summary.stopped_early);
    assert_eq!(summary.epochs, 3);
}

/// Two steps of loss 3.24e38 each: the epoch's mean is finite though the plain sum is not.
#[test]
fn the_epoch_loss_does_not_overflow() {
    let (x, y) = ([[0.0f32], [0.0]], [[1.8e19f32], [1.8e19]]);
    let mut net = line(0.0, 0.0);
    let mut trainer = LineSgd::new(Sgd::new(1e-30).unwrap());
    let mut losses = Vec::new();
    trainer
        .fit(
            &mut net,
            &MeanSquaredError,
            Dataset::new(&x, &y).unwrap(),
            None,
            &FitConfig::epochs(1),
            &mut Xoshiro128PlusPlus::seed_from_u64(0),
            |r: &EpochReport| {
                losses.push(r.train.loss);
                Control::Continue
            },
        )
        .unwrap();
    assert_eq!(losses.len(), 1);
    assert!(losses[0].is_finite() && losses[0] > 3e38, "{losses:?}");
}

type Rectified = (Dense<2, 1, Relu>, Dense<1, 1>);
type LeakyRectified = (Dense<2, 1, LeakyRelu>, Dense<1, 1>);

/// 3e38·2 + 3e38·(-2) is NaN: a finite sample with a NaN pre-activation. ReLU and
/// LeakyReLU pass the NaN on, so the step is refused and inference says NaN.
#[test]
fn a_nan_pre_activation_reaches_the_loss_and_the_prediction() {
    fn check<N>(mut net: N)
    where
        N: Network<Input = [f32; 2], Output = [f32; 1], OutputActivation = Identity>,
    {
        for (t, tensor) in net.parameters_mut().enumerate() {
            // First layer's weights [2, -2]; every other value 0.5.
            let values: &[f32] = if t == 0 { &[2.0, -2.0] } else { &[0.5] };
            tensor.copy_from_slice(values);
        }
        let x = [[3e38f32, 3e38]];
        let y = [[1.0f32]];
        assert!(net.infer(&x[0])[0].is_nan(), "{:?}", net.infer(&x[0]));
        let mut predicted = [[0.0f32]];
        predict(&net, &x, &mut predicted);
        assert!(predicted[0][0].is_nan());
        let before: Vec<u32> = net.parameters().flatten().map(|v| v.to_bits()).collect();
        let mut trainer = Trainer::<N, Sgd, 1>::new(Sgd::new(0.1).unwrap());
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
        let data = Dataset::new(&x, &y).unwrap();
        let result = trainer.step(&mut net, &MeanSquaredError, data, &[0], &mut rng);
        assert_eq!(result.err(), Some(Error::NonFinite));
        let after: Vec<u32> = net.parameters().flatten().map(|v| v.to_bits()).collect();
        assert_eq!(after, before);
    }
    check::<Rectified>((Dense::new(Relu), Dense::new(Identity)));
    check::<LeakyRectified>((Dense::new(LeakyRelu::default()), Dense::new(Identity)));
}

/// A positive rate below 2⁻³² would drop no unit while `rate()` reported it: refused.
#[test]
fn dropout_rates_too_small_to_drop_anything_are_refused() {
    for rate in [1e-10f32, 2.0e-10] {
        assert_eq!(
            Dropout::<4>::new(rate).err(),
            Some(Error::DropoutRate { rate })
        );
    }
    // 2⁻³² exactly (Miri gives `powi` a random error of a few ulps, as IEEE 754 allows).
    let smallest = f32::from_bits(95 << 23);
    assert_eq!(Dropout::<4>::new(smallest).unwrap().rate(), smallest);
    assert_eq!(Dropout::<4>::new(0.0).unwrap().rate(), 0.0);
}
