//! The replay buffer: a uniform sample of the stream, the same seed gives the same buffer
//! and weights, a full buffer replaces or drops (never fails), a refused step stores nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use microtrain::replay::{Offered, ReplayBuffer};
use microtrain::*;

fn rng(seed: u64) -> Xoshiro128PlusPlus {
    Xoshiro128PlusPlus::seed_from_u64(seed)
}

#[test]
fn the_buffer_holds_a_uniform_sample_of_the_stream() {
    // 100 samples offered to a 10-slot buffer, 20,000 times with different seeds: each
    // sample must be kept with probability 10/100, so its count is Binomial(20000, 0.1):
    // mean 2000, standard deviation 42.4. Every count must lie within 5 standard
    // deviations (a false alarm somewhere among the 100 has probability below 1e-4; the
    // seeds are fixed, so the test is deterministic). A buffer that favoured recent
    // samples (e.g. always replacing) would keep the last ones far more often.
    const STREAM: usize = 100;
    const CAP: usize = 10;
    const TRIALS: usize = 20_000;
    let mut kept = [0usize; STREAM];
    let mut r = rng(1);
    for _ in 0..TRIALS {
        let mut buffer = ReplayBuffer::<[f32; 1], u32, CAP>::new();
        for k in 0..STREAM {
            buffer.offer([k as f32], k as u32, &mut r);
        }
        assert_eq!(buffer.len(), CAP);
        for (&target, sample) in buffer.targets().iter().zip(buffer.samples()) {
            assert_eq!(
                sample[0], target as f32,
                "a sample and its target stay together"
            );
            kept[target as usize] += 1;
        }
    }
    let p = CAP as f64 / STREAM as f64;
    let mean = TRIALS as f64 * p;
    let sd = (TRIALS as f64 * p * (1.0 - p)).sqrt();
    for (k, &count) in kept.iter().enumerate() {
        assert!(
            (count as f64 - mean).abs() <= 5.0 * sd,
            "sample {k} kept {count} times, expected {mean} ± {:.0}",
            5.0 * sd
        );
    }
    // The first and last halves, pooled (sd 300): no drift from old to new either.
    let first: usize = kept[..STREAM / 2].iter().sum();
    let last: usize = kept[STREAM / 2..].iter().sum();
    let half_sd = (TRIALS as f64 * CAP as f64 * 0.25).sqrt();
    assert!((first as f64 - last as f64).abs() <= 5.0 * 2f64.sqrt() * half_sd);
}

#[test]
fn a_full_buffer_replaces_or_drops_and_never_fails() {
    let mut buffer = ReplayBuffer::<[f32; 2], u8, 3>::new();
    let mut r = rng(2);
    assert!(buffer.is_empty());
    for k in 0..3 {
        assert_eq!(
            buffer.offer([k as f32; 2], k, &mut r),
            Offered::Stored(usize::from(k))
        );
    }
    let (mut replaced, mut dropped) = (0, 0);
    for k in 3..1000u32 {
        match buffer.offer([k as f32; 2], (k % 251) as u8, &mut r) {
            Offered::Replaced(slot) => {
                assert!(slot < 3);
                replaced += 1;
            }
            Offered::Dropped => dropped += 1,
            Offered::Stored(_) => panic!("the buffer is full"),
        }
        assert_eq!(buffer.len(), 3);
    }
    assert_eq!(buffer.seen(), 1000);
    // Expected replacements: Σ 3/n for n = 4..1000 ≈ 3·(ln 1000 - ln 3) ≈ 17.4.
    assert!((5..=40).contains(&replaced), "{replaced} replacements");
    assert_eq!(replaced + dropped, 997);
    // One slot: still a uniform sample of one.
    let mut one = ReplayBuffer::<[f32; 1], u8, 1>::new();
    for k in 0..50 {
        one.offer([f32::from(k)], k, &mut r);
    }
    assert_eq!(one.len(), 1);
}

type Net = (Dense<4, 8, Tanh>, Dropout<8>, Dense<8, 3, Softmax>);

