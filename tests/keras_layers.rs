//! microtrain's layers against Keras 3: SELU, the weight constraints, AlphaDropout's and
//! GaussianDropout's constants, and the activity-regularized loss and gradients of a small
//! model. The reference values come from `tests/reference/keras_layers.py` (Keras 3 on JAX,
//! CPU, float32), committed as `tests/reference/keras_layers.json` with its versions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use microtrain::constraint::{Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm};
use microtrain::layers::MaskSeed;
use microtrain::*;
use serde_json::Value;

/// Elementwise results of one correctly rounded operation (or of the same few operations
/// in the same order) must agree to 1 ulp; `libm`'s and XLA's `expm1` are each within 1 ulp
/// of the truth, so SELU's values may differ by 2.
const ELEMENTWISE_ULPS: u32 = 1;
const TRANSCENDENTAL_ULPS: u32 = 2;
/// A SELU derivative at a negative output is `y + scale·alpha` here and
/// `scale·alpha·(expm1(z) + 1)` in JAX: both cancel against a value of about 1.76, so each
/// carries an absolute error of up to an ulp of 1.76 (1.2e-7); two of them.
const SELU_DERIVATIVE_ATOL: f32 = 2.0 * 1.192_092_9e-7;
/// Norms are sums of 3 or 4 squares, summed in storage order here and in XLA's order
/// there: the results may differ by a few ulps, about 1e-6 relative.
const REDUCTION_RTOL: f32 = 1e-6;
/// The activity-regularized loss and gradients are sums over a batch of products through
/// three layers: agreement to 1e-6 relative (with 1e-8 absolute for values near 0).
const GRADIENT_RTOL: f32 = 2e-6;
const GRADIENT_ATOL: f32 = 1e-8;

