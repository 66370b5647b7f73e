//! Training throughput: whole steps of the reference network, the tutorial's model over
//! ten epochs, and the phases a step is made of (to see what bounds it).
//!
//! ```text
//! cargo bench --bench training -- --warm-up-time 1 --measurement-time 3
//! RUSTFLAGS="-C target-cpu=x86-64-v3" cargo bench --bench training -- --warm-up-time 1 --measurement-time 3
//! RUSTFLAGS="-C target-cpu=native" cargo bench --bench training -- --warm-up-time 1 --measurement-time 3
//! cargo bench --bench training --features scalar -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Groups (criterion's "elem/s" column is the throughput named here):
//! - `step_checked/B`, `step_unchecked/B`: one `Trainer::step` of the reference network
//!   (32 → 64 relu → Dropout(0.5) → 64 relu → Dropout(0.5) → 1 sigmoid, binary
//!   cross-entropy, Adam lr 1e-3, `l2(1e-4)` on both kernels), samples per second, with
//!   the default checked updates and with `with_checked_updates(false)`.
//! - `phases/<phase>/B`: the parts of that step, each through the public API: forward
//!   (dropout masks included), forward + loss, backward (which overwrites the gradients; dropout
//!   masks replayed), the update check, the Adam step, and `compute_gradients` (sample
//!   gathering and checks + forward + loss + backward + the gradient scan), and
//!   the whole checked `step` on that batch. `phases/*` is the reference network at B = 1
//!   and 128, `tutorial_phases/*` the tutorial's model at B = 32. Samples per second of the
//!   whole batch, so they compare with the step's figure.
//! - `tutorial_10_epochs`: the tutorial's model (30 → 64 relu `l2(0.01)` → Dropout(0.5) → 1
//!   sigmoid, Adam, B = 32) trained by `Trainer::fit` for 10 epochs on 455 synthetic
//!   samples (the shape of the breast-cancer data set: the work per step does not depend
//!   on the values). Time per run; model and trainer are built outside the timed part.
//! - `step_in_place_checked/B` (B = 1, 128), `tutorial_10_epochs/in_place_checked` and
//!   `tutorial_in_place_phases/*`: the same with each dropout applied in place on the dense
//!   layer before it (`DenseDropout`), which trains bit for bit the same way with ReLU.
//! - `dropout_mask/*`: the mask of a `Dropout<64>` over 128 rows, forward (draw + apply) and
//!   backward replay (`mask_factors`), units per second.
//! - `adam/*`: `kernels::{scalar,simd}::adam_update` on one tensor, and `Optimizer::step`
//!   and `update_is_finite` of `Adam` on a 256 → 256 layer (65,792 parameters), parameters
//!   per second.
//!
//! - `frozen_prefix/*` (B = 32): the reference network without its dropouts (32 → 64 relu →
//!   64 relu → 1 sigmoid, Adam) with its two hidden layers frozen: `step` of that model,
//!   `prefix_forward` (the forward pass of the two frozen layers alone), and `step_unfrozen`
//!   (the same model trained whole). A frozen prefix should cost about its forward pass.
//! - `layer_kernels/*`: the dense kernels (forward, input gradient, weight gradient with
//!   `l2`) at the shapes of the two networks' layers, scalar and SIMD sets, time per call.
//!
//! Record the `RUSTFLAGS` beside every figure: a plain x86_64 build uses SSE2 only.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use microtrain::kernels::{self, AdamStep, Shape};
use microtrain::layers::MaskSeed;
use microtrain::{
    Adam, BinaryCrossEntropy, ConstZero, Dataset, Dense, DenseDropout, DenseParams, Dropout,
    FitConfig, Frozen, Layer, Loss, Network, Optimizer, Parameters, Regularizer, Relu, Rng,
    SeedableRng, Sigmoid, Trainer, Xoshiro128PlusPlus, l2,
};

