//! The same seed gives the same training run, bit for bit, within one build; another seed
//! gives another run. The runs use everything that draws random numbers or could depend on
//! state left behind: initialisation, shuffling, dropout masks, an L1+L2 penalty, Adam's
//! moments and a last batch smaller than the others.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use microtrain::*;

type Net = (
    Dense<4, 16, Relu>,
    Dropout<16>,
    Dense<16, 8, Tanh>,
    Dense<8, 3, Softmax>,
);
type Opt = Adam<<Net as Network>::Params>;
/// 50 samples in batches of 8: six full batches and a last one of 2.
const SAMPLES: usize = 50;
const BATCH: usize = 8;
const EPOCHS: usize = 6;

fn data() -> (Vec<[f32; 4]>, Vec<usize>) {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1234);
    let mut unit = move || (rng.next_u32() >> 8) as f32 / 16_777_216.0;
    let x: Vec<[f32; 4]> = (0..SAMPLES)
        .map(|_| core::array::from_fn(|_| 2.0 * unit() - 1.0))
        .collect();
    let y = x
        .iter()
        .map(|s| usize::from(s[0] + s[1] > 0.0) + usize::from(s[2] > 0.5))
        .collect();
    (x, y)
}

struct Run {
    parameters: Vec<f32>,
    epoch_losses: Vec<f32>,
}

fn train(seed: u64) -> Run {
    assert_ne!(SAMPLES % BATCH, 0, "the last batch must be partial");
    let (x, y) = data();
    let data = Dataset::new(&x, &y).unwrap();
    let mut model: Net = (
        Dense::new(Relu).with_kernel_regularizer(l1_l2(1e-3, 1e-2).unwrap()),
        Dropout::new(0.3).unwrap(),
        Dense::new(Tanh).with_bias_regularizer(l2(1e-3).unwrap()),
        Dense::new(Softmax),
    );
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    model.initialize(&mut rng);
    let mut trainer = Trainer::<Net, Opt, BATCH>::new(Opt::new(0.01).unwrap());
    let mut epoch_losses = Vec::new();
    let summary = trainer
        .fit(
            &mut model,
            &SparseCategoricalCrossEntropy::<usize>::new(),
            data,
            None,
            &FitConfig::epochs(EPOCHS),
            &mut rng,
            |r: &EpochReport| {
                epoch_losses.push(r.train.loss);
                Control::Continue
            },
        )
        .unwrap();
    assert_eq!(summary.epochs, EPOCHS);
    assert_eq!(
        summary.last.map(|r| r.skipped_steps),
        Some(0),
        "a step was refused"
    );
    Run {
        parameters: model.parameters().flatten().copied().collect(),
        epoch_losses,
    }
}

fn differing_bits(a: &[f32], b: &[f32]) -> Vec<(usize, f32, f32)> {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .enumerate()
        .filter(|(_, (x, y))| x.to_bits() != y.to_bits())
        .map(|(k, (&x, &y))| (k, x, y))
        .collect()
}

#[test]
fn same_seed_gives_identical_weights() {
    let (a, b) = (train(42), train(42));
    let differing = differing_bits(&a.parameters, &b.parameters);
    assert!(
        differing.is_empty(),
        "{} of {} parameters differ between two runs with seed 42 (index, run 1, run 2): {:?}",
        differing.len(),
        a.parameters.len(),
        &differing[..differing.len().min(5)]
    );
    let differing = differing_bits(&a.epoch_losses, &b.epoch_losses);
    assert!(
        differing.is_empty(),
        "epoch losses differ: {:?} vs {:?}",
        a.epoch_losses,
        b.epoch_losses
    );
}

#[test]
fn different_seeds_give_different_weights() {
    let (a, b) = (train(42), train(43));
    let differing = differing_bits(&a.parameters, &b.parameters).len();
    // Different initial weights, shuffles and masks leave no parameter where it would be;
    // only parameters that stay at exactly 0 could agree, and no penalty here pins them.
    assert!(
        differing * 10 >= a.parameters.len() * 9,
        "only {differing} of {} parameters differ between seeds 42 and 43",
        a.parameters.len()
    );
}

#[test]
fn same_initial_weights_with_another_training_seed_differ() {
    // The generator passed to `fit` drives shuffling and dropout: a run from the same
    // initial weights with another generator must end elsewhere.
    let (x, y) = data();
    let data = Dataset::new(&x, &y).unwrap();
    let mut initial: Net = (
        Dense::new(Relu),
        Dropout::new(0.3).unwrap(),
        Dense::new(Tanh),
        Dense::new(Softmax),
    );
    initial.initialize(&mut Xoshiro128PlusPlus::seed_from_u64(7));
    let run = |seed: u64| {
        let mut model = initial;
        let mut trainer = Trainer::<Net, Opt, BATCH>::new(Opt::new(0.01).unwrap());
        trainer
            .fit(
                &mut model,
                &SparseCategoricalCrossEntropy::<usize>::new(),
                data,
                None,
                &FitConfig::epochs(2),
                &mut Xoshiro128PlusPlus::seed_from_u64(seed),
                |_: &EpochReport| Control::Continue,
            )
            .unwrap();
        model.parameters().flatten().copied().collect::<Vec<f32>>()
    };
    let (a, b, c) = (run(1), run(1), run(2));
    assert!(
        differing_bits(&a, &b).is_empty(),
        "same training seed, different weights"
    );
    let differing = differing_bits(&a, &c).len();
    assert!(
        differing * 10 >= a.len() * 9,
        "only {differing} of {} parameters differ between training seeds 1 and 2",
        a.len()
    );
}
