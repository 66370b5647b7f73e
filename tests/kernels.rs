//! The SIMD kernels against their scalar twins (the reference set).
//!
//! Every kernel of `kernels::simd` runs on the same inputs as the same-named kernel of
//! `kernels::scalar`, on sizes around the vector widths (1, 2, 3, 7, 8, 9, 15, 16, 17, 30,
//! 31, 33, 50, 64, 65; 30 and 50 end in a partial vector after one and three whole 16-lane
//! vectors, the tutorial's layer and the weight gradient's three-vector tiles), with seeded pseudo-random values mixed with edge values (zeros, exact zero
//! weights, negatives, large magnitudes). Both sets run in every build, so these tests
//! also run with the `scalar` feature (where only the layers' choice changes).
//!
//! # Tolerances
//! The products sum in another order in the SIMD set (lanes, then a tree) and fuse
//! multiply-adds where the target has FMA. A sum of `n` terms computed in any order with
//! f32 rounding is within `γ_n · Σ|t|` of the exact sum (`γ_n ≈ n·u`, `u = EPSILON/2`;
//! Higham, *Accuracy and Stability of Numerical Algorithms*, §4.2), so two such sums are
//! within `n · EPSILON · Σ|t|` of each other. [`sum_tolerance`] allows that plus two
//! roundings for the operations outside the sum (`tests/tolerance/mod.rs`, which the fuzz
//! target `kernels` shares). Kernels that do the scalar operations
//! in the scalar order must give the same bits, and are compared bit for bit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use microtrain::Regularizer;
use microtrain::kernels::{
    self, AdamStep, ForwardFn, InputGradientFn, Shape, WeightGradientFn, scalar, simd,
};

type BiasGradientFn = fn(&[f32], &[f32], &mut [f32], usize, Regularizer) -> f32;
type AdamFn = fn(&mut [f32], &[f32], &mut [f32], &mut [f32], AdamStep);

// The SIMD sets held to the scalar one: `kernels::simd` as this build compiled it, and the
// active set at `kernels`' root. In a default x86_64 build with the `std` feature (as
// `cargo test` builds it: the benches crate turns `std` on) the active dense products and
// Adam choose at run time, so on a CPU with AVX2 + FMA they are the `kernels::avx2` ones
// (`kernels::DISPATCHED`); elsewhere the second entry repeats the first or is the scalar set.
const FORWARDS: [(&str, ForwardFn); 2] = [
    ("simd", simd::dense_forward),
    ("active", kernels::dense_forward),
];
const INPUT_GRADIENTS: [(&str, InputGradientFn); 2] = [
    ("simd", simd::dense_input_gradient),
    ("active", kernels::dense_input_gradient),
];
const WEIGHT_GRADIENTS: [(&str, WeightGradientFn); 2] = [
    ("simd", simd::dense_weight_gradient),
    ("active", kernels::dense_weight_gradient),
];
const BIAS_GRADIENTS: [(&str, BiasGradientFn); 2] = [
    ("simd", simd::dense_bias_gradient),
    ("active", kernels::dense_bias_gradient),
];
const ADAM_UPDATES: [(&str, AdamFn); 2] = [
    ("simd", simd::adam_update),
    ("active", kernels::adam_update),
];
use microtrain::{Rng, SeedableRng, Xoshiro128PlusPlus};

mod tolerance;
use tolerance::{WeightGradientCase, sum_tolerance, within_transcendental_budget};

/// Sizes around 4-, 8- and 16-lane vectors and the register tiles built from them.
const SIZES: [usize; 15] = [1, 2, 3, 7, 8, 9, 15, 16, 17, 30, 31, 33, 50, 64, 65];
/// Batch sizes: fewer, to keep the runtime small; still odd and even around the tiles.
const ROWS: [usize; 8] = [1, 2, 3, 7, 8, 9, 17, 33];

fn uniform(rng: &mut Xoshiro128PlusPlus) -> f32 {
    // 24 random bits -> [-1, 1).
    (rng.next_u32() >> 8) as f32 / (1u32 << 23) as f32 - 1.0
}

/// Pseudo-random values in [-1, 1) with edge values mixed in: about 1 in 8 is an exact
/// zero (sign(0) = 0 for the L1 gradient), 1 in 16 is large (|x| up to 1e4), and a few are
/// exactly ±1 (sign boundaries and exact products).
fn values(rng: &mut Xoshiro128PlusPlus, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| match rng.next_u32() % 32 {
            0..=3 => 0.0,
            4 | 5 => 1.0e4 * uniform(rng),
            6 => 1.0,
            7 => -1.0,
            _ => uniform(rng),
        })
        .collect()
}

