//! Frozen layers: nothing trains them, the rest trains exactly as in the unfrozen model,
//! they cost no gradient or optimizer RAM, and backward does no work under the lowest
//! trainable layer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::cell::Cell;
use core::mem::size_of;

use microtrain::*;

const SPARSE: SparseCategoricalCrossEntropy<usize> = SparseCategoricalCrossEntropy::new();

type Prefix = Dense<4, 8, Tanh>;
type Middle = Dense<8, 6, Relu>;
type Head = Dense<6, 3, Softmax>;

/// The model trained whole.
type Whole = (Prefix, Dropout<8>, Middle, Head);
/// The same with the first layer frozen.
type FrozenPrefix = (Frozen<Prefix>, Dropout<8>, Middle, Head);
/// The same with the middle layer frozen: gradients must still flow through it.
type FrozenMiddle = (Prefix, Dropout<8>, Frozen<Middle>, Head);

fn rng(seed: u64) -> Xoshiro128PlusPlus {
    Xoshiro128PlusPlus::seed_from_u64(seed)
}

fn whole(seed: u64) -> Whole {
    let regularized = l1_l2(1e-3, 1e-2).unwrap();
    let mut model: Whole = (
        Dense::new(Tanh)
            .with_kernel_regularizer(regularized)
            .with_bias_regularizer(regularized)
            .with_max_norm(0.5)
            .unwrap(),
        Dropout::new(0.25).unwrap(),
        Dense::new(Relu).with_kernel_regularizer(regularized),
        Dense::new(Softmax).with_kernel_regularizer(l2(1e-2).unwrap()),
    );
    model.initialize(&mut rng(seed));
    for tensor in model.parameters_mut() {
        // Non-zero biases, so that bias gradients and penalties are exercised.
        tensor.iter_mut().for_each(|w| *w += 0.05);
    }
    model
}

fn frozen_prefix(model: Whole) -> FrozenPrefix {
    (Frozen::new(model.0), model.1, model.2, model.3)
}

fn frozen_middle(model: Whole) -> FrozenMiddle {
    (model.0, model.1, Frozen::new(model.2), model.3)
}

fn data(rows: usize, seed: u64) -> (Vec<[f32; 4]>, Vec<usize>) {
    let mut r = rng(seed);
    let x: Vec<[f32; 4]> = (0..rows)
        .map(|_| core::array::from_fn(|_| (r.next_u32() >> 8) as f32 / 8_388_608.0 - 1.0))
        .collect();
    let y = x
        .iter()
        .map(|s| usize::from(s[0] + s[1] > 0.0) + usize::from(s[2] > 0.5))
        .collect();
    (x, y)
}

