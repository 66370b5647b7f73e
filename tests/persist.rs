//! Saving and loading models: round trips, resumed training, and refusal of every damaged
//! buffer without touching the model.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use microtrain::persist::{self, load, load_with_optimizer, save, save_with_optimizer};
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

#[test]
fn resumed_training_matches_uninterrupted_training_bit_for_bit() {
    // Uninterrupted: 6 epochs.
    let mut straight = model(3);
    let mut trainer = Trainer::<Net, Opt, 4>::new(Adam::keras_default());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(5);
    train(&mut straight, &mut trainer, &mut rng, 6);

    // Interrupted after 3 epochs: save model + Adam state, "reset", load, go on.
    let mut first = model(3);
    let mut trainer = Trainer::<Net, Opt, 4>::new(Adam::keras_default());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(5);
    train(&mut first, &mut trainer, &mut rng, 3);
    let mut buffer = vec![0u8; persist::training_state_len::<Net, Opt>()];
    save_with_optimizer(&first, trainer.optimizer(), &mut buffer).unwrap();
    let rng_state = rng.clone();

    let mut resumed = model(77);
    let mut fresh = Trainer::<Net, Opt, 4>::new(Adam::keras_default());
    load_with_optimizer(&mut resumed, fresh.optimizer_mut(), &buffer).unwrap();
    let mut rng = rng_state;
    train(&mut resumed, &mut fresh, &mut rng, 3);
    assert_eq!(bits(&straight), bits(&resumed));
}

#[test]
fn every_single_byte_flip_is_refused_and_changes_nothing() {
    let saved = model(4);
    let mut buffer = vec![0u8; persist::training_state_len::<Net, Opt>()];
    save_with_optimizer(&saved, &Opt::keras_default(), &mut buffer).unwrap();
    let mut target = model(5);
    let mut optimizer = Opt::keras_default();
    let before = bits(&target);
    for position in 0..buffer.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut damaged = buffer.clone();
            damaged[position] ^= flip;
            let result = load_with_optimizer(&mut target, &mut optimizer, &damaged);
            assert!(
                result.is_err(),
                "flip {flip:#x} at byte {position} was accepted"
            );
            assert!(
                load(&mut target, &damaged).is_err(),
                "flip {flip:#x} at byte {position} accepted by load"
            );
            assert_eq!(
                bits(&target),
                before,
                "flip at byte {position} changed the model"
            );
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
    newer[4] = 2;
    assert_eq!(load(&mut target, &newer), Err(Error::Version { found: 2 }));

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
    assert_eq!(
        persist::training_state_len::<Net, Opt>(),
        24 + 4 * 4 + 4 * (67 + 1 + 2 * 67) + 4
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

/// Flag bits this version does not know, or a state flag that disagrees with the state
/// count, are refused even under a valid checksum.
#[test]
fn unknown_or_inconsistent_flags_are_refused() {
    let saved = model(10);
    let mut plain = vec![0u8; persist::parameters_len::<Net>()];
    save(&saved, &mut plain).unwrap();
    let mut with_state = vec![0u8; persist::training_state_len::<Net, Opt>()];
    save_with_optimizer(&saved, &Opt::keras_default(), &mut with_state).unwrap();
    for (buffer, flags) in [
        (&plain, 2u16),
        (&plain, 1),
        (&with_state, 3),
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