type Reference = (
    Dense<32, 64, Relu>,
    Dropout<64>,
    Dense<64, 64, Relu>,
    Dropout<64>,
    Dense<64, 1, Sigmoid>,
);

type Tutorial = (Dense<30, 64, Relu>, Dropout<64>, Dense<64, 1, Sigmoid>);

/// The same two models with each dropout applied in place ([`DenseDropout`]): bit for bit
/// the same training with ReLU, one batch buffer less per dropout.
type ReferenceInPlace = (
    DenseDropout<32, 64, Relu>,
    DenseDropout<64, 64, Relu>,
    Dense<64, 1, Sigmoid>,
);
type TutorialInPlace = (DenseDropout<30, 64, Relu>, Dense<64, 1, Sigmoid>);

/// Samples in the reference data: more than the largest batch, so that consecutive steps
/// gather different rows, as in an epoch.
const REFERENCE_SAMPLES: usize = 1024;
/// The breast-cancer data set's training split in the tutorial (569 · 0.8, rounded up).
const TUTORIAL_SAMPLES: usize = 455;

fn uniform(rng: &mut Xoshiro128PlusPlus) -> f32 {
    (rng.next_u32() >> 8) as f32 / (1u32 << 23) as f32 - 1.0
}

/// Features uniform in [-1, 1) and labels from a fixed linear rule with label noise, so
/// the network has something to learn and its values stay in a realistic range.
fn synthetic<const W: usize>(samples: usize, seed: u64) -> (Vec<[f32; W]>, Vec<[f32; 1]>) {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    let direction: [f32; W] = std::array::from_fn(|_| uniform(&mut rng));
    let x: Vec<[f32; W]> = (0..samples)
        .map(|_| std::array::from_fn(|_| uniform(&mut rng)))
        .collect();
    let y = x
        .iter()
        .map(|row| {
            let score: f32 = row.iter().zip(&direction).map(|(a, b)| a * b).sum();
            let flip = rng.next_u32() % 10 == 0;
            [f32::from(u8::from((score > 0.0) != flip))]
        })
        .collect();
    (x, y)
}

fn reference_model(rng: &mut Xoshiro128PlusPlus) -> Reference {
    let penalty = l2(1e-4).unwrap_or_default();
    let dropout = Dropout::new(0.5).unwrap_or_else(|e| unreachable!("{e}"));
    let mut model: Reference = (
        Dense::new(Relu).with_kernel_regularizer(penalty),
        dropout,
        Dense::new(Relu).with_kernel_regularizer(penalty),
        dropout,
        Dense::new(Sigmoid),
    );
    model.initialize(rng);
    model
}

fn reference_in_place(rng: &mut Xoshiro128PlusPlus) -> ReferenceInPlace {
    let model = reference_model(rng);
    (
        DenseDropout::new(model.0, model.1),
        DenseDropout::new(model.2, model.3),
        model.4,
    )
}

fn tutorial_in_place(rng: &mut Xoshiro128PlusPlus) -> TutorialInPlace {
    let model = tutorial_model(rng);
    (DenseDropout::new(model.0, model.1), model.2)
}

fn tutorial_model(rng: &mut Xoshiro128PlusPlus) -> Tutorial {
    let mut model: Tutorial = (
        Dense::new(Relu).with_kernel_regularizer(l2(0.01).unwrap_or_default()),
        Dropout::new(0.5).unwrap_or_else(|e| unreachable!("{e}")),
        Dense::new(Sigmoid),
    );
    model.initialize(rng);
    model
}

/// A shuffled index list with `B` extra entries at the end, so that every window
/// `start..start + B` with `start < samples` is a full batch.
fn batch_order<const B: usize>(samples: usize, rng: &mut Xoshiro128PlusPlus) -> Vec<usize> {
    let order = microtrain::rng::Permutation::new(samples, rng);
    (0..samples + B).map(|k| order.get(k % samples)).collect()
}