fn stream(len: usize) -> Vec<([f32; 4], usize)> {
    let mut r = rng(3);
    (0..len)
        .map(|_| {
            let x: [f32; 4] = core::array::from_fn(|_| rng::unit_f32(&mut r) * 2.0 - 1.0);
            let label = usize::from(x[0] > 0.0) + usize::from(x[1] > x[2]);
            (x, label)
        })
        .collect()
}

fn learn_stream(seed: u64) -> (Vec<u32>, Vec<u32>) {
    let mut r = rng(seed);
    let mut model: Net = (
        Dense::new(Tanh),
        Dropout::new(0.25).unwrap(),
        Dense::new(Softmax),
    );
    model.initialize(&mut r);
    let mut trainer =
        Trainer::<Net, Adam<<Net as Network>::Params>, 6>::new(Adam::new(0.01).unwrap());
    let mut buffer = ReplayBuffer::<[f32; 4], usize, 32>::new();
    let loss = SparseCategoricalCrossEntropy::<usize>::new();
    for (x, y) in stream(400) {
        buffer
            .learn(&mut trainer, &mut model, &loss, x, y, &mut r)
            .unwrap();
    }
    let weights = model.parameters().flatten().map(|w| w.to_bits()).collect();
    let stored = buffer
        .samples()
        .iter()
        .flatten()
        .map(|v| v.to_bits())
        .collect();
    (weights, stored)
}

#[test]
fn the_same_seed_gives_the_same_buffer_and_weights() {
    let (weights, stored) = learn_stream(7);
    assert_eq!(stored.len(), 32 * 4);
    assert_eq!(learn_stream(7), (weights.clone(), stored.clone()));
    let (other_weights, other_stored) = learn_stream(8);
    assert_ne!(other_weights, weights);
    assert_ne!(other_stored, stored);
}

#[test]
fn a_refused_step_leaves_model_and_buffer_as_they_were() {
    let mut r = rng(4);
    let mut model: Net = (
        Dense::new(Tanh),
        Dropout::new(0.25).unwrap(),
        Dense::new(Softmax),
    );
    model.initialize(&mut r);
    let mut trainer = Trainer::<Net, Sgd, 4>::new(Sgd::new(0.1).unwrap());
    let mut buffer = ReplayBuffer::<[f32; 4], usize, 8>::new();
    let loss = SparseCategoricalCrossEntropy::<usize>::new();
    for (x, y) in stream(5) {
        buffer
            .learn(&mut trainer, &mut model, &loss, x, y, &mut r)
            .unwrap();
    }
    let (before, stored, seen) = (model, buffer.samples().to_vec(), buffer.seen());
    let generator = r.clone();
    let refused = buffer.learn(&mut trainer, &mut model, &loss, [f32::NAN; 4], 0, &mut r);
    assert_eq!(refused, Err(Error::NonFinite));
    let refused = buffer.learn(&mut trainer, &mut model, &loss, [0.5; 4], 3, &mut r);
    assert!(
        matches!(refused, Err(Error::LabelOutOfRange { .. })),
        "{refused:?}"
    );
    assert_eq!(model, before);
    assert_eq!((buffer.samples(), buffer.seen()), (&stored[..], seen));
    assert_eq!(
        r, generator,
        "a refused step leaves the generator as it was"
    );
}

#[test]
fn with_batch_one_it_is_one_sample_sgd() {
    let loss = SparseCategoricalCrossEntropy::<usize>::new();
    let mut model: (Dense<4, 3, Softmax>,) = (Dense::new(Softmax),);
    model.initialize(&mut rng(5));
    let mut plain = model;
    let mut trainer = Trainer::<_, Sgd, 1>::new(Sgd::new(0.1).unwrap());
    let mut plain_trainer = Trainer::<_, Sgd, 1>::new(Sgd::new(0.1).unwrap());
    let mut buffer = ReplayBuffer::<[f32; 4], usize, 4>::new();
    let (mut r, mut plain_r) = (rng(6), rng(6));
    for (x, y) in stream(50) {
        buffer
            .learn(&mut trainer, &mut model, &loss, x, y, &mut r)
            .unwrap();
        let (xs, ys) = ([x], [y]);
        plain_trainer
            .step(
                &mut plain,
                &loss,
                Dataset::new(&xs, &ys).unwrap(),
                &[0],
                &mut plain_r,
            )
            .unwrap();
    }
    assert_eq!(model, plain);
}
