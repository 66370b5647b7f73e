//! Weight constraints in training: applied after every update, to kernel and bias, and
//! free when unused. (Their formulas against Keras' are in `tests/keras_layers.rs`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::mem::size_of;

use microtrain::constraint::{MinMaxNorm, NonNeg, Unconstrained, UnitNorm};
use microtrain::*;

network! {
    type Constrained = (
        Dense<3, 4, Tanh, NoActivityRegularizer, NonNeg, UnitNorm>,
        Dense<4, 2, Identity, NoActivityRegularizer, MinMaxNorm>,
    );
}

fn norm(values: &[f32]) -> f32 {
    values.iter().map(|v| v * v).sum::<f32>().sqrt()
}

#[test]
fn constraints_hold_after_every_step_and_fit() {
    let mut model: Constrained = (
        Dense::new(Tanh)
            .with_kernel_constraint(NonNeg)
            .with_bias_constraint(UnitNorm::new(0).unwrap()),
        Dense::new(Identity).with_kernel_constraint(MinMaxNorm::new(0.5, 0.75, 1.0, 1).unwrap()),
    );
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(4);
    model.initialize(&mut rng);
    let x = [
        [1.0, -2.0, 0.5],
        [-1.0, 0.3, 2.0],
        [0.2, 0.2, -1.5],
        [2.0, 1.0, 0.0],
    ];
    let y = [[1.0, -1.0], [0.0, 2.0], [-3.0, 0.5], [1.5, 1.5]];
    let data = Dataset::new(&x, &y).unwrap();
    let mut trainer = Trainer::<Constrained, _, 4>::new(Sgd::new(0.5).unwrap());
    let check = |model: &Constrained, when: &str| {
        let first = model.0.params;
        assert!(
            first.weights.as_flattened().iter().all(|&w| w >= 0.0),
            "{when}: a negative weight under NonNeg"
        );
        assert!((norm(&first.bias) - 1.0).abs() < 1e-6, "{when}: bias norm");
        // MinMaxNorm on Keras' axis 1: the weights leaving each input, a column of [out][in].
        let second = model.1.params.weights;
        for i in 0..4 {
            let column: Vec<f32> = second.iter().map(|row| row[i]).collect();
            let n = norm(&column);
            assert!(
                (0.5 - 1e-6..=0.75 + 1e-6).contains(&n),
                "{when}: column {i} norm {n}"
            );
        }
    };
    for step in 0..5 {
        trainer
            .step(&mut model, &MeanSquaredError, data, &[0, 1, 2, 3], &mut rng)
            .unwrap();
        check(&model, &format!("step {step}"));
    }
    trainer
        .fit(
            &mut model,
            &MeanSquaredError,
            data,
            None,
            &FitConfig::epochs(20),
            &mut rng,
            |_| Control::Continue,
        )
        .unwrap();
    check(&model, "fit");
}

#[test]
fn a_layer_without_constraints_or_activity_regularizer_stores_nothing_for_them() {
    type Plain = Dense<30, 64, Relu>;
    let fields = size_of::<DenseParams<30, 64>>() + 2 * size_of::<Regularizer>() + size_of::<f32>();
    assert_eq!(size_of::<Plain>(), fields);
    assert_eq!(
        size_of::<Dense<30, 64, Relu, NoActivityRegularizer, NonNeg, Unconstrained>>(),
        fields
    );
    assert_eq!(
        size_of::<Dense<30, 64, Relu, Regularizer>>(),
        fields + size_of::<Regularizer>()
    );
}