fn step<N, const B: usize>(
    c: &mut Criterion,
    name: &str,
    build: fn(&mut Xoshiro128PlusPlus) -> N,
    checked: bool,
) where
    N: Network<Input = [f32; 32], Output = [f32; 1], OutputActivation = Sigmoid>,
{
    let name = format!("{name}_{}", if checked { "checked" } else { "unchecked" });
    let mut group = c.benchmark_group(name.as_str());
    group.throughput(Throughput::Elements(B as u64));
    let (x, y) = synthetic::<32>(REFERENCE_SAMPLES, 1);
    let data = Dataset::new(&x, &y).unwrap_or_else(|e| unreachable!("{e}"));
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(2);
    let mut model = build(&mut rng);
    let order = batch_order::<B>(REFERENCE_SAMPLES, &mut rng);
    let mut trainer = Box::new(
        Trainer::<N, Adam<N::Params>, B>::new(Adam::keras_default()).with_checked_updates(checked),
    );
    let mut start = 0;
    let mut refused = 0usize;
    group.bench_function(BenchmarkId::from_parameter(B), |bench| {
        bench.iter(|| {
            let indices = order.get(start..start + B).unwrap_or_default();
            start = (start + B) % REFERENCE_SAMPLES;
            let report = trainer.step(&mut model, &BinaryCrossEntropy, data, indices, &mut rng);
            refused += usize::from(report.is_err());
            black_box(report)
        });
    });
    group.finish();
    // A refused step does less work than a real one: the figure would flatter.
    assert_eq!(refused, 0, "{name}/{B}: {refused} steps were refused");
}

fn steps(c: &mut Criterion) {
    for checked in [true, false] {
        step::<_, 1>(c, "step", reference_model, checked);
        step::<_, 8>(c, "step", reference_model, checked);
        step::<_, 32>(c, "step", reference_model, checked);
        step::<_, 128>(c, "step", reference_model, checked);
    }
    step::<_, 1>(c, "step_in_place", reference_in_place, true);
    step::<_, 128>(c, "step_in_place", reference_in_place, true);
}

/// The parts of `Trainer::step` timed one at a time through the public API.
fn phases_for<N, const W: usize, const B: usize>(
    c: &mut Criterion,
    group: &str,
    model: N,
    samples: usize,
) where
    N: Network<Input = [f32; W], Output = [f32; 1], OutputActivation = Sigmoid> + Copy,
{
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(B as u64));
    let (x, y) = synthetic::<W>(samples, 1);
    let data = Dataset::new(&x, &y).unwrap_or_else(|e| unreachable!("{e}"));
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(2);
    let order = batch_order::<B>(samples, &mut rng);
    let indices = order.get(..B).unwrap_or_default();
    let loss = BinaryCrossEntropy;
    let id = |phase: &str| BenchmarkId::new(phase, B);

    let batch_targets: Vec<[f32; 1]> = indices.iter().filter_map(|&i| y.get(i)).copied().collect();
    let mut workspace = Box::new(N::Workspace::<B>::ZERO);
    let batch = indices.iter().filter_map(|&i| x.get(i));
    for (row, sample) in N::input_rows(&mut workspace).iter_mut().zip(batch) {
        *row = *sample;
    }
    group.bench_function(id("forward"), |bench| {
        bench.iter(|| model.forward(black_box(&mut *workspace), B, &mut rng));
    });
    let activation = *model.output_activation();
    let scale = 1.0 / B as f32;
    let mut forward_and_loss = || {
        model.forward(&mut workspace, B, &mut rng);
        let mut sum = 0.0f32;
        let outputs = N::output_rows(&mut workspace).iter_mut();
        for (output, target) in outputs.zip(&batch_targets) {
            sum += Loss::<Sigmoid, [f32; 1]>::value(&loss, output, target);
            Loss::<Sigmoid, [f32; 1]>::delta(&loss, &activation, output, target, scale);
        }
        sum
    };
    group.bench_function(id("forward_loss"), |bench| {
        bench.iter(|| black_box(forward_and_loss()));
    });

    let mut grads = Box::new(N::Params::ZERO);
    // The workspace holds a forward pass and its δ; backward's work does not depend on
    // the values, and repeating it on its own leftovers keeps them finite.
    forward_and_loss();
    group.bench_function(id("backward"), |bench| {
        bench.iter(|| black_box(model.backward(&mut workspace, B, &mut grads)));
    });

    let mut optimizer = Box::new(Adam::<N::Params>::keras_default());
    group.bench_function(id("update_check"), |bench| {
        bench.iter(|| black_box(optimizer.update_is_finite(model.parameters(), &grads)));
    });
    let mut updated = model;
    group.bench_function(id("adam_step"), |bench| {
        bench.iter(|| optimizer.step(updated.parameters_mut(), black_box(&grads)));
    });

    let mut trainer = Box::new(Trainer::<N, Adam<N::Params>, B>::new(Adam::keras_default()));
    group.bench_function(id("compute_gradients"), |bench| {
        bench.iter(|| black_box(trainer.compute_gradients(&model, &loss, data, indices, &mut rng)));
    });
    // The whole checked step on the same batch, for the sum of the parts above.
    group.bench_function(id("step"), |bench| {
        bench
            .iter(|| black_box(trainer.step(&mut updated, &loss, data, indices, &mut rng)).is_ok());
    });
    group.finish();
}

