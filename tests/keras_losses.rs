//! The losses, label smoothing and sample/class weights against Keras 3's own numbers:
//! `tests/reference/keras_losses.json`, written by `tests/reference/keras_losses.py` (Keras
//! 3.15.1 on JAX 0.10.2, float32 on the CPU; versions in the file).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use microtrain::*;
use serde_json::Value;

const FIXTURE: &str = include_str!("reference/keras_losses.json");

/// Tolerance of a loss value, in ulps of the largest term it is summed from
/// (`|value| + max(|z|, 1)`: the logits enter through `t·z` and `z - max z`, the log-sum-exp
/// through the `ln` of a sum ≥ 1, so a half-ulp rounding of such a term, or an `exp`/`ln`
/// one ulp apart between libm and XLA, moves the value by an ulp of it). Observed: ≤ 1.
const VALUE_ULPS: f32 = 2.0;
/// Absolute tolerance of a gradient with respect to a logit: `p·Σt - t` with `p, t ∈ [0, 1]`
/// (divided by the outputs for binary losses), computed here as `e·(1/Σe)` and by JAX as
/// `exp(log_softmax)` or through the sigmoid's derivative: ulps of 1. Observed: ≤ 1 ulp.
const GRAD_ATOL: f32 = 2.0 * f32::EPSILON;
/// 20 SGD steps of a 38-parameter model: weights, per-epoch losses and the final evaluation.
/// Observed ≤ 5e-7 with the default and the scalar kernels (the loss of ~1.1 to 2 ulps);
/// 1e-6 leaves room for builds whose kernels fuse multiply-adds (`-C target-cpu=native`).
const RUN_ATOL: f32 = 1e-6;

fn fixture() -> Value {
    serde_json::from_str(FIXTURE).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn rows<const N: usize>(v: &Value) -> Vec<[f32; N]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| floats(r).try_into().unwrap())
        .collect()
}

fn assert_value(case: &str, row: usize, ours: f32, keras: f32, magnitude: f32) {
    let tolerance = VALUE_ULPS * f32::EPSILON * (keras.abs() + magnitude.max(1.0));
    assert!(
        (ours - keras).abs() <= tolerance,
        "{case}, row {row}: value {ours}, Keras {keras}, |difference| {} > {tolerance}",
        (ours - keras).abs()
    );
}

fn assert_grads<const N: usize>(case: &str, row: usize, ours: &[f32; N], keras: &[f32; N]) {
    for (k, (a, b)) in ours.iter().zip(keras).enumerate() {
        assert!(
            (a - b).abs() <= GRAD_ATOL,
            "{case}, row {row}, logit {k}: gradient {a}, Keras {b}"
        );
    }
}

fn max_abs(row: &[f32]) -> f32 {
    row.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// Checks `loss` on `A`'s pre-activation rows `inputs` (what the loss is given: logits, or
/// for the probability form of binary cross-entropy the probabilities) against Keras.
#[allow(clippy::too_many_arguments)]
fn check_case<A, L, const N: usize>(
    case: &str,
    activation: A,
    loss: &L,
    inputs: &[[f32; N]],
    logits: &[[f32; N]],
    targets: &[L::Target],
    values: &[f32],
    grads: &[[f32; N]],
    compare_grad: impl Fn(usize) -> bool,
) where
    A: Activation,
    L: Loss<A, [f32; N]>,
{
    for (r, (input, target)) in inputs.iter().zip(targets).enumerate() {
        let value = loss.value(input, target);
        assert_value(case, r, value, values[r], max_abs(&logits[r]));
        let mut delta = *input;
        let fused = loss.value_and_delta(&activation, &mut delta, target, 1.0);
        assert_eq!(
            fused.to_bits(),
            value.to_bits(),
            "{case}, row {r}: value_and_delta"
        );
        if compare_grad(r) {
            assert_grads(case, r, &delta, &grads[r]);
        }
    }
}

struct Case<'a> {
    name: String,
    from_logits: bool,
    smoothing: f32,
    json: &'a Value,
}

fn cases(json: &Value) -> Vec<Case<'_>> {
    json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["loss"].as_str().unwrap().to_owned(),
            from_logits: c["from_logits"].as_bool().unwrap(),
            smoothing: c["label_smoothing"].as_f64().unwrap() as f32,
            json: c,
        })
        .collect()
}

