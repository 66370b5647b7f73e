//! The SIMD kernels against their scalar twins on shapes and values from the fuzzer.
//!
//! Layout: u8 rows, u8 inputs, u8 outputs (each mod 40, so zero occurs), u8 mode, then the
//! operands. Mode bit 0 set: the operands are raw `f32` bits (NaN, infinities, subnormals)
//! and only "no panic, same length, untouched past the data" is asserted, since sums of
//! infinities in another order may differ. Mode bit 0 clear: each operand is an `i16 / 256`
//! (|x| <= 128, so no product or sum overflows), and the results must agree within the
//! tolerance `tests/kernels.rs` derives: two f32 evaluations of one sum of `n` terms in any
//! order differ by at most `n·EPSILON·Σ|t|` (Higham §4.2), plus two roundings outside the
//! sum. The elementwise kernels do the scalar operations in the scalar order: same bits.
//! Bits 1-2 cut the input, weight or output slice short (kernels must work on the complete
//! rows present).
#![no_main]

use libfuzzer_sys::fuzz_target;
use microtrain::kernels::{Shape, scalar, simd};
use microtrain_fuzz::Reader;

fn sum_tolerance(terms: usize, abs_sum: f32) -> f32 {
    (terms as f32 + 2.0) * f32::EPSILON * abs_sum
}

fuzz_target!(|bytes: &[u8]| {
    let mut r = Reader(bytes);
    let shape = Shape {
        rows: usize::from(r.u8() % 40),
        inputs: usize::from(r.u8() % 40),
        outputs: usize::from(r.u8() % 40),
    };
    let mode = r.u8();
    let raw = mode & 1 != 0;
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
});