fn phases(c: &mut Criterion) {
    let reference = reference_model(&mut Xoshiro128PlusPlus::seed_from_u64(2));
    phases_for::<_, 32, 1>(c, "phases", reference, REFERENCE_SAMPLES);
    phases_for::<_, 32, 128>(c, "phases", reference, REFERENCE_SAMPLES);
    let tutorial = tutorial_model(&mut Xoshiro128PlusPlus::seed_from_u64(4));
    phases_for::<_, 30, 32>(c, "tutorial_phases", tutorial, TUTORIAL_SAMPLES);
    let tutorial = tutorial_in_place(&mut Xoshiro128PlusPlus::seed_from_u64(4));
    phases_for::<_, 30, 32>(c, "tutorial_in_place_phases", tutorial, TUTORIAL_SAMPLES);
}

/// The tutorial's `model.fit(x, y, epochs=10)` with batches of 32.
fn tutorial(c: &mut Criterion) {
    let mut group = c.benchmark_group("tutorial_10_epochs");
    let initial = tutorial_model(&mut Xoshiro128PlusPlus::seed_from_u64(4));
    for checked in [true, false] {
        let name = if checked { "checked" } else { "unchecked" };
        tutorial_run(&mut group, name, initial, checked);
    }
    let initial = tutorial_in_place(&mut Xoshiro128PlusPlus::seed_from_u64(4));
    tutorial_run(&mut group, "in_place_checked", initial, true);
    group.finish();
}

fn tutorial_run<N>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    initial: N,
    checked: bool,
) where
    N: Network<Input = [f32; 30], Output = [f32; 1], OutputActivation = Sigmoid> + Copy,
{
    let (x, y) = synthetic::<30>(TUTORIAL_SAMPLES, 3);
    let data = Dataset::new(&x, &y).unwrap_or_else(|e| unreachable!("{e}"));
    {
        group.bench_function(name, |bench| {
            bench.iter_custom(|runs| {
                let mut total = Duration::ZERO;
                for run in 0..runs {
                    let mut model = initial;
                    let mut trainer = Box::new(
                        Trainer::<N, Adam<N::Params>, 32>::new(Adam::keras_default())
                            .with_checked_updates(checked),
                    );
                    let mut rng = Xoshiro128PlusPlus::seed_from_u64(run);
                    let started = Instant::now();
                    let summary = trainer.fit(
                        &mut model,
                        &BinaryCrossEntropy,
                        data,
                        None,
                        &FitConfig::epochs(10),
                        &mut rng,
                        |_: &microtrain::EpochReport| microtrain::Control::Continue,
                    );
                    total += started.elapsed();
                    let skipped = summary.ok().and_then(|s| s.last).map(|r| r.skipped_steps);
                    assert_eq!(skipped, Some(0), "the run must train every batch");
                    black_box(&model);
                }
                total
            });
        });
    }
}