#[test]
fn cross_entropies_from_logits_match_keras_values_and_gradients() {
    let json = fixture();
    let mut checked = 0;
    for case in cases(&json).iter().filter(|c| c.from_logits) {
        let c = case.json;
        let label = format!("{} from logits, ls {}", case.name, case.smoothing);
        let values = floats(&c["values"]);
        let all = |_| true;
        match case.name.as_str() {
            "categorical" | "categorical_soft" => {
                let (z, t, g) = (
                    rows::<3>(&c["logits"]),
                    rows::<3>(&c["targets"]),
                    rows::<3>(&c["grads"]),
                );
                // The same numbers from the logit form on an identity output and from the
                // softmax form, which reads the softmax layer's logits.
                let logits_loss =
                    CategoricalCrossEntropyFromLogits::with_label_smoothing(case.smoothing)
                        .unwrap();
                check_case(&label, Identity, &logits_loss, &z, &z, &t, &values, &g, all);
                let softmax_loss =
                    CategoricalCrossEntropy::with_label_smoothing(case.smoothing).unwrap();
                check_case(&label, Softmax, &softmax_loss, &z, &z, &t, &values, &g, all);
                if case.smoothing == 0.0 {
                    check_case(
                        &label,
                        Identity,
                        &CategoricalCrossEntropyFromLogits,
                        &z,
                        &z,
                        &t,
                        &values,
                        &g,
                        all,
                    );
                    check_case(
                        &label,
                        Softmax,
                        &CategoricalCrossEntropy,
                        &z,
                        &z,
                        &t,
                        &values,
                        &g,
                        all,
                    );
                }
            }
            "sparse" => {
                let (z, g) = (rows::<3>(&c["logits"]), rows::<3>(&c["grads"]));
                let labels: Vec<u8> = c["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_u64().unwrap() as u8)
                    .collect();
                let logits_loss = SparseCategoricalCrossEntropyFromLogits::<u8>::new();
                check_case(
                    &label,
                    Identity,
                    &logits_loss,
                    &z,
                    &z,
                    &labels,
                    &values,
                    &g,
                    all,
                );
                let softmax_loss = SparseCategoricalCrossEntropy::<u8>::new();
                check_case(
                    &label,
                    Softmax,
                    &softmax_loss,
                    &z,
                    &z,
                    &labels,
                    &values,
                    &g,
                    all,
                );
            }
            "binary" => {
                let (z, t, g) = (
                    rows::<2>(&c["logits"]),
                    rows::<2>(&c["targets"]),
                    rows::<2>(&c["grads"]),
                );
                let loss =
                    BinaryCrossEntropyFromLogits::with_label_smoothing(case.smoothing).unwrap();
                check_case(&label, Identity, &loss, &z, &z, &t, &values, &g, all);
            }
            other => panic!("unknown case {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 10, "cases from logits in the fixture");
}

#[test]
fn binary_cross_entropy_on_probabilities_keeps_keras_clamp() {
    let json = fixture();
    let epsilon = json["epsilon"].as_f64().unwrap() as f32;
    assert_eq!(epsilon, microtrain::loss::EPSILON);
    let mut checked = 0;
    for case in cases(&json)
        .iter()
        .filter(|c| !c.from_logits && c.name == "binary")
    {
        let c = case.json;
        let label = format!("binary on probabilities, ls {}", case.smoothing);
        let (z, p, t, g) = (
            rows::<2>(&c["logits"]),
            rows::<2>(&c["probabilities"]),
            rows::<2>(&c["targets"]),
            rows::<2>(&c["grads"]),
        );
        let loss = BinaryCrossEntropy::with_label_smoothing(case.smoothing).unwrap();
        // The value clamps as Keras; the gradient is the exact p - t, which Keras' JAX
        // backend equals only where no probability is clamped (it is 0 beyond the clamp).
        let unclamped = |r: usize| p[r].iter().all(|&p| p > epsilon && p < 1.0 - epsilon);
        check_case(
            &label,
            Sigmoid,
            &loss,
            &p,
            &z,
            &t,
            &floats(&c["values"]),
            &g,
            unclamped,
        );
        assert!(
            (0..p.len()).any(|r| !unclamped(r)),
            "the fixture has clamped rows"
        );
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn softmax_forms_agree_with_keras_probability_values_except_where_keras_clamps() {
    // Keras 3 on JAX computes the probability forms from probabilities clamped to
    // [ε, 1 - ε]: the value from the logits (within the rounding of ln p) unless a class with
    // a non-zero (smoothed) target has p < ε, where Keras counts -ln ε and microtrain, which
    // takes the value from the logits, the true -ln p: the deliberate difference README
    // documents.
    // ln of a probability whose softmax rounds by a few ulps: ≤ 1e-6 for |ln p| ≤ 16, times
    // Σt ≤ 1; -ln(1 - ε) = 1e-7 at the upper clamp.
    const LN_P_ATOL: f32 = 2e-6;
    let json = fixture();
    let epsilon = f64::from(microtrain::loss::EPSILON);
    let (mut same, mut differing) = (0, 0);
    for case in cases(&json)
        .iter()
        .filter(|c| !c.from_logits && c.name != "binary")
    {
        let c = case.json;
        let z = rows::<3>(&c["logits"]);
        let values = floats(&c["values"]);
        for (r, logits) in z.iter().enumerate() {
            let (ours, targets) = if case.name == "sparse" {
                let label = c["targets"][r].as_u64().unwrap() as usize;
                let loss = SparseCategoricalCrossEntropy::<usize>::new();
                let t: [f32; 3] = core::array::from_fn(|k| if k == label { 1.0 } else { 0.0 });
                (Loss::<Softmax, [f32; 3]>::value(&loss, logits, &label), t)
            } else {
                let t: [f32; 3] = floats(&c["targets"][r]).try_into().unwrap();
                let loss = CategoricalCrossEntropy::with_label_smoothing(case.smoothing).unwrap();
                let smoothed = t.map(|t| t * (1.0 - case.smoothing) + case.smoothing / 3.0);
                (
                    Loss::<Softmax, [f32; 3]>::value(&loss, logits, &t),
                    smoothed,
                )
            };
            let max = logits
                .iter()
                .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
            let sum: f64 = logits.iter().map(|&v| (f64::from(v) - max).exp()).sum();
            let clamped = logits
                .iter()
                .zip(targets)
                .any(|(&v, t)| t > 0.0 && (f64::from(v) - max).exp() / sum < epsilon);
            let label = format!("{} ls {}, row {r}", case.name, case.smoothing);
            if clamped {
                assert!(
                    ours > values[r] + 0.5,
                    "{label}: {ours}, Keras {}",
                    values[r]
                );
                differing += 1;
            } else {
                assert!(
                    (ours - values[r]).abs() <= LN_P_ATOL,
                    "{label}: {ours} against Keras' {}",
                    values[r]
                );
                same += 1;
            }
        }
    }
    assert!(
        same > 0 && differing > 0,
        "{same} rows agree, {differing} differ"
    );
}

#[test]
fn a_confident_mistake_costs_its_log_softmax_where_keras_jax_reports_the_clamp() {
    let json = fixture();
    let keras = json["keras_model_confident_mistake"].as_f64().unwrap() as f32;
    // Keras' Dense(softmax) + categorical_crossentropy model on JAX: -ln(1e-7).
    assert!((keras - 16.118_095).abs() < 1e-5, "{keras}");

    network! { type Net = (Dense<1, 3, Softmax>,); }
    let mut model: Net = (Dense::new(Softmax),);
    model.0.params.bias = [100.0, -100.0, 0.0];
    let x = [[0.0f32]];
    let (one_hot, label) = ([[0.0f32, 1.0, 0.0]], [1usize]);
    let categorical = Dataset::new(&x, &one_hot).unwrap();
    let sparse = Dataset::new(&x, &label).unwrap();
    let scce = SparseCategoricalCrossEntropy::<usize>::new();
    assert_eq!(
        evaluate(&model, &CategoricalCrossEntropy, categorical)
            .unwrap()
            .loss,
        200.0
    );
    assert_eq!(evaluate(&model, &scce, sparse).unwrap().loss, 200.0);
    assert_eq!(data_loss(&model, &scce, sparse), 200.0);
    // Training reports the same value, and its gradient is p - onehot (bias: [1, -1, 0]).
    let mut trainer = Trainer::<Net, _, 1>::new(Sgd::new(1.0).unwrap());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    let report = trainer
        .compute_gradients(&model, &scce, sparse, &[0], &mut rng)
        .unwrap();
    assert_eq!(report.loss, 200.0);
    let bias = trainer.gradients().0.bias;
    assert_eq!((bias[0], bias[1]), (1.0, -1.0));
    assert!((0.0..1e-40).contains(&bias[2]), "e^-100: {}", bias[2]);
    // Inference still gives probabilities.
    let p = model.infer(&[0.0]);
    assert_eq!((p[0], p[1]), (1.0, 0.0));
    assert!((0.0..1e-40).contains(&p[2]), "e^-100: {}", p[2]);
}

type Net = (Dense<4, 5, Tanh>, Dense<5, 3, Softmax>);

/// The fixture's initial weights (Keras' kernels are `[in][out]`, ours `[out][in]`).
fn initial_model(training: &Value) -> Net {
    let w = &training["initial"];
    let mut model: Net = (Dense::new(Tanh), Dense::new(Softmax));
    let k0 = rows::<5>(&w[0]);
    let k1 = rows::<3>(&w[2]);
    for (i, row) in k0.iter().enumerate() {
        for (o, &v) in row.iter().enumerate() {
            model.0.params.weights[o][i] = v;
        }
    }
    for (i, row) in k1.iter().enumerate() {
        for (o, &v) in row.iter().enumerate() {
            model.1.params.weights[o][i] = v;
        }
    }
    model.0.params.bias = floats(&w[1]).try_into().unwrap();
    model.1.params.bias = floats(&w[3]).try_into().unwrap();
    model
}

fn assert_close(what: &str, ours: &[f32], keras: &[f32]) {
    assert_eq!(ours.len(), keras.len(), "{what}");
    for (k, (a, b)) in ours.iter().zip(keras).enumerate() {
        assert!((a - b).abs() <= RUN_ATOL, "{what}[{k}]: {a}, Keras {b}");
    }
}

fn weighted_run(kind: &str) {
    let json = fixture();
    let training = &json["training"];
    let run = &training["runs"][kind];
    let x = rows::<4>(&training["x"]);
    let y: Vec<u8> = training["y"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_u64().unwrap() as u8)
        .collect();
    let (sample_weights, class_weights) = (
        floats(&training["sample_weights"]),
        floats(&training["class_weights"]),
    );
    let data = Dataset::new(&x, &y).unwrap();
    let data = match kind {
        "sample_weights" => data.with_sample_weights(&sample_weights).unwrap(),
        _ => data.with_class_weights(&class_weights).unwrap(),
    };
    let mut model = initial_model(training);
    let lr = training["learning_rate"].as_f64().unwrap() as f32;
    let steps = training["steps"].as_u64().unwrap() as usize;
    let loss = SparseCategoricalCrossEntropy::<u8>::new();
    let mut trainer = Trainer::<Net, _, 8>::new(Sgd::new(lr).unwrap());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    let (mut losses, mut accuracy) = (Vec::new(), Vec::new());
    let config = FitConfig::epochs(steps).with_shuffle(false);
    trainer
        .fit(&mut model, &loss, data, None, &config, &mut rng, |r| {
            losses.push(r.train.loss);
            accuracy.push(r.train.accuracy.unwrap());
            Control::Continue
        })
        .unwrap();
    assert_close(
        &format!("{kind}: epoch losses"),
        &losses,
        &floats(&run["losses"]),
    );
    // Keras' `metrics=["accuracy"]` is unweighted, as ours.
    assert_eq!(accuracy, floats(&run["accuracy"]), "{kind}: accuracy");
    let final_weights = &run["final"];
    let transpose = |k: &Value, width: usize| -> Vec<f32> {
        let k: Vec<Vec<f32>> = k.as_array().unwrap().iter().map(floats).collect();
        (0..width)
            .flat_map(|o| k.iter().map(move |r| r[o]).collect::<Vec<_>>())
            .collect()
    };
    assert_close(
        &format!("{kind}: kernel 0"),
        model.0.params.weights.as_flattened(),
        &transpose(&final_weights[0], 5),
    );
    assert_close(
        &format!("{kind}: bias 0"),
        &model.0.params.bias,
        &floats(&final_weights[1]),
    );
    assert_close(
        &format!("{kind}: kernel 1"),
        model.1.params.weights.as_flattened(),
        &transpose(&final_weights[2], 3),
    );
    assert_close(
        &format!("{kind}: bias 1"),
        &model.1.params.bias,
        &floats(&final_weights[3]),
    );

    // Keras' evaluate(sample_weight=…) (its evaluate takes no class weights).
    let evaluated_data = match kind {
        "sample_weights" => data,
        _ => Dataset::new(&x, &y).unwrap(),
    };
    let evaluated = evaluate(&model, &loss, evaluated_data).unwrap();
    // No penalty here: the loss without it is the same weighted mean.
    let without_penalty = data_loss(&model, &loss, evaluated_data);
    assert!(
        (without_penalty - evaluated.loss).abs() <= 1e-6,
        "{without_penalty}"
    );
    assert_close(
        &format!("{kind}: evaluate"),
        &[evaluated.loss],
        &[run["evaluate_loss"].as_f64().unwrap() as f32],
    );
    assert_eq!(
        evaluated.accuracy,
        Some(run["evaluate_accuracy"].as_f64().unwrap() as f32)
    );
}

#[test]
fn twenty_sgd_steps_with_sample_weights_match_keras() {
    weighted_run("sample_weights");
}

#[test]
fn twenty_sgd_steps_with_class_weights_match_keras() {
    weighted_run("class_weights");
}

#[test]
fn weights_and_smoothing_are_validated() {
    let (x, y) = ([[0.0f32]; 2], [0usize; 2]);
    let data = Dataset::new(&x, &y).unwrap();
    assert_eq!(
        data.with_sample_weights(&[1.0]).err(),
        Some(Error::WeightCount {
            samples: 2,
            weights: 1
        })
    );
    for bad in [-1.0, f32::NAN, f32::INFINITY] {
        assert!(matches!(
            data.with_sample_weights(&[1.0, bad]),
            Err(Error::Weight { .. })
        ));
        assert!(matches!(
            data.with_class_weights(&[bad]),
            Err(Error::Weight { .. })
        ));
        assert!(matches!(
            BinaryCrossEntropy::with_label_smoothing(bad),
            Err(Error::LabelSmoothing { .. })
        ));
    }
    for bad in [1.0000001, -0.0000001, 2.0] {
        assert!(CategoricalCrossEntropyFromLogits::with_label_smoothing(bad).is_err());
    }
    for good in [0.0, 0.5, 1.0] {
        assert_eq!(
            BinaryCrossEntropyFromLogits::with_label_smoothing(good)
                .unwrap()
                .label_smoothing(),
            good
        );
    }
    assert_eq!(data.sample_weights(), None);
    assert_eq!(data.class_weights(), None);
}

#[test]
fn weights_of_one_change_no_bit_and_weights_scale_the_loss() {
    // A data set with all weights 1 trains bit for bit as the unweighted one; weights 2
    // double the loss and the gradient (sum_over_batch_size divides by the rows, not Σw).
    let x = [
        [0.5f32, -1.0, 0.25, 2.0],
        [1.0, 0.0, -0.5, 0.75],
        [-1.5, 0.5, 1.0, 0.0],
    ];
    let y = [0u8, 2, 1];
    let json = fixture();
    let model = initial_model(&json["training"]);
    let loss = SparseCategoricalCrossEntropy::<u8>::new();
    let gradients = |data: Dataset<'_, [f32; 4], u8>| {
        let mut trainer = Trainer::<Net, _, 4>::new(Sgd::new(0.1).unwrap());
        let report = trainer
            .compute_gradients(
                &model,
                &loss,
                data,
                &[0, 1, 2],
                &mut Xoshiro128PlusPlus::seed_from_u64(0),
            )
            .unwrap();
        (
            report.loss,
            trainer
                .gradients()
                .tensors()
                .flat_map(|t| t.to_vec())
                .collect::<Vec<f32>>(),
        )
    };
    let plain = Dataset::new(&x, &y).unwrap();
    let (loss_1, grads_1) = gradients(plain);
    let (loss_w1, grads_w1) = gradients(plain.with_sample_weights(&[1.0; 3]).unwrap());
    assert_eq!((loss_1.to_bits(), &grads_1), (loss_w1.to_bits(), &grads_w1));
    let (loss_c1, grads_c1) = gradients(plain.with_class_weights(&[1.0; 3]).unwrap());
    assert_eq!((loss_1.to_bits(), &grads_1), (loss_c1.to_bits(), &grads_c1));
    let (loss_2, grads_2) = gradients(plain.with_class_weights(&[2.0; 3]).unwrap());
    assert_eq!(loss_2, 2.0 * loss_1);
    for (a, b) in grads_2.iter().zip(&grads_1) {
        assert!(
            (a - 2.0 * b).abs() <= 1e-6 * b.abs().max(1.0),
            "{a} against 2·{b}"
        );
    }
    // Zero weights: the loss and gradient of the rows left, still divided by all 3 rows.
    let (loss_0, _) = gradients(plain.with_sample_weights(&[1.0, 0.0, 0.0]).unwrap());
    let first = Loss::<Softmax, [f32; 3]>::value(&loss, &model.infer_pre_activation(&x[0]), &0);
    assert!(
        (loss_0 - first / 3.0).abs() <= 1e-6,
        "{loss_0} against {first}/3"
    );
}
