//! A long run at B = 1 of the reference network with L2 (the timing programs' network):
//! units whose ReLU died keep only their L2 gradient, and Adam decays their weights and
//! moments geometrically towards zero. Without a flush they end up subnormal, where every
//! operation on them is slow on many x86 cores; the SIMD set's updates flush every value they
//! write below `f32::MIN_POSITIVE` to zero, so that none is left (`kernels::FLUSHES_SUBNORMALS`).
//! The gradients are counted too: the L2 term `2·λ·w` of a weight just above
//! `f32::MIN_POSITIVE` is still subnormal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use microtrain::*;

type Mlp = (
    Dense<32, 64, Relu>,
    Dropout<64>,
    Dense<64, 64, Relu>,
    Dropout<64>,
    Dense<64, 1, Sigmoid>,
);
type Opt = Adam<<Mlp as Network>::Params>;

/// Enough steps for the decaying values to cross `f32::MIN_POSITIVE` (a few hundred
/// parameters were subnormal after 60 k steps without the flush).
const STEPS: usize = 60_000;

fn is_subnormal(x: &f32) -> bool {
    x.is_subnormal()
}

#[test]
fn a_long_l2_run_at_batch_one_leaves_no_subnormal_parameter_or_moment() {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
    let penalty = l2(1e-4).unwrap();
    let dropout = Dropout::new(0.5).unwrap();
    let mut model: Mlp = (
        Dense::new(Relu).with_kernel_regularizer(penalty),
        dropout,
        Dense::new(Relu).with_kernel_regularizer(penalty),
        dropout,
        Dense::new(Sigmoid).with_kernel_regularizer(penalty),
    );
    model.initialize(&mut rng);
    let adam = Adam::new(1e-3).unwrap().with_epsilon(1e-8).unwrap();
    let mut trainer = Box::new(Trainer::<Mlp, Opt, 1>::new(adam));
    // 64 samples, N(0, 1)-like inputs (sums of uniforms) and random labels, cycled.
    let mut unit = || (rng.next_u32() >> 8) as f32 / 16_777_216.0;
    let xs: Vec<[f32; 32]> = (0..64)
        .map(|_| core::array::from_fn(|_| (0..4).map(|_| unit()).sum::<f32>() * 1.7 - 3.4))
        .collect();
    let ys: Vec<[f32; 1]> = (0..64).map(|_| [f32::from(unit() < 0.5)]).collect();
    let data = Dataset::new(&xs, &ys).unwrap();
    let indices: Vec<usize> = (0..64).collect();
    let mut step_rng = Xoshiro128PlusPlus::seed_from_u64(2);
    for i in 0..STEPS {
        let k = i % 64;
        trainer
            .step(
                &mut model,
                &BinaryCrossEntropy,
                data,
                &indices[k..=k],
                &mut step_rng,
            )
            .unwrap();
    }
    let parameters = model
        .parameters()
        .flatten()
        .filter(|x| is_subnormal(x))
        .count();
    let moments = trainer
        .optimizer()
        .state()
        .flatten()
        .filter(|x| is_subnormal(x))
        .count();
    let gradients = trainer
        .gradients()
        .tensors()
        .flatten()
        .filter(|x| is_subnormal(x))
        .count();
    println!(
        "after {STEPS} steps: {parameters} of {} parameters subnormal, \
         {moments} subnormal optimizer state values, {gradients} subnormal gradients",
        model.parameters().flatten().count()
    );
    if kernels::FLUSHES_SUBNORMALS {
        assert_eq!((parameters, moments), (0, 0));
    } else {
        // The scalar set keeps IEEE arithmetic's bits: the run does reach the subnormals.
        assert!(parameters > 0 && moments > 0);
    }
}