fn dropout_mask(c: &mut Criterion) {
    const ROWS: usize = 128;
    let mut group = c.benchmark_group("dropout_mask");
    group.throughput(Throughput::Elements((ROWS * 64) as u64));
    let layer = Dropout::<64>::new(0.5).unwrap_or_else(|e| unreachable!("{e}"));
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(5);
    let input: Vec<[f32; 64]> = (0..ROWS)
        .map(|_| std::array::from_fn(|_| uniform(&mut rng)))
        .collect();
    let mut output = vec![[0.0f32; 64]; ROWS];
    let mut seed = MaskSeed::ZERO;
    group.bench_function("forward_128x64", |bench| {
        bench.iter(|| layer.forward(black_box(&input), &mut output, &mut seed, &mut rng));
    });
    group.bench_function("replay_128x64", |bench| {
        bench.iter(|| layer.mask_factors(black_box(seed.get()), &mut output));
    });
    // A rate that is no short binary fraction takes one draw per unit.
    let layer = Dropout::<64>::new(0.2).unwrap_or_else(|e| unreachable!("{e}"));
    group.bench_function("forward_128x64_rate_0.2", |bench| {
        bench.iter(|| layer.forward(black_box(&input), &mut output, &mut seed, &mut rng));
    });
    group.finish();
}

fn adam(c: &mut Criterion) {
    let mut group = c.benchmark_group("adam");
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(6);
    let step = AdamStep {
        learning_rate: 1e-3,
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-7,
    };
    // The reference network's parameter count: what one of its steps updates.
    let n = <Reference as Network>::PARAMETERS;
    group.throughput(Throughput::Elements(n as u64));
    let g: Vec<f32> = (0..n).map(|_| 1e-2 * uniform(&mut rng)).collect();
    let mut w: Vec<f32> = (0..n).map(|_| uniform(&mut rng)).collect();
    let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
    type Update = fn(&mut [f32], &[f32], &mut [f32], &mut [f32], AdamStep);
    let sets: [(&str, Update); 2] = [
        ("scalar", kernels::scalar::adam_update),
        ("simd", kernels::simd::adam_update),
    ];
    for (set, update) in sets {
        group.bench_function(BenchmarkId::new(set, n), |bench| {
            bench.iter(|| update(&mut w, black_box(&g), &mut m, &mut v, step));
        });
    }
    // 1,024 parameters: their four arrays (16 KiB) stay in L1, where the reference
    // network's (101 KiB) do not. The same rate per parameter in both says that the update
    // is bound by its arithmetic (the divide and square root), not by memory.
    let l1 = 1024;
    let first = |values: &[f32]| values.iter().take(l1).copied().collect::<Vec<f32>>();
    let (mut w1, g1, mut m1, mut v1) = (first(&w), first(&g), first(&m), first(&v));
    group.throughput(Throughput::Elements(l1 as u64));
    group.bench_function(BenchmarkId::new("simd", l1), |bench| {
        bench.iter(|| kernels::simd::adam_update(&mut w1, black_box(&g1), &mut m1, &mut v1, step));
    });

    // One large layer: the optimizer's own loop over its tensors and state.
    type Wide = DenseParams<256, 256>;
    group.throughput(Throughput::Elements(<Wide as Parameters>::COUNT as u64));
    let mut params = Box::new(Wide::ZERO);
    let mut grads = Box::new(Wide::ZERO);
    for (p, d) in params.tensors_mut().zip(grads.tensors_mut()) {
        for (p, d) in p.iter_mut().zip(d) {
            (*p, *d) = (uniform(&mut rng), 1e-2 * uniform(&mut rng));
        }
    }
    let mut optimizer = Box::new(Adam::<Wide>::keras_default());
    group.bench_function(BenchmarkId::new("optimizer_step", Wide::COUNT), |bench| {
        bench.iter(|| optimizer.step(params.tensors_mut(), black_box(&*grads)));
    });
    group.bench_function(BenchmarkId::new("update_is_finite", Wide::COUNT), |bench| {
        bench.iter(|| black_box(optimizer.update_is_finite(params.tensors(), &grads)));
    });

    // The update check on layers whose state fits in L1 (8.4 KiB) and on the reference
    // network's (101 KiB, as above): the check does little arithmetic per value, so its
    // rate drops to what L2 delivers once the state leaves L1.
    update_check_rate::<DenseParams<32, 16>>(&mut group, &mut rng);
    update_check_rate::<<Reference as Network>::Params>(&mut group, &mut rng);
    group.finish();
}

