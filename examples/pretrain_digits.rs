//! The host half of `examples/adapt-m4f`: trains the digits model on the "population" part
//! and saves it with `persist::save` as the factory weights that firmware compiles in.
//!
//! ```text
//! cargo run --release --example pretrain_digits
//! ```
//!
//! The split, shared with the firmware's `build.rs`: row `i` of `digits.csv` belongs to the
//! user part when `i % 4 == 3` (449 rows: the first 249 to adapt on, the other 200 held out),
//! to the population part otherwise (1348 rows). Pixels are divided by 16. The user's
//! camera sits one pixel to the left of the population's: each user image is shifted one
//! pixel to the right (column 0 becomes blank).
//!
//! Model: 64 → 32 relu (`l2(1e-4)`) → Dropout(0.2) → 10 softmax (`l2(1e-4)`), Adam
//! (lr 3e-3), batches of 16, 60 epochs, seed 1. It writes
//! `examples/adapt-m4f/factory/digits.mtrn` and prints the accuracy on the user's held-out
//! images without and with the shift.

#[path = "common/mod.rs"]
mod common;

use common::{Result, load_csv};
use microtrain::*;

/// The host's model; the firmware freezes its first layer.
type Population = (Dense<64, 32, Relu>, Dropout<32>, Dense<32, 10, Softmax>);

/// Row `i` is the user's (`i % 4 == 3`) or the population's.
fn is_user(row: usize) -> bool {
    row % 4 == 3
}

/// Moves the image one pixel to the right (the user's camera), blanking column 0.
fn shifted(image: &[f32; 64]) -> [f32; 64] {
    core::array::from_fn(|k| match k.checked_sub(1) {
        Some(left) if k % 8 != 0 => image.get(left).copied().unwrap_or(0.0),
        _ => 0.0,
    })
}

fn accuracy(model: &Population, x: &[[f32; 64]], y: &[u8]) -> f32 {
    let right = x
        .iter()
        .zip(y)
        .filter(|(sample, label)| {
            let p = model.infer(sample);
            let guess = (0..10).fold(0, |best, k| if p.get(k) > p.get(best) { k } else { best });
            guess == usize::from(**label)
        })
        .count();
    right as f32 / x.len().max(1) as f32
}

fn main() -> Result<()> {
    let table = load_csv::<64>("digits.csv")?;
    let scaled: Vec<[f32; 64]> = table
        .features
        .iter()
        .map(|row| row.map(|v| v / 16.0))
        .collect();
    let (mut population_x, mut population_y) = (Vec::new(), Vec::new());
    let (mut user_x, mut user_y) = (Vec::new(), Vec::new());
    for (i, (x, &y)) in scaled.iter().zip(&table.labels).enumerate() {
        if is_user(i) {
            user_x.push(*x);
            user_y.push(y);
        } else {
            population_x.push(*x);
            population_y.push(y);
        }
    }
    // The firmware adapts on the user's first 249 rows and holds out the rest.
    let held_out_x = user_x.get(249..).unwrap_or_default();
    let held_out_y = user_y.get(249..).unwrap_or_default();

    let regularizer = l2(1e-4)?;
    let mut model: Population = (
        Dense::new(Relu).with_kernel_regularizer(regularizer),
        Dropout::new(0.2)?,
        Dense::new(Softmax).with_kernel_regularizer(regularizer),
    );
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
    model.initialize(&mut rng);
    let mut trainer = Box::new(Trainer::<
        Population,
        Adam<<Population as Network>::Params>,
        16,
    >::new(Adam::new(3e-3)?));
    let data = Dataset::new(&population_x, &population_y)?;
    trainer.fit(
        &mut model,
        &SparseCategoricalCrossEntropy::<u8>::new(),
        data,
        None,
        &FitConfig::epochs(60),
        &mut rng,
        common::silent,
    )?;
    let shifted_x: Vec<[f32; 64]> = held_out_x.iter().map(shifted).collect();
    println!(
        "population {} rows: train accuracy {:.1} %; user held-out {} rows: {:.1} % unshifted, {:.1} % shifted",
        population_x.len(),
        100.0 * accuracy(&model, &population_x, &population_y),
        held_out_x.len(),
        100.0 * accuracy(&model, held_out_x, held_out_y),
        100.0 * accuracy(&model, &shifted_x, held_out_y)
    );
    let mut bytes = vec![0u8; persist::parameters_len::<Population>()];
    persist::save(&model, &mut bytes)?;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/adapt-m4f/factory/digits.mtrn");
    std::fs::write(&path, &bytes)?;
    println!(
        "wrote {} bytes to examples/adapt-m4f/factory/digits.mtrn",
        bytes.len()
    );
    Ok(())
}
