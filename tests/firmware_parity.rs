//! The firmware's training run (examples/cortex-m4f), repeated on the host.
//!
//! With the scalar kernels every target computes the same bits (the crate's determinism
//! promise), so this run must end with the weight checksum committed in
//! `examples/cortex-m4f/checksum.txt`, which `.ci/firmware.sh` also requires from the
//! firmware on the emulated Cortex-M4F, Cortex-M0 and RISC-V. The SIMD kernels sum in another
//! order and may fuse multiply-adds, so a SIMD build only checks that training works.

#[path = "../examples/cortex-m4f/src/training.rs"]
mod training;

use training::{IRIS, IRIS_CSV, Split};

/// The committed checksum (`0x` and eight hex digits).
fn committed_checksum() -> Option<u32> {
    let text = include_str!("../examples/cortex-m4f/checksum.txt").trim();
    u32::from_str_radix(text.strip_prefix("0x")?, 16).ok()
}

fn run() -> Result<training::Outcome, microtrain::Error> {
    let mut split = Split::ZERO;
    split.build();
    let mut model = training::model();
    let mut trainer = training::trainer();
    let mut losses = std::vec::Vec::new();
    let outcome = training::train(
        &mut model,
        &mut trainer,
        &split,
        &mut [0; training::TRAIN_ROWS],
        training::EPOCHS,
        |report| losses.push(report.train.loss),
    )?;
    println!("epoch losses: {losses:?}");
    println!(
        "held-out {}/{}, checksum {:#010x}",
        outcome.correct,
        training::TEST_ROWS,
        outcome.checksum
    );
    Ok(outcome)
}

#[test]
fn compile_time_parse_matches_str_parse() {
    let mut rows = 0;
    for (line, (x, y)) in IRIS_CSV.lines().skip(1).zip(IRIS.0.iter().zip(&IRIS.1)) {
        let fields: std::vec::Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 5, "{line}");
        for (field, value) in fields.iter().zip(x) {
            let parsed = field.parse::<f32>().map(f32::to_bits);
            assert_eq!(parsed, Ok(value.to_bits()), "{field} in {line}");
        }
        assert_eq!(fields.last().map(|l| l.parse::<u8>()), Some(Ok(*y)));
        rows += 1;
    }
    assert_eq!(rows, training::ROWS);
    assert_eq!(IRIS_CSV.lines().count(), training::ROWS + 1);
}

#[test]
fn split_is_stratified_and_standardized() {
    let mut split = Split::ZERO;
    split.build();
    for class in 0..training::CLASSES as u8 {
        let held = split.test_y.iter().filter(|&&y| y == class).count();
        assert_eq!(held, training::TEST_PER_CLASS);
    }
    for f in 0..training::FEATURES {
        let column = split.train_x.iter().filter_map(|r| r.get(f));
        let mean: f32 = column.clone().sum::<f32>() / training::TRAIN_ROWS as f32;
        let var: f32 = column.map(|v| v * v).sum::<f32>() / training::TRAIN_ROWS as f32;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
            "{f}: {mean} {var}"
        );
    }
}

#[test]
fn training_reaches_the_accuracy_bar() -> Result<(), microtrain::Error> {
    let outcome = run()?;
    assert!(
        outcome.passed(),
        "held-out {}/{} is below the bar of {}",
        outcome.correct,
        training::TEST_ROWS,
        training::REQUIRED_CORRECT
    );
    Ok(())
}

#[test]
#[cfg_attr(
    not(feature = "scalar"),
    ignore = "the SIMD kernels give other bits by design; run with --features scalar"
)]
fn scalar_build_reproduces_the_firmware_checksum() -> Result<(), microtrain::Error> {
    if microtrain::kernels::SIMD_ACTIVE {
        println!("SIMD kernels active: checksum not compared");
        return Ok(());
    }
    let outcome = run()?;
    assert_eq!(
        Some(outcome.checksum),
        committed_checksum(),
        "got {:#010x}; examples/cortex-m4f/checksum.txt holds the value every scalar build \
         (host, Cortex-M4F, Cortex-M0, RISC-V) must reach",
        outcome.checksum
    );
    Ok(())
}