fn update_check_rate<P: Parameters>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rng: &mut Xoshiro128PlusPlus,
) {
    group.throughput(Throughput::Elements(P::COUNT as u64));
    let params = Box::new(P::ZERO);
    let mut grads = Box::new(P::ZERO);
    for d in grads.tensors_mut() {
        d.iter_mut().for_each(|d| *d = 1e-2 * uniform(rng));
    }
    let optimizer = Box::new(Adam::<P>::keras_default());
    group.bench_function(BenchmarkId::new("update_is_finite", P::COUNT), |bench| {
        bench.iter(|| black_box(optimizer.update_is_finite(params.tensors(), &grads)));
    });
}

/// The dense kernels at the exact shapes of the two networks' layers (B × IN × OUT), every
/// set, to tell which layer a step's time goes to. Time per call.
fn layer_kernels(c: &mut Criterion) {
    type Forward = fn(&[f32], &[f32], &[f32], &mut [f32], Shape);
    type InputGradient = fn(&[f32], &[f32], &mut [f32], Shape);
    type WeightGradient = fn(&[f32], &[f32], &[f32], &mut [f32], Shape, Regularizer) -> f32;
    // "active": the set at `kernels`' root, which in a default x86_64 build (with `std`, as
    // here) dispatches to the AVX2 + FMA kernels at run time; "simd" is `wide`'s as compiled.
    const SETS: [(&str, Forward, InputGradient, WeightGradient); 3] = [
        (
            "scalar",
            kernels::scalar::dense_forward,
            kernels::scalar::dense_input_gradient,
            kernels::scalar::dense_weight_gradient,
        ),
        (
            "simd",
            kernels::simd::dense_forward,
            kernels::simd::dense_input_gradient,
            kernels::simd::dense_weight_gradient,
        ),
        (
            "active",
            kernels::dense_forward,
            kernels::dense_input_gradient,
            kernels::dense_weight_gradient,
        ),
    ];
    const SHAPES: [(usize, usize, usize); 8] = [
        (1, 32, 64),
        (1, 64, 64),
        (1, 64, 1),
        (128, 32, 64),
        (128, 64, 64),
        (128, 64, 1),
        (32, 30, 64),
        (32, 64, 1),
    ];
    let mut group = c.benchmark_group("layer_kernels");
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(9);
    let penalty = l2(1e-2).unwrap_or_default();
    for (rows, inputs, outputs) in SHAPES {
        let mut random = |n: usize| -> Vec<f32> { (0..n).map(|_| uniform(&mut rng)).collect() };
        let (x, w, b) = (
            random(rows * inputs),
            random(inputs * outputs),
            random(outputs),
        );
        let d_output = random(rows * outputs);
        let (mut y, mut d_input) = (vec![0.0f32; rows * outputs], vec![1.0f32; rows * inputs]);
        let mut d_weights = vec![0.0f32; inputs * outputs];
        let shape = Shape {
            rows,
            inputs,
            outputs,
        };
        let dims = format!("{rows}x{inputs}x{outputs}");
        for (set, forward, input_gradient, weight_gradient) in SETS {
            group.bench_function(BenchmarkId::new(format!("forward_{set}"), &dims), |bench| {
                bench.iter(|| forward(black_box(&x), &w, &b, &mut y, shape));
            });
            let id = BenchmarkId::new(format!("input_gradient_{set}"), &dims);
            group.bench_function(id, |bench| {
                bench.iter(|| {
                    // Multiplying into ones keeps the values bounded across iterations.
                    d_input.fill(1.0);
                    input_gradient(black_box(&d_output), &w, &mut d_input, shape);
                });
            });
            let id = BenchmarkId::new(format!("weight_gradient_{set}"), &dims);
            group.bench_function(id, |bench| {
                // The kernel overwrites `d_weights`: nothing to reset between calls.
                bench.iter(|| {
                    weight_gradient(black_box(&d_output), &x, &w, &mut d_weights, shape, penalty)
                });
            });
        }
    }
    group.finish();
}