fn fixture() -> Value {
    let text = include_str!("reference/keras_layers.json");
    serde_json::from_str(text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn matrix(v: &Value) -> Vec<Vec<f32>> {
    v.as_array().unwrap().iter().map(floats).collect()
}

/// Keras' `[in][out]` kernel as microtrain's `[out][in]`, flattened.
fn transposed(kernel: &[Vec<f32>]) -> Vec<f32> {
    let (inputs, outputs) = (kernel.len(), kernel[0].len());
    (0..outputs)
        .flat_map(|o| (0..inputs).map(move |i| kernel[i][o]))
        .collect()
}

fn ulps(a: f32, b: f32) -> u32 {
    if a == b {
        return 0;
    }
    let key = |x: f32| {
        let bits = x.to_bits() as i64;
        if bits < 0 {
            i64::from(i32::MIN) - bits
        } else {
            bits
        }
    };
    key(a).abs_diff(key(b)) as u32
}

fn close(a: f32, b: f32, rtol: f32, atol: f32) -> bool {
    (a - b).abs() <= atol + rtol * a.abs().max(b.abs())
}

#[test]
fn the_fixture_records_its_versions() {
    let v = &fixture()["versions"];
    assert_eq!(v["keras"], "3.15.1");
    assert_eq!(v["backend"], "jax");
    assert_eq!(v["floatx"], "float32");
    assert!(v["jax"].as_str().is_some_and(|s| !s.is_empty()));
}

#[test]
fn selu_matches_keras_values_and_derivatives() {
    let f = fixture();
    let selu = &f["selu"];
    assert_eq!(Selu::ALPHA, selu["alpha"].as_f64().unwrap() as f32);
    assert_eq!(Selu::SCALE, selu["scale"].as_f64().unwrap() as f32);
    let (x, y, dy) = (
        floats(&selu["x"]),
        floats(&selu["y"]),
        floats(&selu["derivative"]),
    );
    for ((&x, &keras), &keras_dy) in x.iter().zip(&y).zip(&dy) {
        let ours = Selu.apply(x);
        assert!(
            ulps(ours, keras) <= TRANSCENDENTAL_ULPS,
            "selu({x}) = {ours}, Keras {keras}"
        );
        // The derivative from the output, as backward computes it.
        let slope = Selu.derivative(ours);
        assert!(
            (slope - keras_dy).abs() <= SELU_DERIVATIVE_ATOL,
            "selu'({x}) = {slope}, Keras {keras_dy}"
        );
    }
    // The in-place kernels agree with the scalar forms.
    let mut values = x.clone();
    Selu.activate(&mut values, x.len());
    let mut slopes = values.clone();
    Selu.derivative_in_place(&mut slopes);
    for ((&x, &v), &s) in x.iter().zip(&values).zip(&slopes) {
        assert_eq!(v.to_bits(), Selu.apply(x).to_bits());
        assert_eq!(s.to_bits(), Selu.derivative(v).to_bits());
    }
}

fn check_constraint(
    name: &str,
    constraint: impl Constraint,
    case: &Value,
    kernel: &[f32],
    bias: &[f32],
) {
    let inputs = 3;
    let mut ours = kernel.to_vec();
    constraint.apply(&mut ours, inputs);
    let keras = transposed(&matrix(&case["kernel"]));
    for (k, (&a, &b)) in ours.iter().zip(&keras).enumerate() {
        assert!(
            close(a, b, REDUCTION_RTOL, 0.0) && a.is_sign_negative() == b.is_sign_negative(),
            "{name} {}: kernel[{k}] = {a}, Keras {b}",
            case["params"]
        );
    }
    if case["bias"].is_array() {
        let mut ours = bias.to_vec();
        constraint.apply_to_vector(&mut ours);
        for (k, (&a, &b)) in ours.iter().zip(&floats(&case["bias"])).enumerate() {
            assert!(
                close(a, b, REDUCTION_RTOL, 0.0),
                "{name} {}: bias[{k}] = {a}, Keras {b}",
                case["params"]
            );
        }
    }
}

#[test]
fn constraints_match_keras_on_both_axes() {
    let f = fixture();
    let c = &f["constraints"];
    let kernel = transposed(&matrix(&c["kernel"]));
    let bias = floats(&c["bias"]);
    let cases = c["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for case in cases {
        let p = &case["params"];
        let num = |k: &str| p[k].as_f64().unwrap() as f32;
        let axis = || p["axis"].as_u64().unwrap() as usize;
        match case["name"].as_str().unwrap() {
            "NonNeg" => check_constraint("NonNeg", NonNeg, case, &kernel, &bias),
            "UnitNorm" => check_constraint(
                "UnitNorm",
                UnitNorm::new(axis()).unwrap(),
                case,
                &kernel,
                &bias,
            ),
            "MaxNorm" => check_constraint(
                "MaxNorm",
                MaxNorm::new(num("max_value"), axis()).unwrap(),
                case,
                &kernel,
                &bias,
            ),
            "MinMaxNorm" => check_constraint(
                "MinMaxNorm",
                MinMaxNorm::new(num("min_value"), num("max_value"), num("rate"), axis()).unwrap(),
                case,
                &kernel,
                &bias,
            ),
            other => panic!("unknown case {other}"),
        }
    }
}

#[test]
fn alpha_dropout_uses_keras_affine_correction() {
    let f = fixture();
    for case in f["alpha_dropout"].as_array().unwrap() {
        let rate = case["rate"].as_f64().unwrap() as f32;
        let layer = AlphaDropout::<64>::new(rate).unwrap();
        let (a, b) = layer.affine();
        let num = |k: &str| case[k].as_f64().unwrap() as f32;
        assert!(
            ulps(a, num("a")) <= ELEMENTWISE_ULPS,
            "rate {rate}: a {a}, Keras {}",
            num("a")
        );
        assert!(
            ulps(b, num("b")) <= ELEMENTWISE_ULPS,
            "rate {rate}: b {b}, Keras {}",
            num("b")
        );
        // A training pass on Keras' inputs: each output is Keras' kept output for its input,
        // or Keras' dropped value.
        let inputs = floats(&case["inputs"]);
        let kept_outputs = floats(&case["kept_outputs"]);
        let mut x = [[0.0f32; 64]; 1];
        x[0][..inputs.len()].copy_from_slice(&inputs);
        let mut y = [[0.0f32; 64]; 1];
        let mut seed = MaskSeed::default();
        layer.forward(
            &x,
            &mut y,
            &mut seed,
            &mut Xoshiro128PlusPlus::seed_from_u64(3),
        );
        let (mut kept, mut dropped) = (0, 0);
        for (k, (&out, &keras)) in y[0].iter().zip(&kept_outputs).enumerate() {
            if ulps(out, num("dropped_value")) <= ELEMENTWISE_ULPS {
                dropped += 1;
            } else {
                assert!(
                    ulps(out, keras) <= ELEMENTWISE_ULPS,
                    "rate {rate}: x {} -> {out}, Keras {keras}",
                    inputs[k]
                );
                kept += 1;
            }
        }
        assert!(
            kept > 0 && dropped > 0,
            "rate {rate}: {kept} kept, {dropped} dropped"
        );
    }
}

#[test]
fn gaussian_dropout_deviation_is_keras() {
    let f = fixture();
    for case in f["gaussian_dropout"].as_array().unwrap() {
        let rate = case["rate"].as_f64().unwrap() as f32;
        let keras = case["stddev"].as_f64().unwrap() as f32;
        let ours = GaussianDropout::<4>::new(rate).unwrap().stddev();
        // Keras' rate is the f64 nearest the decimal, ours the f32: up to an ulp apart.
        assert!(
            ulps(ours, keras) <= ELEMENTWISE_ULPS,
            "rate {rate}: {ours} vs {keras}"
        );
    }
}

network! {
    type Regularized = (
        Dense<3, 4, Tanh, Regularizer>,
        Dense<4, 3, Selu, Regularizer>,
        Dense<3, 2, Sigmoid>,
    );
}

fn regularized_model(activity: &Value) -> Regularized {
    let num = |k: &str| activity[k].as_f64().unwrap() as f32;
    let mut model: Regularized = (
        Dense::new(Tanh).with_activity_regularizer(l1_l2(num("l1"), num("l2")).unwrap()),
        Dense::new(Selu).with_activity_regularizer(l2(num("l2_second")).unwrap()),
        Dense::new(Sigmoid),
    );
    let weights = activity["weights"].as_array().unwrap();
    let values = weights.iter().flat_map(|layer| {
        [
            transposed(&matrix(&layer["kernel"])),
            floats(&layer["bias"]),
        ]
    });
    for (tensor, values) in model.parameters_mut().zip(values) {
        tensor.copy_from_slice(&values);
    }
    model
}

#[test]
fn activity_regularized_loss_and_gradients_match_keras() {
    let f = fixture();
    let activity = &f["activity"];
    let model = regularized_model(activity);
    let x: Vec<[f32; 3]> = matrix(&activity["x"])
        .iter()
        .map(|r| r.clone().try_into().unwrap())
        .collect();
    let y: Vec<[f32; 2]> = matrix(&activity["y"])
        .iter()
        .map(|r| r.clone().try_into().unwrap())
        .collect();
    let data = Dataset::new(&x, &y).unwrap();
    for batch in activity["batches"].as_array().unwrap() {
        let rows = batch["rows"].as_u64().unwrap() as usize;
        let indices: Vec<usize> = (0..rows).collect();
        let mut trainer = Trainer::<Regularized, Sgd, 5>::new(Sgd::new(0.1).unwrap());
        let report = trainer
            .compute_gradients(
                &model,
                &MeanSquaredError,
                data,
                &indices,
                &mut Xoshiro128PlusPlus::seed_from_u64(0),
            )
            .unwrap();
        let keras_loss = batch["loss"].as_f64().unwrap() as f32;
        assert!(
            close(report.loss, keras_loss, GRADIENT_RTOL, 0.0),
            "{rows} rows: loss {}, Keras {keras_loss}",
            report.loss
        );
        let keras: Vec<Vec<f32>> = batch["gradients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                if g[0].is_array() {
                    transposed(&matrix(g))
                } else {
                    floats(g)
                }
            })
            .collect();
        for (t, (ours, keras)) in trainer.gradients().tensors().zip(&keras).enumerate() {
            assert_eq!(ours.len(), keras.len());
            for (k, (&a, &b)) in ours.iter().zip(keras).enumerate() {
                assert!(
                    close(a, b, GRADIENT_RTOL, GRADIENT_ATOL),
                    "{rows} rows: tensor {t}[{k}] = {a}, Keras {b}"
                );
            }
        }
    }
    // Keras' evaluate reports the activity terms too.
    let metrics = evaluate(&model, &MeanSquaredError, data).unwrap();
    let keras = activity["evaluate_batch_5"].as_f64().unwrap() as f32;
    assert!(
        close(metrics.loss, keras, GRADIENT_RTOL, 0.0),
        "evaluate: {}, Keras {keras}",
        metrics.loss
    );
}
