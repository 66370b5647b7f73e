//! Saving and loading models: round trips, resumed training, and refusal of every damaged
//! buffer without touching the model.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use microtrain::persist::{
    self, load, load_resumable, load_with_optimizer, save, save_resumable, save_with_optimizer,
};
use microtrain::*;

type Net = (Dense<4, 8, Relu>, Dropout<8>, Dense<8, 3, Softmax>);
type Opt = Adam<<Net as Network>::Params>;
type Other = (Dense<4, 8, Relu>, Dense<8, 8, Relu>, Dense<8, 3, Softmax>);

fn model(seed: u64) -> Net {
    let mut net: Net = (
        Dense::new(Relu).with_kernel_regularizer(l2(1e-3).unwrap()),
        Dropout::new(0.2).unwrap(),
        Dense::new(Softmax),
    );
    net.initialize(&mut Xoshiro128PlusPlus::seed_from_u64(seed));
    net
}

fn data() -> (Vec<[f32; 4]>, Vec<usize>) {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(99);
    let x: Vec<[f32; 4]> = (0..60)
        .map(|_| core::array::from_fn(|_| microtrain::rng::unit_f32(&mut rng) * 2.0 - 1.0))
        .collect();
    let y = x
        .iter()
        .map(|v| {
            if v[0] + v[1] > 0.5 {
                2
            } else if v[2] > 0.0 {
                1
            } else {
                0
            }
        })
        .collect();
    (x, y)
}

fn bits(net: &Net) -> Vec<u32> {
    net.parameters()
        .flat_map(|t| t.iter().map(|v| v.to_bits()))
        .collect()
}

fn train(
    net: &mut Net,
    trainer: &mut Trainer<Net, Opt, 4>,
    rng: &mut Xoshiro128PlusPlus,
    epochs: usize,
) {
    let (x, y) = data();
    let loss = SparseCategoricalCrossEntropy::<usize>::new();
    trainer
        .fit(
            net,
            &loss,
            Dataset::new(&x, &y).unwrap(),
            None,
            &FitConfig::epochs(epochs),
            rng,
            |_: &EpochReport| Control::Continue,
        )
        .unwrap();
}

#[test]
fn parameters_round_trip_exactly() {
    let original = model(1);
    let mut buffer = vec![0u8; persist::parameters_len::<Net>()];
    assert_eq!(save(&original, &mut buffer), Ok(buffer.len()));
    let mut restored = model(2);
    assert_ne!(bits(&original), bits(&restored));
    load(&mut restored, &buffer).unwrap();
    assert_eq!(bits(&original), bits(&restored));
}

/// Train N epochs, save everything, "power cycle" (fresh model, trainer and generator),
/// load, train M more: the same bits as N + M epochs without the reset. The run uses
/// dropout and `fit`'s shuffle, so the generator's state matters: resuming with the
/// optimizer state alone and a freshly seeded generator gives other weights.
#[test]
fn resumed_training_matches_uninterrupted_training_bit_for_bit() {
    // Uninterrupted: 6 epochs.
    let mut straight = model(3);
    let mut trainer = Trainer::<Net, Opt, 4>::new(Adam::keras_default());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(5);
    train(&mut straight, &mut trainer, &mut rng, 6);

    // Interrupted after 2 epochs: save model, Adam state and generator; reset; load; go on.
    let mut first = model(3);
    let mut trainer = Trainer::<Net, Opt, 4>::new(Adam::keras_default());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(5);
    train(&mut first, &mut trainer, &mut rng, 2);
    let mut store = vec![0u8; persist::resumable_len::<Net, Opt>()];
    assert_eq!(
        save_resumable(&first, trainer.optimizer(), &rng, &mut store),
        Ok(store.len())
    );
    let _ = (first, trainer, rng); // the power goes

    let mut resumed = model(77);
    let mut fresh = Trainer::<Net, Opt, 4>::new(Adam::keras_default());
    let mut fresh_rng = Xoshiro128PlusPlus::seed_from_u64(1234);
    load_resumable(&mut resumed, fresh.optimizer_mut(), &mut fresh_rng, &store).unwrap();
    let mut without_generator = resumed;
    let mut other_trainer = Trainer::<Net, Opt, 4>::new(Adam::keras_default());
    let mut ignored = Xoshiro128PlusPlus::seed_from_u64(0);
    load_resumable(
        &mut without_generator,
        other_trainer.optimizer_mut(),
        &mut ignored,
        &store,
    )
    .unwrap();
    train(&mut resumed, &mut fresh, &mut fresh_rng, 4);
    assert_eq!(bits(&straight), bits(&resumed));

    // The generator is what made the difference.
    let mut reseeded = Xoshiro128PlusPlus::seed_from_u64(5);
    train(&mut without_generator, &mut other_trainer, &mut reseeded, 4);
    assert_ne!(bits(&straight), bits(&without_generator));
}