fn regularizers() -> [(&'static str, Regularizer); 4] {
    [
        ("none", Regularizer::NONE),
        ("l1", Regularizer::l1(0.01).unwrap()),
        ("l2", Regularizer::l2(0.02).unwrap()),
        ("l1_l2", Regularizer::l1_l2(0.003, 0.5).unwrap()),
    ]
}

fn shapes() -> impl Iterator<Item = Shape> {
    ROWS.into_iter().flat_map(|rows| {
        SIZES.into_iter().flat_map(move |inputs| {
            SIZES.into_iter().map(move |outputs| Shape {
                rows,
                inputs,
                outputs,
            })
        })
    })
}

fn seeded(shape: Shape, salt: u64) -> Xoshiro128PlusPlus {
    let key = (shape.rows as u64) << 40 | (shape.inputs as u64) << 20 | shape.outputs as u64;
    Xoshiro128PlusPlus::seed_from_u64(key ^ salt.rotate_left(48))
}

/// Operands of one dense layer's forward and backward kernels.
struct Case {
    shape: Shape,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    dy: Vec<f32>,
}

impl Case {
    fn new(shape: Shape, salt: u64) -> Self {
        let mut rng = seeded(shape, salt);
        let Shape {
            rows,
            inputs,
            outputs,
        } = shape;
        Self {
            shape,
            x: values(&mut rng, rows * inputs),
            w: values(&mut rng, outputs * inputs),
            b: values(&mut rng, outputs),
            dy: values(&mut rng, rows * outputs),
        }
    }
}

/// Runs both forward kernels on `case` (output buffers pre-filled with a sentinel so that
/// unwritten entries show) and checks every output against the tolerance.
fn check_forward(case: &Case, input_len: usize, output_len: usize) {
    check_forward_with(case, input_len, output_len, case.w.len(), case.b.len());
}

/// [`check_forward`] with `weights` and `bias` cut to the given lengths too.
fn check_forward_with(
    case: &Case,
    input_len: usize,
    output_len: usize,
    weights_len: usize,
    bias_len: usize,
) {
    for (set, forward) in FORWARDS {
        check_forward_of(
            set,
            forward,
            case,
            [input_len, output_len, weights_len, bias_len],
        );
    }
}

/// [`check_forward_with`] for one SIMD set.
fn check_forward_of(set: &str, forward: ForwardFn, case: &Case, lens: [usize; 4]) {
    let [input_len, output_len, weights_len, bias_len] = lens;
    let Shape {
        rows,
        inputs,
        outputs,
    } = case.shape;
    let x = &case.x[..input_len.min(case.x.len())];
    let w = &case.w[..weights_len];
    let b = &case.b[..bias_len];
    let mut expected = vec![-7.0f32; output_len];
    let mut actual = vec![-7.0f32; output_len];
    scalar::dense_forward(x, w, b, &mut expected, case.shape);
    forward(x, w, b, &mut actual, case.shape);
    let done = rows.min(x.len() / inputs).min(output_len / outputs);
    let computed = outputs.min(w.len() / inputs).min(b.len());
    for (k, (&e, &a)) in expected.iter().zip(&actual).enumerate() {
        let (r, o) = (k / outputs, k % outputs);
        let tolerance = if r < done && o < computed {
            let row = &x[r * inputs..(r + 1) * inputs];
            let weights = &case.w[o * inputs..(o + 1) * inputs];
            let abs_sum: f32 = row.iter().zip(weights).map(|(a, b)| (a * b).abs()).sum();
            sum_tolerance(inputs + 1, abs_sum + case.b[o].abs())
        } else {
            0.0 // outputs past the data must stay untouched
        };
        assert!(
            (a - e).abs() <= tolerance,
            "dense_forward {:?} (input len {input_len}, output len {output_len}): \
             output[{r}][{o}] {set} {a} scalar {e} (diff {}, tolerance {tolerance})\n\
             x row = {:?}\nw row = {:?}\nbias = {}",
            case.shape,
            (a - e).abs(),
            x.get(r * inputs..(r + 1) * inputs),
            &case.w[o * inputs..(o + 1) * inputs],
            case.b[o],
        );
    }
}

#[test]
fn simd_forward_matches_scalar_on_odd_sizes() {
    for shape in shapes() {
        let case = Case::new(shape, 1);
        check_forward(&case, case.x.len(), shape.rows * shape.outputs);
    }
}

/// On entry `d_input` holds the activation derivative; the kernels multiply into it.
fn check_input_gradient(case: &Case, d_input_entry: &[f32], d_output_len: usize) {
    check_input_gradient_with(case, d_input_entry, d_output_len, case.w.len());
}

/// [`check_input_gradient`] with `weights` cut to `weights_len`.
fn check_input_gradient_with(
    case: &Case,
    d_input_entry: &[f32],
    d_output_len: usize,
    weights_len: usize,
) {
    for (set, input_gradient) in INPUT_GRADIENTS {
        let lens = [d_output_len, weights_len];
        check_input_gradient_of(set, input_gradient, case, d_input_entry, lens);
    }
}

/// [`check_input_gradient_with`] for one SIMD set.
fn check_input_gradient_of(
    set: &str,
    input_gradient: InputGradientFn,
    case: &Case,
    d_input_entry: &[f32],
    [d_output_len, weights_len]: [usize; 2],
) {
    let Shape {
        rows,
        inputs,
        outputs,
    } = case.shape;
    let dy = &case.dy[..d_output_len.min(case.dy.len())];
    let w = &case.w[..weights_len];
    let mut expected = d_input_entry.to_vec();
    let mut actual = d_input_entry.to_vec();
    scalar::dense_input_gradient(dy, w, &mut expected, case.shape);
    input_gradient(dy, w, &mut actual, case.shape);
    let done = rows
        .min(dy.len() / outputs)
        .min(d_input_entry.len() / inputs);
    let used = outputs.min(w.len() / inputs);
    for (k, (&e, &a)) in expected.iter().zip(&actual).enumerate() {
        let (r, i) = (k / inputs, k % inputs);
        let tolerance = if r < done {
            let abs_sum: f32 = (0..used)
                .map(|o| (dy[r * outputs + o] * w[o * inputs + i]).abs())
                .sum();
            sum_tolerance(used, abs_sum) * d_input_entry[k].abs()
        } else {
            0.0
        };
        assert!(
            (a - e).abs() <= tolerance,
            "dense_input_gradient {:?}: d_input[{r}][{i}] {set} {a} scalar {e} \
             (entry {}, diff {}, tolerance {tolerance})\nd_output row = {:?}",
            case.shape,
            d_input_entry[k],
            (a - e).abs(),
            dy.get(r * outputs..(r + 1) * outputs),
        );
    }
}

#[test]
fn simd_input_gradient_matches_scalar_on_odd_sizes() {
    for shape in shapes() {
        let case = Case::new(shape, 2);
        let mut rng = seeded(shape, 3);
        let entry = values(&mut rng, shape.rows * shape.inputs);
        check_input_gradient(&case, &entry, case.dy.len());
    }
}

#[test]
fn simd_input_gradient_multiplies_into_its_destination() {
    // With an all-ones destination the result is the plain product dY·W; with twos it
    // doubles exactly (a power of two), and zeros on entry stay zero: the kernel scales
    // what is there instead of overwriting it.
    for shape in shapes().step_by(7) {
        let case = Case::new(shape, 4);
        let n = shape.rows * shape.inputs;
        let mut ones = vec![1.0f32; n];
        let mut twos = vec![2.0f32; n];
        simd::dense_input_gradient(&case.dy, &case.w, &mut ones, shape);
        simd::dense_input_gradient(&case.dy, &case.w, &mut twos, shape);
        for (k, (&one, &two)) in ones.iter().zip(&twos).enumerate() {
            assert_eq!(
                two,
                2.0 * one,
                "{shape:?} d_input[{k}]: entry 2 gave {two}, entry 1 gave {one}"
            );
        }
        let mut mask: Vec<f32> = (0..n).map(|k| (k % 3 != 0) as u8 as f32).collect();
        simd::dense_input_gradient(&case.dy, &case.w, &mut mask, shape);
        for (k, (&m, &one)) in mask.iter().zip(&ones).enumerate() {
            let expected = if k % 3 != 0 { one } else { 0.0 };
            assert_eq!(
                m,
                expected,
                "{shape:?} d_input[{k}] with entry {}",
                (k % 3 != 0) as u8
            );
        }
        check_input_gradient(&case, &ones, case.dy.len());
    }
}

/// Runs both weight-gradient kernels from the same non-zero starting gradient (they
/// accumulate) and compares the gradients and the returned penalties.
fn check_weight_gradient(case: &Case, penalty: (&str, Regularizer), lens: [usize; 4]) {
    for (set, weight_gradient) in WEIGHT_GRADIENTS {
        check_weight_gradient_of(set, weight_gradient, case, penalty, lens);
    }
}

/// [`check_weight_gradient`] for one SIMD set.
fn check_weight_gradient_of(
    set: &str,
    weight_gradient: WeightGradientFn,
    case: &Case,
    penalty: (&str, Regularizer),
    lens: [usize; 4],
) {
    let (name, penalty) = penalty;
    let [dy_len, x_len, w_len, dw_len] = lens;
    let dy = &case.dy[..dy_len.min(case.dy.len())];
    let x = &case.x[..x_len.min(case.x.len())];
    let w = &case.w[..w_len.min(case.w.len())];
    let mut rng = seeded(case.shape, 5);
    let start = values(&mut rng, dw_len);
    let mut expected = start.clone();
    let mut actual = start.clone();
    let expected_loss = scalar::dense_weight_gradient(dy, x, w, &mut expected, case.shape, penalty);
    let actual_loss = weight_gradient(dy, x, w, &mut actual, case.shape, penalty);
    let operands = WeightGradientCase {
        dy,
        x,
        w,
        start: &start,
        shape: case.shape,
        penalty,
    };
    operands.check(
        &format!("{name} lens {lens:?} {set}"),
        (&expected, expected_loss),
        (&actual, actual_loss),
    );
}

#[test]
fn simd_weight_gradient_and_fused_penalty_match_scalar_for_every_regularizer() {
    for shape in shapes() {
        let case = Case::new(shape, 6);
        let lens = [case.dy.len(), case.x.len(), case.w.len(), case.w.len()];
        for penalty in regularizers() {
            check_weight_gradient(&case, penalty, lens);
        }
    }
}

#[test]
fn simd_weight_gradient_takes_sign_zero_as_zero() {
    // All weights exactly ±0 and no batch rows' worth of signal: the L1 gradient must add
    // nothing (sign(0) = 0), in the vector body and in the tails alike.
    for inputs in SIZES {
        let outputs = 3;
        let shape = Shape {
            rows: 1,
            inputs,
            outputs,
        };
        let weights: Vec<f32> = (0..inputs * outputs)
            .map(|k| if k % 2 == 0 { 0.0 } else { -0.0 })
            .collect();
        let zeros_x = vec![0.0f32; inputs];
        let zeros_dy = vec![0.0f32; outputs];
        let mut d_weights = vec![0.0f32; inputs * outputs];
        let l1 = Regularizer::l1(0.5).unwrap();
        let loss =
            simd::dense_weight_gradient(&zeros_dy, &zeros_x, &weights, &mut d_weights, shape, l1);
        assert_eq!(loss, 0.0, "inputs {inputs}: penalty of zero weights");
        assert!(
            d_weights.iter().all(|&g| g == 0.0),
            "inputs {inputs}: sign(0) must be 0, got {d_weights:?}"
        );
    }
}

#[test]
fn simd_bias_gradient_matches_scalar_bit_for_bit_and_penalty_within_tolerance() {
    for rows in ROWS {
        for outputs in SIZES {
            let shape = Shape {
                rows,
                inputs: 1,
                outputs,
            };
            let mut rng = seeded(shape, 7);
            let dy = values(&mut rng, rows * outputs);
            let bias = values(&mut rng, outputs);
            let start = values(&mut rng, outputs);
            for (name, penalty) in regularizers() {
                for bias_len in [outputs, outputs / 2] {
                    let bias = &bias[..bias_len];
                    for (set, bias_gradient) in BIAS_GRADIENTS {
                        let mut expected = start.clone();
                        let mut actual = start.clone();
                        let e =
                            scalar::dense_bias_gradient(&dy, bias, &mut expected, rows, penalty);
                        let a = bias_gradient(&dy, bias, &mut actual, rows, penalty);
                        assert_eq!(
                            actual.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                            expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                            "dense_bias_gradient rows {rows} outputs {outputs} {name} bias len \
                         {bias_len}: {set} {actual:?} scalar {expected:?}"
                        );
                        let terms: f32 = bias
                            .iter()
                            .map(|b| penalty.l1_factor() * b.abs() + penalty.l2_factor() * b * b)
                            .sum();
                        let tolerance = sum_tolerance(bias_len + 2, terms);
                        assert!(
                            (a - e).abs() <= tolerance,
                            "dense_bias_gradient rows {rows} outputs {outputs} {name}: penalty \
                         {set} {a} scalar {e} (tolerance {tolerance})"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn simd_kernels_on_truncated_slices_do_not_panic_and_match_scalar() {
    // Slices shorter than the shape asks for: each kernel must limit itself to the
    // complete rows present, exactly as the scalar kernels do (including the penalty's
    // flat count when `weights` ends inside a row).
    let shapes = [
        (3, 7, 5),
        (9, 17, 9),
        (8, 16, 16),
        (17, 33, 31),
        (2, 65, 3),
        (1, 1, 1),
    ];
    for (rows, inputs, outputs) in shapes {
        let shape = Shape {
            rows,
            inputs,
            outputs,
        };
        let case = Case::new(shape, 8);
        let (nx, ny, nw) = (rows * inputs, rows * outputs, inputs * outputs);
        for cut in [0, 1, inputs, inputs + 1] {
            check_forward(&case, nx.saturating_sub(cut), ny);
            check_forward(&case, nx, ny.saturating_sub(cut));
            let entry = vec![1.5f32; nx.saturating_sub(cut)];
            check_input_gradient(&case, &entry, ny);
            let entry = vec![1.5f32; nx];
            check_input_gradient(&case, &entry, ny.saturating_sub(cut));
            for penalty in regularizers() {
                for lens in [
                    [ny.saturating_sub(cut), nx, nw, nw],
                    [ny, nx.saturating_sub(cut), nw, nw],
                    [ny, nx, nw.saturating_sub(cut), nw],
                    [ny, nx, nw, nw.saturating_sub(cut)],
                    [ny, nx, nw.saturating_sub(cut), nw.saturating_sub(cut + 3)],
                ] {
                    check_weight_gradient(&case, penalty, lens);
                }
            }
        }
        // Truncated weights and bias: outputs past them stay untouched in the forward
        // pass, and the input gradient sums over the weight rows present.
        for cut_w in [1, inputs, nw] {
            let w_len = nw - cut_w.min(nw);
            check_forward_with(&case, nx, ny, w_len, outputs);
            check_forward_with(&case, nx, ny, nw, outputs - 1);
            check_input_gradient_with(&case, &vec![1.5f32; nx], ny, w_len);
        }
    }
}

#[test]
fn simd_kernels_with_huge_dimensions_and_short_slices_match_scalar() {
    // Dimensions whose products (with each other or with the tile sizes) overflow usize:
    // the kernels must find the complete rows the slices hold (none, or 24 when only
    // `rows` is huge) without wrapping around, where a chunk length of zero would panic.
    // The values are multiples of 1/4 in [-3, 21): every product, sum and penalty term
    // here is exact in f32 in any order, so the two sets must agree bit for bit.
    let data: Vec<f32> = (0..96).map(|k| k as f32 * 0.25 - 3.0).collect();
    let huge = [1usize << 62, 1 << 60, usize::MAX / 3, usize::MAX];
    for big in huge {
        for shape in [
            Shape {
                rows: 3,
                inputs: big,
                outputs: 4,
            },
            Shape {
                rows: 3,
                inputs: 4,
                outputs: big,
            },
            Shape {
                rows: big,
                inputs: 4,
                outputs: 4,
            },
            Shape {
                rows: big,
                inputs: big,
                outputs: big,
            },
        ] {
            let penalty = Regularizer::l1_l2(0.5, 0.25).unwrap();
            let (mut expected, mut actual) = (data.clone(), data.clone());
            scalar::dense_forward(&data, &data, &data, &mut expected, shape);
            simd::dense_forward(&data, &data, &data, &mut actual, shape);
            assert_eq!(bits(&actual), bits(&expected), "dense_forward {shape:?}");
            let (mut expected, mut actual) = (data.clone(), data.clone());
            scalar::dense_input_gradient(&data, &data, &mut expected, shape);
            simd::dense_input_gradient(&data, &data, &mut actual, shape);
            assert_eq!(
                bits(&actual),
                bits(&expected),
                "dense_input_gradient {shape:?}"
            );
            let (mut expected, mut actual) = (data.clone(), data.clone());
            let e =
                scalar::dense_weight_gradient(&data, &data, &data, &mut expected, shape, penalty);
            let a = simd::dense_weight_gradient(&data, &data, &data, &mut actual, shape, penalty);
            assert_eq!(a, e, "dense_weight_gradient {shape:?}: penalty");
            assert_eq!(
                bits(&actual),
                bits(&expected),
                "dense_weight_gradient {shape:?}"
            );
        }
    }
}

#[test]
fn simd_kernels_with_a_zero_dimension_do_nothing() {
    let data = [1.0f32; 64];
    let l1 = Regularizer::l1(1.0).unwrap();
    for shape in [
        Shape {
            rows: 0,
            inputs: 4,
            outputs: 4,
        },
        Shape {
            rows: 4,
            inputs: 0,
            outputs: 4,
        },
        Shape {
            rows: 4,
            inputs: 4,
            outputs: 0,
        },
    ] {
        let mut out = [3.0f32; 64];
        simd::dense_forward(&data, &data, &data, &mut out, shape);
        simd::dense_input_gradient(&data, &data, &mut out, shape);
        assert!(out.iter().all(|&v| v == 3.0), "{shape:?} wrote {out:?}");
        if shape.rows == 0 {
            continue;
        }
        let loss = simd::dense_weight_gradient(&data, &data, &data, &mut out, shape, l1);
        assert_eq!(loss, 0.0, "{shape:?}");
        assert!(out.iter().all(|&v| v == 3.0), "{shape:?} wrote {out:?}");
    }
    let mut empty: [f32; 0] = [];
    assert_eq!(
        simd::dense_bias_gradient(&data, &data, &mut empty, 4, Regularizer::l2(1.0).unwrap()),
        0.0
    );
    let mut out = [3.0f32; 8];
    simd::softmax(&mut out, 0);
    assert!(out.iter().all(|&v| v == 3.0));
}

/// The gradient kernels overwrite: whatever the gradients held before (NaN here), they end
/// as the batch's sum plus the penalty's gradient, and with no batch row as that gradient
/// alone. Both sets, whole and partial shapes.
#[test]
fn gradient_kernels_overwrite_what_was_there() {
    let l1 = Regularizer::l1(0.5).unwrap();
    let weights: Vec<f32> = (0..64)
        .map(|k| if k % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let dy: Vec<f32> = (0..64).map(|k| k as f32 * 0.25 - 3.0).collect();
    let x: Vec<f32> = (0..64).map(|k| 2.0 - k as f32 * 0.125).collect();
    for rows in [0, 1, 2, 3] {
        for (inputs, outputs) in [(3, 5), (17, 2), (8, 8)] {
            let shape = Shape {
                rows,
                inputs,
                outputs,
            };
            let count = inputs * outputs;
            let expected: Vec<f32> = (0..count)
                .map(|k| {
                    let (o, i) = (k / inputs, k % inputs);
                    let sum: f32 = (0..rows)
                        .map(|b| dy[b * outputs + o] * x[b * inputs + i])
                        .sum();
                    sum + 0.5 * weights[k].signum()
                })
                .collect();
            let expected_bias: Vec<f32> = (0..outputs)
                .map(|o| {
                    (0..rows).map(|b| dy[b * outputs + o]).sum::<f32>() + 0.5 * weights[o].signum()
                })
                .collect();
            for (name, weight_kernel, bias_kernel) in [
                (
                    "scalar",
                    scalar::dense_weight_gradient as WeightGradientFn,
                    scalar::dense_bias_gradient as BiasGradientFn,
                ),
                (
                    "simd",
                    simd::dense_weight_gradient,
                    simd::dense_bias_gradient,
                ),
            ] {
                let mut d_weights = vec![f32::NAN; count];
                let loss = weight_kernel(&dy, &x, &weights, &mut d_weights, shape, l1);
                assert_eq!(loss, 0.5 * count as f32, "{name} {shape:?}");
                for (k, (a, e)) in d_weights.iter().zip(&expected).enumerate() {
                    assert!(
                        (a - e).abs() <= 1e-5 * e.abs().max(1.0),
                        "{name} {shape:?} [{k}]: {a} vs {e}"
                    );
                }
                let mut d_bias = vec![f32::NAN; outputs];
                bias_kernel(&dy, &weights[..outputs], &mut d_bias, rows, l1);
                for (o, (a, e)) in d_bias.iter().zip(&expected_bias).enumerate() {
                    assert!(
                        (a - e).abs() <= 1e-5 * e.abs().max(1.0),
                        "{name} {shape:?} bias [{o}]: {a} vs {e}"
                    );
                }
            }
        }
    }
}

/// Elementwise inputs: every size, values across the activations' interesting ranges.
fn elementwise_inputs() -> impl Iterator<Item = Vec<f32>> {
    SIZES.into_iter().chain([0, 100, 257]).map(|n| {
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(n as u64);
        let mut v: Vec<f32> = values(&mut rng, n).into_iter().map(|x| x * 0.01).collect();
        // Spread over [-100, 100] with exact edges: ±0, the saturation points of sigmoid
        // and tanh, the ends of exp's range and the infinities.
        let edges = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            9.0,
            -9.0,
            20.0,
            -20.0,
            88.0,
            -87.0,
            -104.0,
            1e-6,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        for (x, e) in v.iter_mut().zip(edges) {
            *x = e;
        }
        v
    })
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn simd_exact_elementwise_kernels_give_the_scalar_bits() {
    type Kernel = fn(&mut [f32]);
    let kernels: [(&str, Kernel, Kernel); 4] = [
        ("relu", scalar::relu, simd::relu),
        (
            "relu_derivative",
            scalar::relu_derivative,
            simd::relu_derivative,
        ),
        (
            "sigmoid_derivative",
            scalar::sigmoid_derivative,
            simd::sigmoid_derivative,
        ),
        (
            "tanh_derivative",
            scalar::tanh_derivative,
            simd::tanh_derivative,
        ),
    ];
    for input in elementwise_inputs() {
        for (name, s, v) in kernels {
            let (mut expected, mut actual) = (input.clone(), input.clone());
            s(&mut expected);
            v(&mut actual);
            assert_eq!(
                bits(&actual),
                bits(&expected),
                "{name} of {input:?}: simd {actual:?} scalar {expected:?}"
            );
        }
        for alpha in [0.01, 0.3] {
            let (mut expected, mut actual) = (input.clone(), input.clone());
            scalar::leaky_relu(&mut expected, alpha);
            simd::leaky_relu(&mut actual, alpha);
            assert_eq!(
                bits(&actual),
                bits(&expected),
                "leaky_relu({alpha}) of {input:?}"
            );
            scalar::leaky_relu_derivative(&mut expected, alpha);
            simd::leaky_relu_derivative(&mut actual, alpha);
            assert_eq!(
                bits(&actual),
                bits(&expected),
                "leaky_relu_derivative({alpha}) of {input:?}"
            );
        }
        let factors: Vec<f32> = input.iter().rev().copied().collect();
        for cut in [0, 1] {
            let (mut expected, mut actual) = (input.clone(), input.clone());
            let f = &factors[..factors.len().saturating_sub(cut)];
            scalar::multiply(&mut expected, f);
            simd::multiply(&mut actual, f);
            assert_eq!(
                bits(&actual),
                bits(&expected),
                "multiply {input:?} by {f:?}"
            );
        }
    }
}

#[test]
fn simd_sigmoid_and_tanh_stay_within_their_accuracy_budget() {
    type Kernel = fn(&mut [f32]);
    let kernels: [(&str, Kernel, Kernel); 2] = [
        ("sigmoid", scalar::sigmoid, simd::sigmoid),
        ("tanh", scalar::tanh, simd::tanh),
    ];
    // A dense sweep of [-100, 100] and a NaN on top of the random and edge values.
    let mut sweep: Vec<f32> = (-200_000..=200_000).map(|k| k as f32 * 5.0e-4).collect();
    sweep.push(f32::NAN);
    for input in elementwise_inputs().chain([sweep]) {
        for (name, s, v) in kernels {
            let (mut expected, mut actual) = (input.clone(), input.clone());
            s(&mut expected);
            v(&mut actual);
            for ((&x, &e), &a) in input.iter().zip(&expected).zip(&actual) {
                assert!(
                    within_transcendental_budget(a, e, 0.0),
                    "{name}({x}): simd {a} scalar {e} ({} ulps)",
                    (a - e).abs() / (f32::EPSILON * e.abs())
                );
            }
        }
    }
}

#[test]
fn simd_softmax_matches_scalar_within_budget() {
    for width in SIZES {
        for rows in [1, 3] {
            let mut rng = Xoshiro128PlusPlus::seed_from_u64(width as u64);
            let input: Vec<f32> = values(&mut rng, rows * width + 2)
                .into_iter()
                .map(|x| x.clamp(-150.0, 150.0))
                .collect();
            let (mut expected, mut actual) = (input.clone(), input.clone());
            scalar::softmax(&mut expected, width);
            simd::softmax(&mut actual, width);
            for (k, (&e, &a)) in expected.iter().zip(&actual).enumerate() {
                // exp of each term and of every term in the sum, then width additions of
                // positive terms and one division.
                let extra = simd::TRANSCENDENTAL_MAX_ULPS + width as f32 + 2.0;
                assert!(
                    within_transcendental_budget(a, e, extra),
                    "softmax width {width}: value {k} simd {a} scalar {e}\ninput {input:?}"
                );
            }
        }
    }
}

#[test]
fn simd_adam_update_gives_the_scalar_bits() {
    let step = AdamStep {
        learning_rate: 1.0e-3,
        rate_1: 0.1,
        rate_2: 0.001,
        epsilon: 1.0e-7,
    };
    for n in SIZES.into_iter().chain([0, 100]) {
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(n as u64 + 99);
        let w = values(&mut rng, n);
        let g = values(&mut rng, n);
        let m = values(&mut rng, n);
        let v: Vec<f32> = values(&mut rng, n).into_iter().map(f32::abs).collect();
        for cut in [0, 1] {
            let g = &g[..n.saturating_sub(cut)];
            for (set, adam_update) in ADAM_UPDATES {
                let (mut we, mut me, mut ve) = (w.clone(), m.clone(), v.clone());
                let (mut wa, mut ma, mut va) = (w.clone(), m.clone(), v.clone());
                scalar::adam_update(&mut we, g, &mut me, &mut ve, step);
                adam_update(&mut wa, g, &mut ma, &mut va, step);
                assert_eq!(
                    bits(&wa),
                    bits(&we),
                    "adam weights n {n}: {set} {wa:?} scalar {we:?}"
                );
                assert_eq!(bits(&ma), bits(&me), "adam m n {n} {set}");
                assert_eq!(bits(&va), bits(&ve), "adam v n {n} {set}");
            }
        }
    }
}

/// Operands at every magnitude from `2^-149` to 1 (a weight whose moments flushed to zero
/// keeps feeding Adam its tiny L2 gradient): the flushing update's formula writes no
/// subnormal value; where no operand is below `2^-60` (no cut can apply) it is the scalar
/// formula with its results flushed, bit for bit; a weight with zero moments and a
/// subnormal gradient stays where it is; and every SIMD set writes the formula's bits, in
/// the vector lanes and the tail.
#[test]
fn flushed_adam_update_cuts_only_products_that_would_be_subnormal() {
    let step = AdamStep {
        learning_rate: 1.0e-3,
        rate_1: 0.1,
        rate_2: 0.001,
        epsilon: 1.0e-8,
    };
    let flush = kernels::flush_subnormal;
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(31);
    let operand = |rng: &mut Xoshiro128PlusPlus| {
        let exponent = (rng.next_u32() % 150) as i32;
        let mantissa = 1.0 + (rng.next_u32() >> 9) as f32 / 8_388_608.0;
        let sign = if rng.next_u32() & 1 == 0 { 1.0 } else { -1.0 };
        match rng.next_u32() % 8 {
            0 => 0.0,
            _ => sign * mantissa * 2f64.powi(-exponent) as f32,
        }
    };
    let n = 4_003;
    let (mut w, mut g, mut m, mut v) = (vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        w.push(operand(&mut rng));
        g.push(operand(&mut rng));
        m.push(operand(&mut rng));
        v.push(operand(&mut rng).abs());
    }
    let mut expected = (vec![], vec![], vec![]);
    for i in 0..n {
        let (wi, mi, vi) = kernels::flushed_adam_candidate(w[i], g[i], m[i], v[i], step);
        for x in [wi, mi, vi] {
            assert!(
                !x.is_subnormal(),
                "{x:e} from {:?}",
                (w[i], g[i], m[i], v[i])
            );
        }
        let large = |x: f32| x == 0.0 || x.abs() >= 2f32.powi(-60);
        if [w[i], g[i], m[i], v[i]].into_iter().all(large) {
            let (mp, vp) = kernels::adam_moments(g[i], m[i], v[i], step);
            let (mp, vp) = (flush(mp), flush(vp));
            let wp = flush(kernels::adam_weight(w[i], mp, vp.sqrt(), step));
            assert_eq!(
                (wi.to_bits(), mi.to_bits(), vi.to_bits()),
                (wp.to_bits(), mp.to_bits(), vp.to_bits())
            );
        }
        expected.0.push(wi);
        expected.1.push(mi);
        expected.2.push(vi);
    }
    let stuck = kernels::flushed_adam_candidate(3e-37, 6e-41, 0.0, 0.0, step);
    assert_eq!(stuck, (3e-37, 0.0, 0.0));
    for (set, adam_update) in ADAM_UPDATES {
        if set == "active" && !kernels::FLUSHES_SUBNORMALS {
            continue;
        }
        let (mut wa, mut ma, mut va) = (w.clone(), m.clone(), v.clone());
        adam_update(&mut wa, &g, &mut ma, &mut va, step);
        assert_eq!(bits(&wa), bits(&expected.0), "weights {set}");
        assert_eq!(bits(&ma), bits(&expected.1), "m {set}");
        assert_eq!(bits(&va), bits(&expected.2), "v {set}");
    }
}

/// Values decaying into the subnormal range (a dead unit's weight under L2, its moments):
/// the SIMD update writes the scalar update's values with every new `m`, `v` and weight below
/// `f32::MIN_POSITIVE` flushed to `+0` (the moments before the weight uses them), in the
/// vector lanes and the tail alike; the scalar update keeps them.
#[test]
fn simd_adam_update_flushes_what_the_scalar_update_leaves_subnormal() {
    let step = AdamStep {
        learning_rate: 1.0e-3,
        rate_1: 0.1,
        rate_2: 0.001,
        epsilon: 1.0e-8,
    };
    for n in SIZES.into_iter().chain([100]) {
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(n as u64 + 7);
        // Around f32::MIN_POSITIVE (1.18e-38): some results land on each side of it.
        let tiny = |rng: &mut Xoshiro128PlusPlus| {
            values(rng, n)
                .into_iter()
                .map(|x| x * 4.0e-38)
                .collect::<Vec<f32>>()
        };
        let (w, g, m) = (tiny(&mut rng), tiny(&mut rng), tiny(&mut rng));
        let v: Vec<f32> = tiny(&mut rng).into_iter().map(|x| x * x.abs()).collect();
        for (set, adam_update) in ADAM_UPDATES {
            // With the `scalar` feature the active set is the scalar one, which keeps
            // subnormals (the firmware's bits): only the flushing sets are checked here.
            if set == "active" && !kernels::FLUSHES_SUBNORMALS {
                continue;
            }
            let (mut wa, mut ma, mut va) = (w.clone(), m.clone(), v.clone());
            adam_update(&mut wa, &g, &mut ma, &mut va, step);
            let (mut ws, mut ms, mut vs) = (w.clone(), m.clone(), v.clone());
            scalar::adam_update(&mut ws, &g, &mut ms, &mut vs, step);
            let mut expected = (vec![], vec![], vec![]);
            for i in 0..n {
                let (wi, mi, vi) = kernels::flushed_adam_candidate(w[i], g[i], m[i], v[i], step);
                expected.0.push(wi);
                expected.1.push(mi);
                expected.2.push(vi);
            }
            assert_eq!(bits(&wa), bits(&expected.0), "weights n {n} {set}");
            assert_eq!(bits(&ma), bits(&expected.1), "m n {n} {set}");
            assert_eq!(bits(&va), bits(&expected.2), "v n {n} {set}");
            let subnormal = |x: &[f32]| x.iter().filter(|x| x.is_subnormal()).count();
            assert_eq!(
                subnormal(&wa) + subnormal(&ma) + subnormal(&va),
                0,
                "n {n} {set}"
            );
            if n >= 8 {
                assert!(
                    subnormal(&ws) + subnormal(&ms) + subnormal(&vs) > 0,
                    "n {n}: the case must reach the subnormals without the flush"
                );
            }
        }
    }
}
