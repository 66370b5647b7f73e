//! Property tests (proptest) on arbitrary inputs: the model loader on arbitrary bytes,
//! training on arbitrary finite and non-finite data and hyper-parameters, and the SIMD
//! kernels against the scalar ones on arbitrary sizes and values.
//!
//! The generator seed is fixed (so `cargo test` is reproducible and CI cannot flake);
//! `.ci/fuzz.sh` reruns these with many more cases and other seeds through
//! `PROPTEST_CASES` and `MICROTRAIN_PROPTEST_SEED`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use microtrain::kernels::{Shape, scalar, simd};
use microtrain::persist;
use microtrain::*;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

type Net = (Dense<3, 5, Relu>, Dropout<5>, Dense<5, 4, Softmax>);

fn config() -> ProptestConfig {
    let seed = std::env::var("MICROTRAIN_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6d74_7261);
    ProptestConfig {
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn fresh(seed: u64) -> Net {
    let mut net: Net = (
        Dense::new(Relu),
        Dropout::new(0.25).unwrap(),
        Dense::new(Softmax),
    );
    net.initialize(&mut Xoshiro128PlusPlus::seed_from_u64(seed));
    net
}

fn bits(net: &Net) -> Vec<u32> {
    net.parameters().flatten().map(|v| v.to_bits()).collect()
}

/// Any f32, the special values included, weighted towards ordinary magnitudes.
fn any_float() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -10.0f32..10.0,
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
        1 => any::<f32>(),
    ]
}

/// Summation-order budget: two sums of the same n terms in different orders (with or
/// without fused multiply-adds) differ by at most n·ε·Σ|terms| (each is within
/// (n-1)·ε/2·Σ|terms| of the exact sum); 1e-30 absorbs sums that are exactly zero.
fn order_budget(n: usize, magnitude: f32) -> f32 {
    (n as f32 + 1.0) * f32::EPSILON * magnitude + 1e-30
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn loader_accepts_only_what_save_would_write(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut net = fresh(1);
        let before = bits(&net);
        match persist::load(&mut net, &bytes) {
            // Version 2 is what `save` writes; version 1 files (the previous format) load too.
            Ok(()) if bytes[4..6] == persist::VERSION.to_le_bytes() => {
                let mut again = vec![0u8; persist::parameters_len::<Net>()];
                persist::save(&net, &mut again).unwrap();
                prop_assert_eq!(&bytes[..again.len()], &again[..]);
            }
            Ok(()) => prop_assert_eq!(&bytes[4..6], &1u16.to_le_bytes()),
            Err(_) => prop_assert_eq!(bits(&net), before),
        }
    }

    #[test]
    fn loader_refuses_every_changed_byte(position in 0usize..persist::parameters_len::<Net>(), value in any::<u8>()) {
        let mut buffer = vec![0u8; persist::parameters_len::<Net>()];
        persist::save(&fresh(2), &mut buffer).unwrap();
        let original = buffer[position];
        buffer[position] = value;
        let mut net = fresh(3);
        let before = bits(&net);
        let result = persist::load(&mut net, &buffer);
        if value == original {
            prop_assert!(result.is_ok());
        } else {
            prop_assert!(result.is_err(), "byte {} changed {} -> {} was accepted", position, original, value);
            prop_assert_eq!(bits(&net), before);
        }
    }

    #[test]
    fn fit_never_panics_and_never_leaves_non_finite_weights(
        samples in proptest::collection::vec(proptest::array::uniform3(any_float()), 1..12),
        labels in proptest::collection::vec(0u8..5, 12),
        learning_rate in prop_oneof![3 => 1e-4f32..1.0, 1 => any_float()],
        rate in prop_oneof![3 => 0.0f32..0.9, 1 => any_float()],
        lambda in prop_oneof![3 => 0.0f32..0.1, 1 => any_float()],
        epochs in 1usize..4,
        seed in any::<u64>(),
    ) {
        let labels = &labels[..samples.len()];
        let (Ok(adam), Ok(dropout), Ok(l2)) = (Adam::new(learning_rate), Dropout::<5>::new(rate), l2(lambda)) else {
            // Refused configuration: the constructors named it; nothing to train.
            prop_assert!(!(learning_rate > 0.0 && learning_rate.is_finite() && (rate == 0.0 || (2f32.powi(-32)..1.0).contains(&rate)) && lambda >= 0.0 && lambda.is_finite()));
            return Ok(());
        };
        let mut net: Net = (Dense::new(Relu).with_kernel_regularizer(l2), dropout, Dense::new(Softmax));
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
        net.initialize(&mut rng);
        let mut trainer = Trainer::<Net, Adam<<Net as Network>::Params>, 3>::new(adam);
        let data = Dataset::new(&samples, labels).unwrap();
        let loss = SparseCategoricalCrossEntropy::<u8>::new();
        let summary = trainer.fit(&mut net, &loss, data, Some(data), &FitConfig::epochs(epochs), &mut rng, |_: &EpochReport| Control::Continue);
        // Bad samples and labels (up to 4 for 4 classes) end the run with their error.
        prop_assert!(matches!(summary, Ok(_) | Err(Error::NonFinite | Error::LabelOutOfRange { .. })), "{:?}", summary);
        prop_assert!(net.parameters().flatten().all(|v| v.is_finite()), "non-finite weight after fit");
    }

    #[test]
    fn simd_forward_matches_scalar_on_arbitrary_shapes(
        rows in 0usize..6, inputs in 0usize..40, outputs in 0usize..24,
        values in proptest::collection::vec(-100.0f32..100.0, 1200),
        cut in 0usize..3,
    ) {
        let shape = Shape { rows, inputs, outputs };
        let take = |n: usize, offset: usize| values.iter().cycle().skip(offset).take(n).copied().collect::<Vec<f32>>();
        // A shorter input slice than the shape asks for must limit the work, not panic.
        let x = take((rows * inputs).saturating_sub(cut), 0);
        let w = take(inputs * outputs, 7);
        let b = take(outputs, 13);
        let mut fast = vec![0.5f32; rows * outputs];
        let mut slow = fast.clone();
        simd::dense_forward(&x, &w, &b, &mut fast, shape);
        scalar::dense_forward(&x, &w, &b, &mut slow, shape);
        for (k, (f, s)) in fast.iter().zip(&slow).enumerate() {
            let (r, o) = (k / outputs.max(1), k % outputs.max(1));
            let magnitude: f32 = (0..inputs).map(|i| (x.get(r * inputs + i).unwrap_or(&0.0) * w[o * inputs + i]).abs()).sum::<f32>() + b[o].abs();
            prop_assert!((f - s).abs() <= order_budget(inputs + 1, magnitude), "row {} out {}: simd {} scalar {}", r, o, f, s);
        }
    }

    #[test]
    fn simd_gradients_match_scalar_on_arbitrary_shapes(
        rows in 1usize..6, inputs in 1usize..40, outputs in 1usize..24,
        values in proptest::collection::vec(-10.0f32..10.0, 1200),
        l1 in 0.0f32..0.1, l2 in 0.0f32..0.1,
    ) {
        let shape = Shape { rows, inputs, outputs };
        let take = |n: usize, offset: usize| values.iter().cycle().skip(offset).take(n).copied().collect::<Vec<f32>>();
        let (x, w, dy) = (take(rows * inputs, 0), take(inputs * outputs, 11), take(rows * outputs, 29));
        let penalty = Regularizer::l1_l2(l1, l2).unwrap();

        let mut fast = take(inputs * outputs, 5);
        let mut slow = fast.clone();
        let pf = simd::dense_weight_gradient(&dy, &x, &w, &mut fast, shape, penalty);
        let ps = scalar::dense_weight_gradient(&dy, &x, &w, &mut slow, shape, penalty);
        let penalty_magnitude = l1 * w.iter().map(|v| v.abs()).sum::<f32>() + l2 * w.iter().map(|v| v * v).sum::<f32>();
        prop_assert!((pf - ps).abs() <= order_budget(w.len(), penalty_magnitude), "penalty simd {} scalar {}", pf, ps);
        for (k, (f, s)) in fast.iter().zip(&slow).enumerate() {
            let (o, i) = (k / inputs, k % inputs);
            let magnitude: f32 = (0..rows).map(|r| (dy[r * outputs + o] * x[r * inputs + i]).abs()).sum::<f32>()
                + take(inputs * outputs, 5)[k].abs() + penalty.gradient(w[k]).abs();
            prop_assert!((f - s).abs() <= order_budget(rows + 2, magnitude), "dW[{}][{}]: simd {} scalar {}", o, i, f, s);
        }

        let start = take(rows * inputs, 3);
        let mut fast = start.clone();
        let mut slow = start.clone();
        simd::dense_input_gradient(&dy, &w, &mut fast, shape);
        scalar::dense_input_gradient(&dy, &w, &mut slow, shape);
        for (k, (f, s)) in fast.iter().zip(&slow).enumerate() {
            let (r, i) = (k / inputs, k % inputs);
            let magnitude: f32 = (0..outputs).map(|o| (dy[r * outputs + o] * w[o * inputs + i]).abs()).sum::<f32>() * start[k].abs();
            prop_assert!((f - s).abs() <= order_budget(outputs + 1, magnitude), "dX[{}][{}]: simd {} scalar {}", r, i, f, s);
        }
    }
}