/// `load_with_optimizer` reads the optimizer record of a resumable buffer and leaves the
/// generator alone; `load_resumable` needs one.
#[test]
fn the_generator_is_optional_when_loading_and_required_when_resuming() {
    let saved = model(3);
    let mut optimizer = Opt::keras_default();
    optimizer
        .state_mut()
        .flat_map(|t| t.iter_mut())
        .for_each(|x| *x = 0.25);
    // The first value is Adam's step count, which must be a whole number.
    if let Some(iterations) = optimizer.state_mut().next().and_then(|t| t.first_mut()) {
        *iterations = 3.0;
    }
    let rng = Xoshiro128PlusPlus::seed_from_u64(9);
    let mut store = vec![0u8; persist::resumable_len::<Net, Opt>()];
    save_resumable(&saved, &optimizer, &rng, &mut store).unwrap();
    let (mut target, mut restored) = (model(4), Opt::keras_default());
    load_with_optimizer(&mut target, &mut restored, &store).unwrap();
    assert_eq!((bits(&target), restored), (bits(&saved), optimizer));

    let mut without = vec![0u8; persist::training_state_len::<Net, Opt>()];
    save_with_optimizer(&saved, &optimizer, &mut without).unwrap();
    let (mut target, mut restored) = (model(4), Opt::keras_default());
    let mut generator = Xoshiro128PlusPlus::seed_from_u64(1);
    let before = (bits(&target), restored, generator.clone());
    assert_eq!(
        load_resumable(&mut target, &mut restored, &mut generator, &without),
        Err(Error::Shape)
    );
    assert_eq!((bits(&target), restored, generator), before);
}

/// The all-zero xoshiro state, which no generator reaches (`from_seed` would quietly
/// replace it), is refused under a valid checksum.
#[test]
fn an_all_zero_generator_state_is_refused() {
    let saved = model(3);
    let mut store = vec![0u8; persist::resumable_len::<Net, Opt>()];
    let rng = Xoshiro128PlusPlus::seed_from_u64(9);
    save_resumable(&saved, &Opt::keras_default(), &rng, &mut store).unwrap();
    let generator = store.len() - 4 - 16;
    assert_eq!(&store[generator..store.len() - 4], &rng.state());
    store[generator..generator + 16].fill(0);
    reseal(&mut store);
    let (mut target, mut optimizer) = (model(4), Opt::keras_default());
    let mut generator = Xoshiro128PlusPlus::seed_from_u64(1);
    let before = (bits(&target), generator.clone());
    assert_eq!(
        load_resumable(&mut target, &mut optimizer, &mut generator, &store),
        Err(Error::GeneratorState)
    );
    assert_eq!((bits(&target), generator), before);
    assert_eq!(optimizer, Opt::keras_default());
}

