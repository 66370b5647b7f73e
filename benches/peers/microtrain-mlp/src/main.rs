//! Task B (and task A's timing) in microtrain, timed exactly as ../dfdx-mlp times dfdx.
//!
//! Copied from the shared peer harness with two changes: microtrain's `std` feature (the run-time
//! dispatch to AVX2 + FMA / AVX-512 needs it: without it a default build is the SSE2 one) and
//! `evaluate` returning a `Result`. The timing method is unchanged.
//!
//! Task B: 32 -> 64 relu -> Dropout(0.5) -> 64 relu -> Dropout(0.5) -> 1 sigmoid; binary
//! cross-entropy (microtrain fuses it with the sigmoid); Adam lr 1e-3, betas 0.9/0.999, eps 1e-8
//! (dfdx's); l2(1e-4) as kernel regularizer on all three Dense kernels (dfdx also decays biases;
//! JAX/candle: the three kernels). Inputs N(0,1) (Box-Muller on xoshiro128++), labels from the
//! same LCG as dfdx-mlp; 64 pre-made batches of B cycled (sample indices (i % 64)·B ..; data
//! creation not timed, dropout masks are). One step = `Trainer::step` on the batch's indices with
//! the default checked updates, as a user calls it; its loss is read every step. 20 warm-up
//! steps, calibrate a block to ~0.3 s, 7 blocks; JSON line with the median and best block.
//!
//! Task A timing (`tutorial`): 30 -> 64 relu l2(0.01) -> Dropout(0.5) -> 1 sigmoid, Adam with
//! Keras' defaults, B = 32, `Trainer::fit` for 10 epochs (shuffled) over 455 synthetic samples
//! (the breast-cancer training split's shape: N(0,1) features, labels of a linear rule with 10 %
//! flipped; a step's work does not depend on the values). Each run re-initializes model and
//! trainer outside the timed part; 7 blocks of runs (~0.3 s each); median and best ms per fit.
//! `tutorial-fisher-yates`: the same fits through `Trainer::fit_with_shuffle_buffer` (a
//! Fisher–Yates shuffle over a `[u16; 455]` the caller owns) instead of `fit`'s swap-or-not
//! shuffle, task `tutorial_10_epochs_fisher_yates`.
//!
//! Usage: microtrain-mlp [all|steps|tutorial|tutorial-fisher-yates]
//! (default all: B = 1, 8, 32, 128, then both tutorials)
//!
//! Diagnostic only (not what a user gets): with FTZ=1 in the environment on
//! x86_64 the program sets MXCSR's flush-to-zero and denormals-are-zero bits before training, to show
//! how much of a step's time subnormal values cost (weights of dead ReLU units decay into subnormals
//! under l2 + Adam in long runs at B = 1).
use microtrain::{
    Adam, BinaryCrossEntropy, Control, Dataset, Dense, Dropout, EpochReport, FitConfig, Network,
    Relu, Rng, SeedableRng, Sigmoid, Trainer, Xoshiro128PlusPlus, evaluate, l2,
};
use std::hint::black_box;
use std::time::Instant;

const FRAMEWORK: &str = "microtrain 0.1.0";
// The framework name printed; marks diagnostic runs.
fn framework() -> &'static str {
    if std::env::var_os("FTZ").is_some_and(|v| v == "1") { "microtrain 0.1.0 (FTZ+DAZ)" } else { FRAMEWORK }
}

type Mlp = (
    Dense<32, 64, Relu>,
    Dropout<64>,
    Dense<64, 64, Relu>,
    Dropout<64>,
    Dense<64, 1, Sigmoid>,
);
type Tutorial = (Dense<30, 64, Relu>, Dropout<64>, Dense<64, 1, Sigmoid>);

