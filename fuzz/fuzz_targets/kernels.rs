//! Every SIMD kernel against its scalar twin on shapes and values from the fuzzer: those of
//! `kernels::simd` as this build compiled it, and the active set at `kernels`' root (in a
//! default x86_64 build with `std`, the dispatched entry points, which run `kernels::avx2`
//! on a CPU with AVX2 + FMA).
//!
//! Layout: u8 rows, u8 inputs, u8 outputs (each mod 40, so zero occurs), u8 mode, u8 l1,
//! u8 l2, then the operands (`x`, `w`, `b`, `dy`, an entry buffer, a gradient start, Adam's
//! `m` and `v`), then four Adam coefficients and a leaky ReLU slope. Mode bit 0 set: the
//! operands are raw `f32` bits (NaN, infinities, subnormals) and the dense products are
//! only held to "no panic, untouched past the data", since sums of infinities in another
//! order may differ. Mode bit 0 clear: each operand is an `i16 / 256` (|x| <= 128, so no
//! product or sum overflows), and the products must agree within the tolerance
//! `tests/kernels.rs` derives (`tests/tolerance/mod.rs`, shared): two f32 evaluations of one sum of `n` terms in any order
//! differ by at most `n·EPSILON·Σ|t|` (Higham §4.2), plus two roundings outside the sum.
//! Bits 1-2 cut the input, weight or output slice short (kernels must work on the complete
//! rows present); bits 3-4 choose the weight and bias gradients' penalty (none, L1, L2,
//! L1 + L2, factors `l1 / 64` and `l2 / 64`).
//!
//! In both modes: the elementwise kernels that do the scalar operations in the scalar
//! order (ReLU, leaky ReLU, the derivatives, multiply), the bias gradient and the Adam
//! update give the scalar bits (NaN-ness for NaN; Adam's SIMD update flushes each new value
//! below `f32::MIN_POSITIVE` to zero and cuts the products that would be subnormal, the
//! scalar one does not, so its bits are held to `kernels::flushed_adam_candidate`); sigmoid
//! and tanh stay within the documented
//! `TRANSCENDENTAL_MAX_ULPS` of the scalar `libm` values (plus `f32::MIN_POSITIVE` where
//! the result is subnormal), softmax within that plus one rounding per term of the row's
//! sum and two more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use microtrain::Regularizer;
use microtrain::kernels::{self, AdamStep, Shape, scalar, simd};
use microtrain_fuzz::Reader;

#[path = "../../tests/tolerance/mod.rs"]
mod tolerance;
use tolerance::{WeightGradientCase, sum_tolerance, within_transcendental_budget};

type WeightGradientFn = fn(&[f32], &[f32], &[f32], &mut [f32], Shape, Regularizer) -> f32;
type BiasGradientFn = fn(&[f32], &[f32], &mut [f32], usize, Regularizer) -> f32;
type AdamFn = fn(&mut [f32], &[f32], &mut [f32], &mut [f32], AdamStep);
type Elementwise = fn(&mut [f32]);

const WEIGHT_GRADIENTS: [(&str, WeightGradientFn); 2] = [
    ("simd", simd::dense_weight_gradient),
    ("active", kernels::dense_weight_gradient),
];
const BIAS_GRADIENTS: [(&str, BiasGradientFn); 2] = [
    ("simd", simd::dense_bias_gradient),
    ("active", kernels::dense_bias_gradient),
];
const ADAM_UPDATES: [(&str, AdamFn, bool); 2] = [
    ("simd", simd::adam_update, true),
    ("active", kernels::adam_update, kernels::FLUSHES_SUBNORMALS),
];