/// A state written by another optimizer, or by the same one under betas its state depends
/// on, is refused by name; a learning rate or ε that changed (a schedule) is not.
#[test]
fn a_state_written_by_another_optimizer_is_refused() {
    type Params = <Net as Network>::Params;
    let saved = model(3);
    let mut store = vec![0u8; persist::training_state_len::<Net, Opt>()];
    let adamw = AdamW::<Params>::new(1e-3, 1e-2).unwrap();
    save_with_optimizer(&saved, &adamw, &mut store).unwrap();
    let (mut target, mut adam) = (model(4), Opt::keras_default());
    let before = bits(&target);
    assert_eq!(
        load_with_optimizer(&mut target, &mut adam, &store),
        Err(Error::OptimizerMismatch {
            saved: *b"ADMW",
            expected: *b"ADAM"
        })
    );
    let mut other_betas = Opt::keras_default().with_betas(0.9, 0.99).unwrap();
    save_with_optimizer(&saved, &Opt::keras_default(), &mut store).unwrap();
    assert_eq!(
        load_with_optimizer(&mut target, &mut other_betas, &store),
        Err(Error::OptimizerMismatch {
            saved: *b"ADAM",
            expected: *b"ADAM"
        })
    );
    let mut momentum_store = vec![0u8; persist::training_state_len::<Net, SgdMomentum<Params>>()];
    let momentum = SgdMomentum::<Params>::new(0.1, 0.9, false).unwrap();
    save_with_optimizer(&saved, &momentum, &mut momentum_store).unwrap();
    assert_eq!(
        load_with_optimizer(&mut target, &mut adam, &momentum_store),
        Err(Error::OptimizerMismatch {
            saved: *b"SGDM",
            expected: *b"ADAM"
        })
    );
    assert_eq!(bits(&target), before);
    assert_eq!(adam, Opt::keras_default());
    assert_eq!(
        other_betas,
        Opt::keras_default().with_betas(0.9, 0.99).unwrap()
    );

    // What may change between runs does not matter.
    let mut scheduled = Opt::new(3e-4).unwrap().with_epsilon(1e-6).unwrap();
    assert_eq!(
        load_with_optimizer(&mut target, &mut scheduled, &store),
        Ok(())
    );
    let mut sgd_store = vec![0u8; persist::training_state_len::<Net, Sgd>()];
    save_with_optimizer(&saved, &Sgd::new(0.1).unwrap(), &mut sgd_store).unwrap();
    let mut sgd = Sgd::new(0.5).unwrap();
    assert_eq!(
        load_with_optimizer(&mut target, &mut sgd, &sgd_store),
        Ok(())
    );
    assert_eq!(
        load_with_optimizer(&mut target, &mut adam, &sgd_store),
        Err(Error::OptimizerMismatch {
            saved: *b"SGD ",
            expected: *b"ADAM"
        })
    );
}

/// Files of format version 1, written by the previous release (`tests/fixtures/v1_*.mtrn`):
/// their parameters still load; their optimizer state, which does not say which optimizer
/// wrote it, is refused by `load_with_optimizer`.
#[test]
fn version_1_files_still_load_their_parameters() {
    let parameters = include_bytes!("fixtures/v1_parameters.mtrn");
    let with_state = include_bytes!("fixtures/v1_adam_state.mtrn");
    assert_eq!(&parameters[4..6], &1u16.to_le_bytes());
    // The parameters, read straight from the bytes: after the 24-byte header and 4 widths.
    let expected: Vec<u32> = parameters[24 + 16..parameters.len() - 4]
        .chunks(4)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(expected.len(), Net::PARAMETERS);
    for file in [&parameters[..], &with_state[..]] {
        let mut target = model(4);
        load(&mut target, file).unwrap();
        assert_eq!(bits(&target), expected);
    }
    let (mut target, mut optimizer) = (model(4), Opt::keras_default());
    let before = bits(&target);
    assert_eq!(
        load_with_optimizer(&mut target, &mut optimizer, with_state),
        Err(Error::Version { found: 1 })
    );
    assert_eq!(
        load_with_optimizer(&mut target, &mut optimizer, parameters),
        Err(Error::Shape)
    );
    assert_eq!(bits(&target), before);
    // A version-1 file keeps version 1's checks: every byte flip is caught.
    // Under Miri (slow), every 17th byte.
    for position in (0..with_state.len()).step_by(if cfg!(miri) { 17 } else { 1 }) {
        let mut damaged = with_state.to_vec();
        damaged[position] ^= 0x10;
        assert!(load(&mut target, &damaged).is_err(), "byte {position}");
    }
    assert_eq!(bits(&target), before);
}