fn normal(rng: &mut Xoshiro128PlusPlus) -> f32 {
    // Box-Muller; u1 in (0, 1].
    let u1 = ((rng.next_u32() >> 8) as f64 + 1.0) / (1u64 << 24) as f64;
    let u2 = (rng.next_u32() >> 8) as f64 / (1u64 << 24) as f64;
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

fn fail(what: &str) -> ! {
    eprintln!("microtrain-mlp: {what}");
    std::process::exit(1)
}

fn bench<const B: usize>() {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(B as u64);
    let penalty = l2(1e-4).unwrap_or_else(|e| fail(&e.to_string()));
    let dropout = Dropout::new(0.5).unwrap_or_else(|e| fail(&e.to_string()));
    let mut model: Mlp = (
        Dense::new(Relu).with_kernel_regularizer(penalty),
        dropout,
        Dense::new(Relu).with_kernel_regularizer(penalty),
        dropout,
        Dense::new(Sigmoid).with_kernel_regularizer(penalty),
    );
    model.initialize(&mut rng);
    let adam = Adam::new(1e-3)
        .and_then(|a| a.with_betas(0.9, 0.999))
        .and_then(|a| a.with_epsilon(1e-8))
        .unwrap_or_else(|e| fail(&e.to_string()));
    let mut trainer = Box::new(Trainer::<Mlp, Adam<<Mlp as Network>::Params>, B>::new(adam));
    // 64 batches of B samples, batch k = samples k·B .. (k+1)·B.
    let xs: Vec<[f32; 32]> = (0..64 * B).map(|_| std::array::from_fn(|_| normal(&mut rng))).collect();
    let mut seed = 12345u64 + B as u64;
    let ys: Vec<[f32; 1]> = (0..64 * B)
        .map(|_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            [((seed >> 63) & 1) as f32]
        })
        .collect();
    let data = Dataset::new(&xs, &ys).unwrap_or_else(|e| fail(&e.to_string()));
    let indices: Vec<usize> = (0..64 * B).collect();
    let loss = BinaryCrossEntropy;
    let mut last = 0f32;
    let mut refused = 0usize;
    let mut step = |i: usize| {
        let k = i % 64;
        match trainer.step(&mut model, &loss, data, &indices[k * B..(k + 1) * B], &mut rng) {
            Ok(report) => last = black_box(report.loss),
            Err(_) => refused += 1,
        }
    };
    for i in 0..20 { step(i); }
    let mut n = 50usize;
    loop {
        let t = Instant::now();
        for i in 0..n { step(i); }
        let dt = t.elapsed().as_secs_f64();
        if dt > 0.1 { n = ((n as f64) * 0.3 / dt).max(20.0) as usize; break; }
        n *= 2;
    }
    let mut sps: Vec<f64> = (0..7).map(|_| {
        let t = Instant::now();
        for i in 0..n { step(i); }
        (n * B) as f64 / t.elapsed().as_secs_f64()
    }).collect();
    if refused > 0 { fail(&format!("B={B}: {refused} steps refused (a refused step does less work)")); }
    sps.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    println!("{{\"framework\":\"{}\",\"batch\":{},\"samples_per_s_median\":{:.1},\"samples_per_s_best\":{:.1},\"step_us_median\":{:.2},\"last_loss\":{:.4}}}",
             framework(), B, sps[3], sps[6], 1e6 * B as f64 / sps[3], last);
}

