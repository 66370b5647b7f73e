//! Learning from a stream that shifts: what a replay buffer buys against one-sample SGD.
//!
//! ```text
//! cargo run --release --example stream
//! ```
//!
//! Digits (1797 images of 8×8 pixels, divided by 16): a stratified test set of 597, the
//! other 1200 form the stream. The stream shows the digits 0–4 first ("old" part, 600
//! samples in a random order), then only 5–9 ("new" part): a device whose users changed.
//! Each sample is seen once and triggers one Adam step (lr 5e-3 in both, Keras' other defaults)
//! of a 64 → 32 relu → 10 softmax network:
//! - `one-sample SGD`: on the new sample alone (B = 1);
//! - `replay`: on the new sample and 15 drawn from a 200-sample `ReplayBuffer` (B = 16).
//!
//! Printed: test accuracy on the old digits after the old part and at the end (the
//! difference is what was forgotten), on the new digits at the end, and overall; means over
//! `--seeds` seeds (default 5), which draw the initial weights, the stream's order and the
//! replayed samples.

#[path = "common/mod.rs"]
mod common;

use common::{Result, gather, load_csv};
use microtrain::replay::ReplayBuffer;
use microtrain::rng::Permutation;
use microtrain::*;

type Net = (Dense<64, 32, Relu>, Dense<32, 10, Softmax>);
const CAPACITY: usize = 200;
const TEST_LEN: usize = 597;
const LEARNING_RATE: f32 = 5e-3;

/// Accuracy on the test samples whose label satisfies `keep`.
fn accuracy(model: &Net, x: &[[f32; 64]], y: &[u8], keep: impl Fn(u8) -> bool) -> f32 {
    let (mut right, mut total) = (0usize, 0usize);
    for (sample, &label) in x.iter().zip(y) {
        if keep(label) {
            let p = model.infer(sample);
            let guess = (0..10).fold(0, |best, k| if p.get(k) > p.get(best) { k } else { best });
            right += usize::from(guess == usize::from(label));
            total += 1;
        }
    }
    right as f32 / total.max(1) as f32
}

fn old(label: u8) -> bool {
    label < 5
}

#[derive(Default, Clone, Copy)]
struct Outcome {
    old_after_old: f32,
    old_at_end: f32,
    new_at_end: f32,
    all_at_end: f32,
}

fn run<const B: usize>(
    stream: &[([f32; 64], u8)],
    test: (&[[f32; 64]], &[u8]),
    seed: u64,
) -> Result<Outcome> {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    let mut model: Net = (Dense::new(Relu), Dense::new(Softmax));
    model.initialize(&mut rng);
    let optimizer = Adam::new(LEARNING_RATE)?;
    let mut trainer = Box::new(Trainer::<Net, Adam<<Net as Network>::Params>, B>::new(
        optimizer,
    ));
    let mut buffer = Box::new(ReplayBuffer::<[f32; 64], u8, CAPACITY>::new());
    let loss = SparseCategoricalCrossEntropy::<u8>::new();
    let mut outcome = Outcome::default();
    let old_len = stream.iter().filter(|(_, y)| old(*y)).count();
    for (k, &(x, y)) in stream.iter().enumerate() {
        if k == old_len {
            outcome.old_after_old = accuracy(&model, test.0, test.1, old);
        }
        buffer.learn(&mut trainer, &mut model, &loss, x, y, &mut rng)?;
    }
    outcome.old_at_end = accuracy(&model, test.0, test.1, old);
    outcome.new_at_end = accuracy(&model, test.0, test.1, |l| !old(l));
    outcome.all_at_end = accuracy(&model, test.0, test.1, |_| true);
    Ok(outcome)
}

fn main() -> Result<()> {
    let mut seeds = 5u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seeds" => seeds = args.next().ok_or("--seeds N")?.parse()?,
            _ => return Err(format!("usage: stream [--seeds N] (got {arg:?})").into()),
        }
    }
    let mut table = load_csv::<64>("digits.csv")?;
    for row in &mut table.features {
        row.iter_mut().for_each(|v| *v /= 16.0);
    }
    let mut indices = vec![0; table.labels.len()];
    let split = stratified_split::<_, 10>(&table.labels, 0, TEST_LEN, 0, &mut indices)?;
    let test_x = gather(&table.features, split.test);
    let test_y = gather(&table.labels, split.test);
    println!(
        "digits: stream of {} (0-4 then 5-9), test {}; {} seeds; 64-32-10, Adam, one step per sample",
        split.train.len(),
        test_x.len(),
        seeds
    );
    let mut results = [Outcome::default(); 2];
    for seed in 0..seeds {
        let mut order = Xoshiro128PlusPlus::seed_from_u64(1000 + seed);
        let shuffled = Permutation::new(split.train.len(), &mut order);
        let all: Vec<([f32; 64], u8)> = (0..split.train.len())
            .filter_map(|k| split.train.get(shuffled.get(k)))
            .filter_map(|&i| Some((*table.features.get(i)?, *table.labels.get(i)?)))
            .collect();
        let mut stream: Vec<_> = all.iter().copied().filter(|(_, y)| old(*y)).collect();
        stream.extend(all.iter().copied().filter(|(_, y)| !old(*y)));
        let test = (&test_x[..], &test_y[..]);
        let runs = [
            run::<1>(&stream, test, seed)?,
            run::<16>(&stream, test, seed)?,
        ];
        for (sum, r) in results.iter_mut().zip(runs) {
            sum.old_after_old += r.old_after_old / seeds as f32;
            sum.old_at_end += r.old_at_end / seeds as f32;
            sum.new_at_end += r.new_at_end / seeds as f32;
            sum.all_at_end += r.all_at_end / seeds as f32;
        }
    }
    println!(
        "| training | old digits after the old part | old digits at the end | forgotten | new digits at the end | all at the end |"
    );
    println!("|---|---|---|---|---|---|");
    let names = ["one-sample SGD (B = 1)", "replay, 200 stored (B = 16)"];
    for (name, r) in names.iter().zip(results) {
        println!(
            "| {name} | {:.1} % | {:.1} % | {:.1} points | {:.1} % | {:.1} % |",
            100.0 * r.old_after_old,
            100.0 * r.old_at_end,
            100.0 * (r.old_after_old - r.old_at_end),
            100.0 * r.new_at_end,
            100.0 * r.all_at_end
        );
    }
    Ok(())
}