#[test]
#[cfg_attr(miri, ignore)] // 8,000 loads of 1 KB; nothing endian-specific
fn every_single_byte_flip_is_refused_and_changes_nothing() {
    let saved = model(4);
    let mut buffer = vec![0u8; persist::resumable_len::<Net, Opt>()];
    let rng = Xoshiro128PlusPlus::seed_from_u64(3);
    save_resumable(&saved, &Opt::keras_default(), &rng, &mut buffer).unwrap();
    let mut target = model(5);
    let mut optimizer = Opt::keras_default();
    let mut generator = Xoshiro128PlusPlus::seed_from_u64(8);
    let before = (bits(&target), generator.clone());
    for position in 0..buffer.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut damaged = buffer.clone();
            damaged[position] ^= flip;
            let result = load_resumable(&mut target, &mut optimizer, &mut generator, &damaged);
            assert!(
                result.is_err(),
                "flip {flip:#x} at byte {position} was accepted"
            );
            assert!(
                load_with_optimizer(&mut target, &mut optimizer, &damaged).is_err(),
                "flip {flip:#x} at byte {position} accepted by load_with_optimizer"
            );
            assert!(
                load(&mut target, &damaged).is_err(),
                "flip {flip:#x} at byte {position} accepted by load"
            );
            assert_eq!(
                (bits(&target), generator.clone()),
                before,
                "flip at byte {position} changed the model or the generator"
            );
            assert_eq!(optimizer, Opt::keras_default());
        }
    }
}

#[test]
fn truncated_buffers_are_refused() {
    let saved = model(6);
    let mut buffer = vec![0u8; persist::parameters_len::<Net>()];
    save(&saved, &mut buffer).unwrap();
    let mut target = model(7);
    let before = bits(&target);
    for len in 0..buffer.len() {
        let result = load(&mut target, &buffer[..len]);
        assert!(result.is_err(), "a buffer cut to {len} bytes was accepted");
    }
    assert_eq!(bits(&target), before);
}

#[test]
fn wrong_shape_wrong_version_and_small_buffers_are_named() {
    let saved = model(8);
    let mut buffer = vec![0u8; persist::parameters_len::<Net>()];
    save(&saved, &mut buffer).unwrap();

    let mut other: Other = (Dense::new(Relu), Dense::new(Relu), Dense::new(Softmax));
    assert_eq!(load(&mut other, &buffer), Err(Error::Shape));

    let mut target = model(9);
    let mut optimizer = Opt::keras_default();
    assert_eq!(
        load_with_optimizer(&mut target, &mut optimizer, &buffer),
        Err(Error::Shape),
        "no optimizer state saved"
    );

    let mut newer = buffer.clone();
    newer[4] = 3;
    assert_eq!(load(&mut target, &newer), Err(Error::Version { found: 3 }));

    let mut small = vec![0u8; buffer.len() - 1];
    assert_eq!(
        save(&saved, &mut small),
        Err(Error::Buffer {
            needed: buffer.len(),
            available: buffer.len() - 1
        })
    );
    assert!(small.iter().all(|&b| b == 0), "a refused save wrote bytes");
    assert_eq!(
        load(&mut target, b"NOPE and more bytes than a header has"),
        Err(Error::Magic)
    );
}