fuzz_target!(|bytes: &[u8]| {
    let mut r = Reader(bytes);
    let shape = Shape {
        rows: usize::from(r.u8() % 40),
        inputs: usize::from(r.u8() % 40),
        outputs: usize::from(r.u8() % 40),
    };
    let mode = r.u8();
    let raw = mode & 1 != 0;
    let (l1, l2) = (f32::from(r.u8()) / 64.0, f32::from(r.u8()) / 64.0);
    let penalty = match (mode >> 3) & 3 {
        0 => Regularizer::NONE,
        1 => Regularizer::l1(l1).expect("a finite non-negative factor"),
        2 => Regularizer::l2(l2).expect("a finite non-negative factor"),
        _ => Regularizer::l1_l2(l1, l2).expect("finite non-negative factors"),
    };
    let value = |r: &mut Reader| {
        if raw {
            r.f32()
        } else {
            f32::from(r.u16() as i16) / 256.0
        }
    };
    let Shape {
        rows,
        inputs,
        outputs,
    } = shape;
    let cut = |len: usize, bit: u8| if mode & bit != 0 { len / 2 } else { len };
    let x: Vec<f32> = (0..cut(rows * inputs, 2)).map(|_| value(&mut r)).collect();
    let w: Vec<f32> = (0..cut(outputs * inputs, 4))
        .map(|_| value(&mut r))
        .collect();
    let b: Vec<f32> = (0..outputs).map(|_| value(&mut r)).collect();
    let dy: Vec<f32> = (0..rows * outputs).map(|_| value(&mut r)).collect();
    let entry: Vec<f32> = (0..rows * inputs).map(|_| value(&mut r)).collect();
    let start: Vec<f32> = (0..outputs * inputs).map(|_| value(&mut r)).collect();
    let m: Vec<f32> = (0..w.len()).map(|_| value(&mut r)).collect();
    let v: Vec<f32> = (0..w.len()).map(|_| value(&mut r)).collect();
    let adam = AdamStep {
        learning_rate: r.f32(),
        rate_1: r.f32(),
        rate_2: r.f32(),
        epsilon: r.f32(),
    };
    let alpha = r.f32();

    // Forward.
    let mut expected = vec![-7.0f32; rows * outputs];
    let mut actual = expected.clone();
    scalar::dense_forward(&x, &w, &b, &mut expected, shape);
    simd::dense_forward(&x, &w, &b, &mut actual, shape);
    // A zero dimension: every kernel does nothing (`Shape::is_empty`).
    let done = x.len().checked_div(inputs).map_or(0, |n| rows.min(n));
    let computed = w.len().checked_div(inputs).map_or(0, |n| outputs.min(n));
    for (k, (&e, &a)) in expected.iter().zip(&actual).enumerate() {
        let (row, o) = (k / outputs, k % outputs);
        if row >= done || o >= computed {
            assert_eq!(
                e.to_bits(),
                (-7.0f32).to_bits(),
                "scalar wrote past the data"
            );
            assert_eq!(a.to_bits(), (-7.0f32).to_bits(), "simd wrote past the data");
        } else if !raw {
            let abs_sum: f32 = (0..inputs)
                .map(|i| (x[row * inputs + i] * w[o * inputs + i]).abs())
                .sum();
            let tolerance = sum_tolerance(inputs + 1, abs_sum + b[o].abs());
            assert!(
                (a - e).abs() <= tolerance,
                "dense_forward {shape:?} [{row}][{o}]: simd {a} scalar {e}, tolerance {tolerance}"
            );
        }
    }

    // Input gradient (multiplies into its destination).
    let mut expected = entry.clone();
    let mut actual = entry.clone();
    scalar::dense_input_gradient(&dy, &w, &mut expected, shape);
    simd::dense_input_gradient(&dy, &w, &mut actual, shape);
    let used = w.len().checked_div(inputs).map_or(0, |n| outputs.min(n));
    if !raw {
        for (k, (&e, &a)) in expected.iter().zip(&actual).enumerate() {
            let (row, i) = (k / inputs, k % inputs);
            let abs_sum: f32 = (0..used)
                .map(|o| (dy[row * outputs + o] * w[o * inputs + i]).abs())
                .sum();
            let tolerance = sum_tolerance(used, abs_sum) * entry[k].abs();
            assert!(
                (a - e).abs() <= tolerance,
                "dense_input_gradient {shape:?} [{row}][{i}]: simd {a} scalar {e}, tolerance {tolerance}"
            );
        }
    }

    // Elementwise kernels: the same operations in the same order, so the same bits
    // (NaN payloads aside: compare NaN-ness for NaN results).
    let same = |e: &[f32], a: &[f32], name: &str| {
        for (&e, &a) in e.iter().zip(a) {
            assert!(
                e.to_bits() == a.to_bits() || (e.is_nan() && a.is_nan()),
                "{name}: simd {a} scalar {e}"
            );
        }
    };
    let (mut e, mut a) = (x.clone(), x.clone());
    scalar::relu(&mut e);
    simd::relu(&mut a);
    same(&e, &a, "relu");
    let (mut e, mut a) = (x.clone(), x.clone());
    scalar::relu_derivative(&mut e);
    simd::relu_derivative(&mut a);
    same(&e, &a, "relu_derivative");
    let (mut e, mut a) = (entry.clone(), entry.clone());
    scalar::multiply(&mut e, &x);
    simd::multiply(&mut a, &x);
    same(&e, &a, "multiply");

    // Leaky ReLU and its derivative: the scalar operations in the scalar order.
    let (mut e, mut a) = (x.clone(), x.clone());
    scalar::leaky_relu(&mut e, alpha);
    simd::leaky_relu(&mut a, alpha);
    same(&e, &a, "leaky_relu");
    scalar::leaky_relu_derivative(&mut e, alpha);
    simd::leaky_relu_derivative(&mut a, alpha);
    same(&e, &a, "leaky_relu_derivative");
    let exact: [(&str, Elementwise, Elementwise); 2] = [
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
    for (name, s, v) in exact {
        let (mut e, mut a) = (x.clone(), x.clone());
        s(&mut e);
        v(&mut a);
        same(&e, &a, name);
    }

    // Sigmoid, tanh and softmax: within the documented budget.
    let transcendental: [(&str, Elementwise, Elementwise); 2] = [
        ("sigmoid", scalar::sigmoid, simd::sigmoid),
        ("tanh", scalar::tanh, simd::tanh),
    ];
    for (name, s, v) in transcendental {
        let (mut e, mut a) = (x.clone(), x.clone());
        s(&mut e);
        v(&mut a);
        for ((&input, &e), &a) in x.iter().zip(&e).zip(&a) {
            assert!(
                within_transcendental_budget(a, e, 0.0),
                "{name}({input}): simd {a} scalar {e}"
            );
        }
    }
    let (mut e, mut a) = (x.clone(), x.clone());
    scalar::softmax(&mut e, outputs);
    simd::softmax(&mut a, outputs);
    let extra = simd::TRANSCENDENTAL_MAX_ULPS + outputs as f32 + 2.0;
    for (k, (&e, &a)) in e.iter().zip(&a).enumerate() {
        // Past the whole rows both leave the input; a row with an infinity or a NaN may give
        // NaN in one order of summation and not in the other, so raw rows are compared
        // only where both are finite.
        if raw && !(e.is_finite() && a.is_finite()) {
            continue;
        }
        assert!(
            within_transcendental_budget(a, e, extra),
            "softmax width {outputs}: value {k} simd {a} scalar {e}"
        );
    }

    // Weight and bias gradients with the penalty fused in.
    for (set, weight_gradient) in WEIGHT_GRADIENTS {
        let mut expected = start.clone();
        let mut actual = start.clone();
        let expected_loss =
            scalar::dense_weight_gradient(&dy, &x, &w, &mut expected, shape, penalty);
        let actual_loss = weight_gradient(&dy, &x, &w, &mut actual, shape, penalty);
        if !raw {
            let operands = WeightGradientCase {
                dy: &dy,
                x: &x,
                w: &w,
                start: &start,
                shape,
                penalty,
            };
            operands.check(set, (&expected, expected_loss), (&actual, actual_loss));
        }
    }
    for (set, bias_gradient) in BIAS_GRADIENTS {
        let mut expected = m[..outputs.min(m.len())].to_vec();
        let mut actual = expected.clone();
        let e = scalar::dense_bias_gradient(&dy, &b, &mut expected, rows, penalty);
        let a = bias_gradient(&dy, &b, &mut actual, rows, penalty);
        same(&expected, &actual, "dense_bias_gradient");
        if !raw {
            let terms: f32 = b
                .iter()
                .map(|b| penalty.l1_factor() * b.abs() + penalty.l2_factor() * b * b)
                .sum();
            let tolerance = sum_tolerance(b.len() + 2, terms);
            assert!(
                (a - e).abs() <= tolerance,
                "dense_bias_gradient {set}: penalty {a} scalar {e}, tolerance {tolerance}"
            );
        }
    }

    // Adam: `kernels::adam_candidate` value by value, `flushed_adam_candidate` where
    // the set flushes. `g` is the weight gradient's start, cut to the weights present.
    let g = &start[..start.len().min(w.len())];
    let formula = |flush: bool| {
        let mut out = (w.clone(), m.clone(), v.clone());
        for k in 0..g.len() {
            let (wk, mk, vk) = if flush {
                kernels::flushed_adam_candidate(w[k], g[k], m[k], v[k], adam)
            } else {
                kernels::adam_candidate(w[k], g[k], m[k], v[k], adam)
            };
            out.0[k] = wk;
            out.1[k] = mk;
            out.2[k] = vk;
        }
        out
    };
    let scalar_sets: [(&str, AdamFn, bool); 1] = [("scalar", scalar::adam_update, false)];
    for (set, adam_update, flushes) in scalar_sets.into_iter().chain(ADAM_UPDATES) {
        let (mut wa, mut ma, mut va) = (w.clone(), m.clone(), v.clone());
        adam_update(&mut wa, g, &mut ma, &mut va, adam);
        let (we, me, ve) = formula(flushes);
        same(&we, &wa, &format!("adam_update weights ({set}, {adam:?})"));
        same(&me, &ma, &format!("adam_update m ({set}, {adam:?})"));
        same(&ve, &va, &format!("adam_update v ({set}, {adam:?})"));
    }
});