type Prefix = (Dense<32, 64, Relu>, Dense<64, 64, Relu>);
type Unfrozen = (
    Dense<32, 64, Relu>,
    Dense<64, 64, Relu>,
    Dense<64, 1, Sigmoid>,
);
type FrozenPrefix = (
    Frozen<Dense<32, 64, Relu>>,
    Frozen<Dense<64, 64, Relu>>,
    Dense<64, 1, Sigmoid>,
);

fn frozen_prefix(c: &mut Criterion) {
    const B: usize = 32;
    let mut group = c.benchmark_group("frozen_prefix");
    group.throughput(Throughput::Elements(B as u64));
    let (x, y) = synthetic::<32>(REFERENCE_SAMPLES, 1);
    let data = Dataset::new(&x, &y).unwrap_or_else(|e| unreachable!("{e}"));
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(2);
    let mut unfrozen: Unfrozen = (Dense::new(Relu), Dense::new(Relu), Dense::new(Sigmoid));
    unfrozen.initialize(&mut rng);
    let order = batch_order::<B>(REFERENCE_SAMPLES, &mut rng);
    let prefix: Prefix = (unfrozen.0, unfrozen.1);
    let mut frozen: FrozenPrefix = (Frozen::new(unfrozen.0), Frozen::new(unfrozen.1), unfrozen.2);

    let mut workspace = Box::new(<Prefix as Network>::Workspace::<B>::ZERO);
    for (row, &k) in Prefix::input_rows(&mut workspace).iter_mut().zip(&order) {
        *row = x.get(k).copied().unwrap_or_default();
    }
    group.bench_function("prefix_forward", |bench| {
        bench.iter(|| prefix.forward(black_box(&mut *workspace), B, &mut rng));
    });

    fn steps_of<N>(
        group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        name: &str,
        model: &mut N,
        data: Dataset<'_, [f32; 32], [f32; 1]>,
        order: &[usize],
        rng: &mut Xoshiro128PlusPlus,
    ) where
        N: Network<Input = [f32; 32], Output = [f32; 1], OutputActivation = Sigmoid>,
    {
        let mut trainer = Box::new(Trainer::<N, Adam<N::Params>, B>::new(Adam::keras_default()));
        let (mut start, mut refused) = (0, 0usize);
        group.bench_function(name, |bench| {
            bench.iter(|| {
                let indices = order.get(start..start + B).unwrap_or_default();
                start = (start + B) % REFERENCE_SAMPLES;
                let report = trainer.step(model, &BinaryCrossEntropy, data, indices, rng);
                refused += usize::from(report.is_err());
                black_box(report)
            });
        });
        assert_eq!(refused, 0, "{name}: {refused} steps were refused");
    }
    steps_of(&mut group, "step", &mut frozen, data, &order, &mut rng);
    steps_of(
        &mut group,
        "step_unfrozen",
        &mut unfrozen,
        data,
        &order,
        &mut rng,
    );
    group.finish();
}

criterion_group!(
    benches,
    frozen_prefix,
    steps,
    tutorial,
    phases,
    dropout_mask,
    adam,
    layer_kernels
);
criterion_main!(benches);
