//! Training, evaluation and prediction never touch the heap.
//!
//! A counting global allocator wraps the system allocator and counts, per thread, every
//! allocation made while a closure runs (cargo runs tests on parallel threads, so a global
//! count would pick up other tests' allocations).
// `GlobalAlloc` is an unsafe trait: this test needs unsafe code that the library forbids.
#![allow(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use microtrain::*;

thread_local! {
    // `const` initialisation with a type that needs no destructor: reading it never
    // allocates, so the allocator can use it without recursing.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with` fails only while the thread is being torn down; nothing is measured then.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

struct CountingAllocator;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`; counting touches no memory
// that the allocator hands out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: the caller upholds `alloc`'s contract, which is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `f` and returns its result with the number of allocations this thread made in it.
fn allocations_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let result = f();
    let after = ALLOCATIONS.with(Cell::get);
    (result, after - before)
}

#[test]
fn the_counter_sees_allocations() {
    // Without this, a counter that never counts would pass every test below.
    let (_, boxed) = allocations_during(|| black_box(Box::new(black_box(7u64))));
    assert!(boxed >= 1, "a Box allocation was not counted ({boxed})");
    let (_, grown) = allocations_during(|| {
        let mut v = black_box(Vec::<u32>::with_capacity(1));
        v.extend(0..black_box(100));
        black_box(v)
    });
    assert!(
        grown >= 2,
        "a Vec allocation and its growth counted {grown}"
    );
}

type Net = (
    Dense<4, 16, Relu>,
    Dropout<16>,
    Dense<16, 8, Tanh>,
    Dense<8, 3, Softmax>,
);
type Opt = Adam<<Net as Network>::Params>;
const BATCH: usize = 8;

fn samples(count: usize, seed: u64) -> (Vec<[f32; 4]>, Vec<usize>) {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    let mut unit = move || (rng.next_u32() >> 8) as f32 / 16_777_216.0;
    let x: Vec<[f32; 4]> = (0..count)
        .map(|_| core::array::from_fn(|_| 2.0 * unit() - 1.0))
        .collect();
    let y = x
        .iter()
        .map(|s| usize::from(s[0] > 0.0) + usize::from(s[1] > 0.3))
        .collect();
    (x, y)
}

fn model(rng: &mut Xoshiro128PlusPlus) -> Net {
    let mut model: Net = (
        Dense::new(Relu).with_kernel_regularizer(l1_l2(1e-4, 1e-3).unwrap()),
        Dropout::new(0.25).unwrap(),
        Dense::new(Tanh).with_bias_regularizer(l1_l2(1e-4, 1e-3).unwrap()),
        Dense::new(Softmax),
    );
    model.initialize(rng);
    model
}

#[test]
fn fit_allocates_nothing() {
    // 45 samples in batches of 8: the last batch of every epoch is partial.
    let (x, y) = samples(45, 1);
    let (vx, vy) = samples(20, 2);
    let train = Dataset::new(&x, &y).unwrap();
    let validation = Dataset::new(&vx, &vy).unwrap();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
    let mut model = model(&mut rng);
    let mut trainer = Trainer::<Net, Opt, BATCH>::new(Opt::new(0.01).unwrap());
    let config = FitConfig::epochs(8).with_patience(3);
    let mut losses = [f32::NAN; 8];

    let (summary, allocations) = allocations_during(|| {
        trainer.fit(
            &mut model,
            &SparseCategoricalCrossEntropy::<usize>::new(),
            train,
            Some(validation),
            &config,
            &mut rng,
            |r: &EpochReport| {
                if let Some(slot) = losses.get_mut(r.epoch) {
                    *slot = r.validation.map_or(f32::NAN, |m| m.loss);
                }
                Control::Continue
            },
        )
    });
    let summary = summary.unwrap();
    assert_eq!(
        allocations, 0,
        "fit allocated {allocations} times over {} epochs",
        summary.epochs
    );
    assert!(
        summary.epochs >= 2,
        "fit ran only {} epochs",
        summary.epochs
    );
    assert!(
        losses.iter().take(summary.epochs).all(|l| l.is_finite()),
        "validation was not evaluated every epoch: {losses:?}"
    );
}

#[test]
fn early_stopping_and_refused_steps_allocate_nothing() {
    // A sample with a NaN makes its batch's step fail; a tiny patience stops the run early.
    let (mut x, y) = samples(30, 4);
    x[5][2] = f32::NAN;
    let train = Dataset::new(&x, &y).unwrap();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(5);
    let mut model = model(&mut rng);
    let mut trainer = Trainer::<Net, Opt, BATCH>::new(Opt::new(1e-6).unwrap()).with_best_weights();
    // Restoring the best weights and lowering the learning rate allocate nothing either.
    let rule = EarlyStopping::new(Monitor::Loss)
        .with_min_delta(1.0)
        .unwrap()
        .with_restore_best_weights(true);
    let config = FitConfig::epochs(50)
        .with_early_stopping(rule)
        .with_reduce_lr_on_plateau(ReduceLrOnPlateau::new(Monitor::Loss).with_patience(0))
        .with_refused_steps(RefusedSteps::Skip { max: usize::MAX });
    let (summary, allocations) = allocations_during(|| {
        trainer.fit(
            &mut model,
            &SparseCategoricalCrossEntropy::<usize>::new(),
            train,
            None,
            &config,
            &mut rng,
            |_: &EpochReport| Control::Continue,
        )
    });
    let summary = summary.unwrap();
    assert_eq!(allocations, 0, "fit allocated {allocations} times");
    assert!(
        summary.stopped_early,
        "the run did not stop early: {summary:?}"
    );
    assert!(
        summary.last.is_some_and(|r| r.skipped_steps == 1),
        "expected one refused step per epoch: {summary:?}"
    );
}

#[test]
fn step_and_compute_gradients_allocate_nothing() {
    let (x, y) = samples(12, 6);
    let data = Dataset::new(&x, &y).unwrap();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(7);
    let mut model = model(&mut rng);
    let mut trainer = Trainer::<Net, Opt, BATCH>::new(Opt::new(0.01).unwrap());
    let loss = SparseCategoricalCrossEntropy::<usize>::new();
    let (reports, allocations) = allocations_during(|| {
        let a = trainer.compute_gradients(&model, &loss, data, &[0, 1, 2, 3, 4, 5, 6, 7], &mut rng);
        let b = trainer.step(&mut model, &loss, data, &[8, 9, 10], &mut rng);
        (a, b)
    });
    assert_eq!(allocations, 0, "a step allocated {allocations} times");
    assert!(reports.0.is_ok() && reports.1.is_ok(), "{reports:?}");
}

#[test]
fn evaluate_and_predict_allocate_nothing() {
    let (x, y) = samples(40, 8);
    let data = Dataset::new(&x, &y).unwrap();
    let model = model(&mut Xoshiro128PlusPlus::seed_from_u64(9));
    let mut outputs = vec![[0.0f32; 3]; x.len()];
    let (metrics, allocations) = allocations_during(|| {
        let metrics =
            evaluate(&model, &SparseCategoricalCrossEntropy::<usize>::new(), data).unwrap();
        predict(&model, &x, &mut outputs);
        metrics
    });
    assert_eq!(
        allocations, 0,
        "evaluate + predict allocated {allocations} times"
    );
    assert!(metrics.loss.is_finite(), "{metrics:?}");
    assert!(
        outputs
            .iter()
            .all(|p| (p.iter().sum::<f32>() - 1.0).abs() < 1e-5),
        "predict did not fill the outputs: {:?}",
        &outputs[..3]
    );
}

#[test]
fn learning_from_a_stream_with_a_frozen_prefix_allocates_nothing() {
    type Adapted = (
        Frozen<Dense<4, 16, Relu>>,
        Dropout<16>,
        Dense<16, 8, Tanh>,
        Dense<8, 3, Softmax>,
    );
    type AdaptedOpt = Adam<<Adapted as Network>::Params>;
    let (x, y) = samples(60, 10);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(11);
    let host = model(&mut rng);
    let mut model: Adapted = (Frozen::new(host.0), host.1, host.2, host.3);
    let mut trainer = Trainer::<Adapted, AdaptedOpt, BATCH>::new(AdaptedOpt::new(0.01).unwrap());
    let mut buffer = Box::new(microtrain::ReplayBuffer::<[f32; 4], usize, 16>::new());
    let loss = SparseCategoricalCrossEntropy::<usize>::new();
    // 60 samples into 16 slots: the buffer fills, then replaces and drops.
    let (refused, allocations) = allocations_during(|| {
        x.iter()
            .zip(&y)
            .filter(|(x, y)| {
                buffer
                    .learn(&mut trainer, &mut model, &loss, **x, **y, &mut rng)
                    .is_err()
            })
            .count()
    });
    assert_eq!(
        allocations, 0,
        "learning from the stream allocated {allocations} times"
    );
    assert_eq!(refused, 0);
    assert_eq!((buffer.len(), buffer.seen()), (16, 60));
}