fn bits(tensors: impl Iterator<Item = impl AsRef<[f32]>>) -> Vec<u32> {
    tensors
        .flat_map(|t| t.as_ref().iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

fn dense_bits<const I: usize, const O: usize, A: Activation>(layer: &Dense<I, O, A>) -> Vec<u32> {
    bits(layer.params().tensors())
}

#[test]
fn a_frozen_layer_keeps_its_bits_over_a_whole_fit() {
    let (x, y) = data(96, 1);
    let data = Dataset::new(&x, &y).unwrap();
    let mut model = frozen_prefix(whole(2));
    let (before, head_before) = (dense_bits(model.0.layer()), dense_bits(&model.3));
    let mut trainer = Trainer::<FrozenPrefix, Adam<<FrozenPrefix as Network>::Params>, 8>::new(
        Adam::new(0.05).unwrap(),
    )
    .with_clipping(Clipping::NONE.global_norm(1.0).unwrap());
    let mut r = rng(3);
    let summary = trainer
        .fit(
            &mut model,
            &SPARSE,
            data,
            None,
            &FitConfig::epochs(20),
            &mut r,
            |_: &EpochReport| Control::Continue,
        )
        .unwrap();
    assert_eq!(summary.epochs, 20);
    // Regularized, max-norm constrained and below trainable layers: still not one bit moved.
    assert_eq!(dense_bits(model.0.layer()), before);
    assert_ne!(
        dense_bits(&model.3),
        head_before,
        "the head must have trained"
    );
    // Re-initialising the network leaves a frozen layer as it is, too.
    model.initialize(&mut r);
    assert_eq!(dense_bits(model.0.layer()), before);
}

/// Gradients of the same batch, with the same generator (so the same dropout masks).
fn gradients<N>(model: &N, x: &[[f32; 4]], y: &[usize]) -> (Vec<u32>, f32)
where
    SparseCategoricalCrossEntropy<usize>: Loss<N::OutputActivation, N::Output, Target = usize>,
    N: Network<Input = [f32; 4]>,
{
    let data = Dataset::new(x, y).unwrap();
    let mut trainer = Trainer::<N, Sgd, 16>::new(Sgd::new(0.1).unwrap());
    let indices: Vec<usize> = (0..x.len().min(16)).collect();
    let report = trainer
        .compute_gradients(model, &SPARSE, data, &indices, &mut rng(9))
        .unwrap();
    (bits(trainer.gradients().tensors()), report.loss)
}

#[test]
fn trainable_gradients_equal_those_of_the_unfrozen_model_bit_for_bit() {
    let (x, y) = data(16, 4);
    let model = whole(5);
    let (all, _) = gradients(&model, &x, &y);
    let prefix_len = <Prefix as Layer>::Params::COUNT;
    let middle_len = <Middle as Layer>::Params::COUNT;

    let (without_prefix, _) = gradients(&frozen_prefix(model), &x, &y);
    assert_eq!(without_prefix, all[prefix_len..]);

    let (without_middle, _) = gradients(&frozen_middle(model), &x, &y);
    let mut expected = all[..prefix_len].to_vec();
    expected.extend_from_slice(&all[prefix_len + middle_len..]);
    assert_eq!(without_middle, expected);
}

#[test]
fn a_frozen_layers_penalty_is_not_in_the_loss_as_in_keras_3() {
    let (x, y) = data(16, 4);
    let model = whole(5);
    let (_, whole_loss) = gradients(&model, &x, &y);
    let frozen = frozen_prefix(model);
    let (_, frozen_loss) = gradients(&frozen, &x, &y);
    let prefix_penalty = frozen.0.layer().penalty();
    assert!(prefix_penalty > 0.0);
    let expected = whole_loss - prefix_penalty;
    assert!(
        (frozen_loss - expected).abs() <= 1e-6 * whole_loss.abs(),
        "{frozen_loss} vs {expected}"
    );
    let expected = model.penalty() - prefix_penalty;
    assert!((frozen.penalty() - expected).abs() <= 1e-6 * expected);
}

#[test]
fn trainable_gradients_match_finite_differences() {
    // Central differences in f64 of the f32 loss would be limited by its rounding; with
    // step H = 1e-2 on losses of size ~1 the quotient carries ~1e-5 of rounding noise
    // and ~1e-5 of truncation error (tests/gradients.rs derives the same budget).
    const H: f32 = 1e-2;
    const ATOL: f32 = 1e-4;
    const RTOL: f32 = 1e-3;
    let (x, y) = data(16, 6);
    // Tanh and softmax only in the trained path (no kink within H); ReLU stays frozen.
    type Net = (
        Frozen<Dense<4, 8, Relu>>,
        Dense<8, 6, Tanh>,
        Dense<6, 3, Softmax>,
    );
    let mut model: Net = (
        Frozen::new({
            let mut prefix = Dense::new(Relu).with_kernel_regularizer(l2(1e-2).unwrap());
            prefix.initialize(&mut rng(7));
            prefix
        }),
        Dense::new(Tanh).with_kernel_regularizer(l1_l2(1e-3, 1e-2).unwrap()),
        Dense::new(Softmax).with_bias_regularizer(l2(1e-2).unwrap()),
    );
    model.initialize(&mut rng(8));
    let data = Dataset::new(&x, &y).unwrap();
    let indices: Vec<usize> = (0..16).collect();
    let loss_of = |model: &Net| {
        let mut trainer = Trainer::<Net, Sgd, 16>::new(Sgd::new(0.1).unwrap());
        let report = trainer
            .compute_gradients(model, &SPARSE, data, &indices, &mut rng(1))
            .unwrap();
        (
            report.loss,
            trainer
                .gradients()
                .tensors()
                .flat_map(|t| t.to_vec())
                .collect::<Vec<_>>(),
        )
    };
    let (_, analytic) = loss_of(&model);
    assert_eq!(analytic.len(), <Net as Network>::PARAMETERS);
    let mut k = 0;
    let tensors = model.parameters().map(<[f32]>::len).collect::<Vec<_>>();
    for (t, &len) in tensors.iter().enumerate() {
        for i in 0..len {
            let mut moved = model;
            let mut set = |delta: f32| {
                moved = model;
                let w = &mut moved.parameters_mut().nth(t).unwrap()[i];
                *w += delta;
                loss_of(&moved).0
            };
            let numeric = (set(H) - set(-H)) / (2.0 * H);
            let g = analytic[k];
            assert!(
                (numeric - g).abs() <= ATOL + RTOL * g.abs(),
                "tensor {t} index {i}: analytic {g}, numeric {numeric}"
            );
            k += 1;
        }
    }
    assert_eq!(k, analytic.len());
}

#[test]
fn ram_drops_by_exactly_the_frozen_gradients_and_optimizer_state() {
    type WholeTrainer = Trainer<Whole, Adam<<Whole as Network>::Params>, 8>;
    type FrozenTrainer = Trainer<FrozenPrefix, Adam<<FrozenPrefix as Network>::Params>, 8>;
    let prefix = size_of::<DenseParams<4, 8>>();
    // Adam: the gradient, m and v of the prefix.
    assert_eq!(
        FrozenTrainer::RAM_BYTES,
        WholeTrainer::RAM_BYTES - 3 * prefix
    );
    // Owned, the prefix's parameters stay in the model.
    assert_eq!(size_of::<FrozenPrefix>(), size_of::<Whole>());
    assert_eq!(
        FrozenTrainer::TRAINING_RAM_BYTES,
        WholeTrainer::TRAINING_RAM_BYTES - 3 * prefix
    );

    // Borrowed (from a `static`: flash on a microcontroller), it costs the model a reference.
    type InFlash = (Frozen<Prefix, &'static Prefix>, Dropout<8>, Middle, Head);
    type FlashTrainer = Trainer<InFlash, Adam<<InFlash as Network>::Params>, 8>;
    assert_eq!(FlashTrainer::RAM_BYTES, FrozenTrainer::RAM_BYTES);
    // The parts, padded to the reference's alignment (8 bytes on 64-bit hosts).
    let parts =
        size_of::<&Prefix>() + size_of::<Dropout<8>>() + size_of::<Middle>() + size_of::<Head>();
    assert_eq!(
        size_of::<InFlash>(),
        parts.next_multiple_of(core::mem::align_of::<InFlash>())
    );
    assert_eq!(
        FlashTrainer::TRAINING_RAM_BYTES,
        size_of::<InFlash>() + FlashTrainer::RAM_BYTES
    );
}

static FLASH_PREFIX: Dense<4, 8, Tanh> = Dense::new(Tanh).with_params(DenseParams {
    weights: [[0.5, -0.25, 0.125, 1.0]; 8],
    bias: [0.1; 8],
});

#[test]
fn a_prefix_borrowed_from_a_static_trains_like_an_owned_one() {
    let (x, y) = data(48, 10);
    let data = Dataset::new(&x, &y).unwrap();
    type Owned = (Frozen<Prefix>, Head2);
    type Borrowed = (Frozen<Prefix, &'static Prefix>, Head2);
    type Head2 = Dense<8, 3, Softmax>;
    let mut head: Head2 = Dense::new(Softmax);
    head.initialize(&mut rng(11));
    let mut owned: Owned = (Frozen::new(FLASH_PREFIX), head);
    let mut borrowed: Borrowed = (Frozen::borrowed(&FLASH_PREFIX), head);
    let config = FitConfig::epochs(5);
    let mut a = Trainer::<Owned, Sgd, 4>::new(Sgd::new(0.1).unwrap());
    a.fit(
        &mut owned,
        &SPARSE,
        data,
        None,
        &config,
        &mut rng(12),
        |_: &EpochReport| Control::Continue,
    )
    .unwrap();
    let mut b = Trainer::<Borrowed, Sgd, 4>::new(Sgd::new(0.1).unwrap());
    b.fit(
        &mut borrowed,
        &SPARSE,
        data,
        None,
        &config,
        &mut rng(12),
        |_: &EpochReport| Control::Continue,
    )
    .unwrap();
    assert_eq!(dense_bits(&owned.1), dense_bits(&borrowed.1));
    assert_ne!(dense_bits(&owned.1), dense_bits(&head));
}

thread_local! {
    static PROPAGATED: Cell<usize> = const { Cell::new(0) };
}

/// A dense layer that counts its input-gradient passes.
#[derive(Clone, Copy)]
struct Counted<const I: usize, const O: usize>(Dense<I, O, Tanh>);

impl<const I: usize, const O: usize> Layer for Counted<I, O> {
    type Input = [f32; I];
    type Output = [f32; O];
    type Params = DenseParams<I, O>;
    type Cache = ();
    type Activation = Tanh;
    fn params(&self) -> &Self::Params {
        self.0.params()
    }
    fn params_mut(&mut self) -> &mut Self::Params {
        self.0.params_mut()
    }
    fn activation(&self) -> &Tanh {
        self.0.activation()
    }
    fn infer(&self, input: &[f32; I]) -> [f32; O] {
        self.0.infer(input)
    }
    fn forward<R: Rng + ?Sized>(&self, i: &[[f32; I]], o: &mut [[f32; O]], c: &mut (), r: &mut R) {
        self.0.forward(i, o, c, r);
    }
    fn parameter_gradients(&self, i: &[[f32; I]], d: &[[f32; O]], g: &mut Self::Params) -> f32 {
        self.0.parameter_gradients(i, d, g)
    }
    fn propagate(&self, d: &[[f32; O]], i: &mut [[f32; I]], c: &()) {
        PROPAGATED.with(|n| n.set(n.get() + 1));
        self.0.propagate(d, i, c);
    }
    fn penalty(&self) -> f32 {
        self.0.penalty()
    }
}
impl<const I: usize, const O: usize> Hidden for Counted<I, O> {
    fn derivative_of_output(&self, output: &mut [[f32; O]], cache: &()) {
        self.0.derivative_of_output(output, cache);
    }
}
impl<const I: usize, const O: usize> OutputLayer for Counted<I, O> {
    fn forward_pre_activation<R: Rng + ?Sized>(
        &self,
        i: &[[f32; I]],
        o: &mut [[f32; O]],
        c: &mut (),
        r: &mut R,
    ) {
        self.0.forward_pre_activation(i, o, c, r);
    }
    fn infer_pre_activation(&self, input: &[f32; I]) -> [f32; O] {
        self.0.infer_pre_activation(input)
    }
}

fn propagations<N: Network<Input = [f32; 4], Output = [f32; 1]>>(model: &N) -> usize
where
    MeanSquaredError: Loss<N::OutputActivation, N::Output, Target = [f32; 1]>,
{
    let x = [[0.5f32, -0.25, 0.75, 0.1]; 4];
    let y = [[0.3f32]; 4];
    let mut trainer = Trainer::<N, Sgd, 4>::new(Sgd::new(0.1).unwrap());
    PROPAGATED.with(|n| n.set(0));
    trainer
        .compute_gradients(
            model,
            &MeanSquaredError,
            Dataset::new(&x, &y).unwrap(),
            &[0, 1, 2, 3],
            &mut rng(0),
        )
        .unwrap();
    PROPAGATED.with(Cell::get)
}

#[test]
fn no_input_gradient_is_propagated_below_the_lowest_trainable_layer() {
    let (a, b, c) = (
        Counted(Dense::<4, 5, Tanh>::new(Tanh)),
        Counted(Dense::<5, 6, Tanh>::new(Tanh)),
        Counted(Dense::<6, 1, Tanh>::new(Tanh)),
    );
    // The first layer never propagates; the other two do when all train.
    assert_eq!(propagations(&(a, b, c)), 2);
    // Frozen first layer: the second still needs its δ from the third, nothing more.
    assert_eq!(propagations(&(Frozen::new(a), b, c)), 1);
    // Frozen prefix of two: only the head's weight gradient is computed.
    assert_eq!(propagations(&(Frozen::new(a), Frozen::new(b), c)), 0);
    // A frozen layer above a trainable one still passes the gradient down.
    assert_eq!(propagations(&(a, Frozen::new(b), c)), 2);
}