#[test]
fn non_finite_parameters_are_refused_even_with_a_valid_checksum() {
    let mut saved = model(10);
    saved.0.params.weights[0][0] = f32::NAN;
    let mut buffer = vec![0u8; persist::parameters_len::<Net>()];
    save(&saved, &mut buffer).unwrap();
    let mut target = model(11);
    let before = bits(&target);
    assert_eq!(load(&mut target, &buffer), Err(Error::NonFinite));
    assert_eq!(bits(&target), before);
}

#[test]
fn saved_length_is_the_documented_constant() {
    // Header 24 + 4 boundaries (4, 8, 8, 3) + (4·8+8 + 8·3+3 = 67) parameters + CRC 4.
    assert_eq!(persist::parameters_len::<Net>(), 24 + 4 * 4 + 4 * 67 + 4);
    // The optimizer record: kind 4 + settings 16 + state.
    assert_eq!(
        persist::training_state_len::<Net, Opt>(),
        24 + 4 * 4 + 4 * 67 + 20 + 4 * (1 + 2 * 67) + 4
    );
    // The generator: 16 more.
    assert_eq!(
        persist::resumable_len::<Net, Opt>(),
        persist::training_state_len::<Net, Opt>() + 16
    );
}

/// Rewrites the CRC-32 that ends `buffer` (a buffer a hostile writer made consistent).
fn reseal(buffer: &mut [u8]) {
    let body = buffer.len() - 4;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&buffer[..body]);
    buffer[body..].copy_from_slice(&crc.to_le_bytes());
}

/// Finite but impossible Adam state (a negative second moment, a step count that is not
/// an integer in [0, 2^24]) with a valid checksum: it would refuse every later step, so loading refuses it.
#[test]
fn semantically_invalid_optimizer_state_is_refused() {
    let saved = model(10);
    let cases: [(usize, f32); 4] = [
        (2 * Net::PARAMETERS, -1.0),
        (0, 1.5),
        (0, -1.0),
        (0, 16_777_218.0),
    ];
    for (at, value) in cases {
        let mut optimizer = Opt::keras_default();
        if let Some(x) = optimizer.state_mut().flat_map(|t| t.iter_mut()).nth(at) {
            *x = value;
        }
        let mut buffer = vec![0u8; persist::training_state_len::<Net, Opt>()];
        save_with_optimizer(&saved, &optimizer, &mut buffer).unwrap();
        let (mut target, mut restored) = (model(11), Opt::keras_default());
        let before = bits(&target);
        assert_eq!(
            load_with_optimizer(&mut target, &mut restored, &buffer),
            Err(Error::OptimizerState),
            "state value {at} = {value}"
        );
        assert_eq!(bits(&target), before);
        assert_eq!(restored, Opt::keras_default());
    }
}

/// Flag bits this version does not know, or optimizer state without an optimizer record,
/// are refused even under a valid checksum.
#[test]
fn unknown_or_inconsistent_flags_are_refused() {
    let saved = model(10);
    let mut plain = vec![0u8; persist::parameters_len::<Net>()];
    save(&saved, &mut plain).unwrap();
    let mut with_state = vec![0u8; persist::training_state_len::<Net, Opt>()];
    save_with_optimizer(&saved, &Opt::keras_default(), &mut with_state).unwrap();
    for (buffer, flags) in [
        (&plain, 4u16),
        (&plain, 0x8000),
        (&with_state, 0),
        (&with_state, 2),
        (&with_state, 5),
        (&with_state, 0x8001),
    ] {
        let mut buffer = buffer.clone();
        buffer[6..8].copy_from_slice(&flags.to_le_bytes());
        reseal(&mut buffer);
        let mut target = model(11);
        let before = bits(&target);
        assert_eq!(load(&mut target, &buffer), Err(Error::Flags { flags }));
        assert_eq!(bits(&target), before);
    }
}