fn tutorial(fisher_yates: bool) {
    const SAMPLES: usize = 455;
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(4);
    let direction: [f32; 30] = std::array::from_fn(|_| normal(&mut rng));
    let xs: Vec<[f32; 30]> = (0..SAMPLES).map(|_| std::array::from_fn(|_| normal(&mut rng))).collect();
    let ys: Vec<[f32; 1]> = xs.iter().map(|x| {
        let score: f32 = x.iter().zip(&direction).map(|(a, b)| a * b).sum();
        let flip = rng.next_u32() % 10 == 0;
        [f32::from(u8::from((score > 0.0) != flip))]
    }).collect();
    let data = Dataset::new(&xs, &ys).unwrap_or_else(|e| fail(&e.to_string()));
    let mut initial: Tutorial = (
        Dense::new(Relu).with_kernel_regularizer(l2(0.01).unwrap_or_else(|e| fail(&e.to_string()))),
        Dropout::new(0.5).unwrap_or_else(|e| fail(&e.to_string())),
        Dense::new(Sigmoid),
    );
    initial.initialize(&mut rng);
    let config = FitConfig::epochs(10);
    let mut run_seed = 0u64;
    let (mut last_loss, mut last_acc, mut skipped) = (0f32, 0f32, 0usize);
    let mut order = [0u16; SAMPLES];
    // One fit of 10 epochs; returns seconds (model and trainer built outside the timed part).
    let mut run = || {
        let mut model = initial;
        let mut trainer = Box::new(Trainer::<Tutorial, Adam<<Tutorial as Network>::Params>, 32>::new(Adam::keras_default()));
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(run_seed);
        run_seed += 1;
        let t = Instant::now();
        let summary = if fisher_yates {
            trainer.fit_with_shuffle_buffer(&mut model, &BinaryCrossEntropy, data, None, &config, &mut rng,
                                            &mut order, |_: &EpochReport| Control::Continue)
        } else {
            trainer.fit(&mut model, &BinaryCrossEntropy, data, None, &config, &mut rng,
                        |_: &EpochReport| Control::Continue)
        };
        let dt = t.elapsed().as_secs_f64();
        let report = summary.ok().and_then(|s| s.last);
        last_loss = report.map_or(f32::NAN, |r| r.train.loss);
        skipped += report.map_or(1, |r| r.skipped_steps);
        last_acc = evaluate(black_box(&model), &BinaryCrossEntropy, data).ok().and_then(|m| m.accuracy).unwrap_or(f32::NAN);
        dt
    };
    for _ in 0..20 { run(); }
    let mut n = 10usize;
    loop {
        let dt: f64 = (0..n).map(|_| run()).sum();
        if dt > 0.1 { n = ((n as f64) * 0.3 / dt).max(20.0) as usize; break; }
        n *= 2;
    }
    let mut ms: Vec<f64> = (0..7).map(|_| 1e3 * (0..n).map(|_| run()).sum::<f64>() / n as f64).collect();
    if skipped > 0 { fail(&format!("tutorial: {skipped} steps refused")); }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    println!("{{\"framework\":\"{}\",\"task\":\"{}\",\"fit_ms_median\":{:.4},\"fit_ms_best\":{:.4},\"step_ms_median\":{:.5},\"steps\":150,\"final_train_loss\":{:.4},\"train_acc\":{:.4}}}",
             framework(), if fisher_yates { "tutorial_10_epochs_fisher_yates" } else { "tutorial_10_epochs" }, ms[3], ms[0], ms[3] / 150.0, last_loss, last_acc);
}

#[cfg(target_arch = "x86_64")]
#[allow(deprecated, unsafe_code)]
fn flush_subnormals() {
    // SAFETY: sets MXCSR's FTZ (bit 15) and DAZ (bit 6) for this thread; changes rounding of no normal value.
    unsafe { std::arch::x86_64::_mm_setcsr(std::arch::x86_64::_mm_getcsr() | 0x8040) };
}
#[cfg(not(target_arch = "x86_64"))]
fn flush_subnormals() {
    fail("FTZ=1 is only implemented on x86_64");
}

fn main() {
    if std::env::var_os("FTZ").is_some_and(|v| v == "1") {
        flush_subnormals();
        eprintln!("microtrain-mlp: FTZ+DAZ set (diagnostic)");
    }
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if what == "all" || what == "steps" {
        bench::<1>();
        bench::<8>();
        bench::<32>();
        bench::<128>();
    }
    if what == "all" || what == "tutorial" {
        tutorial(false);
    }
    if what == "all" || what == "tutorial-fisher-yates" {
        tutorial(true);
    }
}
