//! `DenseDropout` is the pair `(Dense, Dropout)` with the dropout in place: the same
//! training, one batch buffer less.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use microtrain::*;

type Pair<A> = (Dense<4, 16, A>, Dropout<16>, Dense<16, 3, Softmax>);
type InPlace<A> = (DenseDropout<4, 16, A>, Dense<16, 3, Softmax>);

fn data(rows: usize, seed: u64) -> (Vec<[f32; 4]>, Vec<usize>) {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    let x = (0..rows)
        .map(|_| core::array::from_fn(|_| common::normal(&mut rng)))
        .collect();
    let y = (0..rows).map(|k| k % 3).collect();
    (x, y)
}

fn models<A: SignDerivative>(activation: A, rate: f32) -> (Pair<A>, InPlace<A>) {
    let dense = Dense::<4, 16, A>::new(activation).with_kernel_regularizer(l2(1e-3).unwrap());
    let mut pair: Pair<A> = (dense, Dropout::new(rate).unwrap(), Dense::new(Softmax));
    pair.initialize(&mut Xoshiro128PlusPlus::seed_from_u64(3));
    let in_place = (DenseDropout::new(pair.0, pair.1), pair.2);
    (pair, in_place)
}

fn bits<N: Network>(model: &N) -> Vec<u32> {
    model
        .parameters()
        .flat_map(|t| t.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

/// Trains `model` for `epochs` on the test data, batches of `B`, seed 5; returns its
/// parameters' bits.
fn train<N, const B: usize>(mut model: N, epochs: usize) -> Vec<u32>
where
    N: Network<Input = [f32; 4], Output = [f32; 3], OutputActivation = Softmax>,
{
    let (x, y) = data(50, 11);
    let data = Dataset::new(&x, &y).unwrap();
    let loss = SparseCategoricalCrossEntropy::<usize>::new();
    let mut trainer = Trainer::<N, Adam<N::Params>, B>::new(Adam::new(0.01).unwrap());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(5);
    let config = FitConfig::epochs(epochs);
    trainer
        .fit(
            &mut model,
            &loss,
            data,
            None,
            &config,
            &mut rng,
            |_: &EpochReport| Control::Continue,
        )
        .unwrap();
    bits(&model)
}

/// Trains both forms for `epochs` with the same seeds; returns their final parameters.
fn train_both<A: SignDerivative, const B: usize>(
    activation: A,
    rate: f32,
    epochs: usize,
) -> (Vec<u32>, Vec<u32>) {
    let (pair, in_place) = models(activation, rate);
    (train::<_, B>(pair, epochs), train::<_, B>(in_place, epochs))
}

#[test]
fn with_relu_it_trains_bit_for_bit_like_the_pair() {
    // Batch 1 and a batch of 8 that leaves a partial last batch (50 rows); a rate that
    // draws one word per unit and one that draws one bit; and no dropout at all.
    for rate in [0.2, 0.5, 0.0] {
        let (pair, in_place) = train_both::<Relu, 1>(Relu, rate, 3);
        assert_eq!(pair, in_place, "rate {rate}, batch 1");
        let (pair, in_place) = train_both::<Relu, 8>(Relu, rate, 5);
        assert_eq!(pair, in_place, "rate {rate}, batch 8");
    }
}

#[test]
fn with_other_sign_derivatives_it_trains_like_the_pair_up_to_rounding() {
    // The derivative's factors meet in another order, so the last bit may move; the
    // training must not.
    let (pair, in_place) = train_both::<LeakyRelu, 8>(LeakyRelu::new(0.3).unwrap(), 0.3, 5);
    let mut moved = 0;
    for (p, q) in pair.iter().zip(&in_place) {
        let (p, q) = (f32::from_bits(*p), f32::from_bits(*q));
        assert!((p - q).abs() <= 1e-4 * p.abs().max(1.0), "{p} vs {q}");
        moved += usize::from(p != q);
    }
    // And the two really differ in order somewhere, or this test would say nothing more
    // than the ReLU one.
    assert!(
        moved > 0,
        "leaky ReLU pair and in-place versions agree bit for bit"
    );
}

#[test]
fn it_saves_one_batch_buffer() {
    const B: usize = 8;
    let pair = Trainer::<Pair<Relu>, Adam<<Pair<Relu> as Network>::Params>, B>::RAM_BYTES;
    let in_place = Trainer::<InPlace<Relu>, Adam<<InPlace<Relu> as Network>::Params>, B>::RAM_BYTES;
    assert_eq!(pair - in_place, B * 16 * 4);
    assert_eq!(
        core::mem::size_of::<Pair<Relu>>(),
        core::mem::size_of::<InPlace<Relu>>()
    );
}

#[test]
fn inference_is_the_dense_layer_alone() {
    let (pair, in_place) = models(Relu, 0.5);
    let (x, _) = data(10, 2);
    for row in &x {
        assert_eq!(pair.infer(row), in_place.infer(row));
    }
}

#[test]
fn saved_files_do_not_cross_forms_but_parameters_copy_across() {
    let (pair, _) = models(Relu, 0.2);
    let mut buffer = [0u8; 4096];
    let written = persist::save(&pair, &mut buffer).unwrap();
    let (_, mut in_place) = models(Relu, 0.2);
    for w in in_place.parameters_mut().flatten() {
        *w = 0.5;
    }
    let before = bits(&in_place);
    assert_eq!(
        persist::load(&mut in_place, &buffer[..written]),
        Err(Error::Shape)
    );
    assert_eq!(bits(&in_place), before, "a refused load changed the model");

    for (to, from) in in_place.parameters_mut().zip(pair.parameters()) {
        to.copy_from_slice(from);
    }
    assert_eq!(bits(&in_place), bits(&pair));
}
