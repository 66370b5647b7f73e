//! Dense-layer kernels, scalar vs SIMD, beside two peers and this core's FMA peak.
//!
//! Every group reports `Throughput::Elements(2·B·IN·OUT)`: criterion's "elem/s" column is
//! FLOP/s (one multiply and one add per weight per batch row), so the GFLOP/s of a kernel
//! is read off directly. `peak` runs independent `mul_add` chains on the widest `wide`
//! vector of the build, so "kernel / peak" is the fraction of what this core does with
//! that instruction set. Record the `RUSTFLAGS` beside any number taken from here: the
//! default x86_64 build has SSE2 and no FMA, `-C target-cpu=native` has whatever the
//! machine has (AVX-512 and FMA on recent servers).
//!
//! ```text
//! cargo bench --bench kernels -- --warm-up-time 1 --measurement-time 2
//! RUSTFLAGS="-C target-cpu=native" cargo bench --bench kernels -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! Peers, forward pass only (`Y = X·Wᵀ`, bias not included for them):
//! - `nalgebra_static`: `SMatrix` products with the sizes as type parameters;
//! - `matrixmultiply`: `DMatrix::gemm`, which calls `matrixmultiply::sgemm` when every
//!   dimension exceeds 5 (so not for `B = 1`); `sgemm` is `unsafe`, nalgebra's call is the
//!   safe way in. It picks its kernel at run time (AVX2 + FMA where the CPU has them, no
//!   AVX-512 kernel), also in the default build: compare with it under
//!   `-C target-cpu=native`, where both use the machine's FMA.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use microtrain::kernels::{Shape, scalar, simd};
use microtrain::{Regularizer, Rng, SeedableRng, Xoshiro128PlusPlus};
use nalgebra::{DMatrix, SMatrix};

/// (B, IN, OUT) from the performance issue: inference, small and medium batches, a wide
/// layer.
const SHAPES: [(usize, usize, usize); 5] = [
    (1, 32, 64),
    (32, 32, 64),
    (32, 64, 64),
    (128, 64, 64),
    (64, 256, 256),
];

fn random(rng: &mut Xoshiro128PlusPlus, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.next_u32() >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
        .collect()
}

struct Operands {
    shape: Shape,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    dy: Vec<f32>,
}

impl Operands {
    fn new((rows, inputs, outputs): (usize, usize, usize)) -> Self {
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(7);
        Self {
            shape: Shape {
                rows,
                inputs,
                outputs,
            },
            x: random(&mut rng, rows * inputs),
            w: random(&mut rng, inputs * outputs),
            b: random(&mut rng, outputs),
            dy: random(&mut rng, rows * outputs),
        }
    }

    fn flops(&self) -> u64 {
        2 * (self.shape.rows * self.shape.inputs * self.shape.outputs) as u64
    }

    fn id(&self, set: &str) -> BenchmarkId {
        let Shape {
            rows,
            inputs,
            outputs,
        } = self.shape;
        BenchmarkId::new(set, format!("{rows}x{inputs}x{outputs}"))
    }
}

type Forward = fn(&[f32], &[f32], &[f32], &mut [f32], Shape);
type InputGradient = fn(&[f32], &[f32], &mut [f32], Shape);
type WeightGradient = fn(&[f32], &[f32], &[f32], &mut [f32], Shape, Regularizer) -> f32;
type Elementwise = fn(&mut [f32]);

const FORWARD: [(&str, Forward); 2] = [
    ("scalar", scalar::dense_forward),
    ("simd", simd::dense_forward),
];
const INPUT_GRADIENT: [(&str, InputGradient); 2] = [
    ("scalar", scalar::dense_input_gradient),
    ("simd", simd::dense_input_gradient),
];
const WEIGHT_GRADIENT: [(&str, WeightGradient); 2] = [
    ("scalar", scalar::dense_weight_gradient),
    ("simd", simd::dense_weight_gradient),
];

fn dense_forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("dense_forward");
    for dims in SHAPES {
        let op = Operands::new(dims);
        group.throughput(Throughput::Elements(op.flops()));
        let mut y = vec![0.0f32; op.shape.rows * op.shape.outputs];
        for (set, kernel) in FORWARD {
            group.bench_function(op.id(set), |bench| {
                bench.iter(|| kernel(black_box(&op.x), &op.w, &op.b, &mut y, op.shape));
            });
        }
        peers(&mut group, &op);
    }
    group.finish();
}

/// The same forward products on nalgebra (static sizes) and matrixmultiply.
fn peers(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    op: &Operands,
) {
    let Shape {
        rows,
        inputs,
        outputs,
    } = op.shape;
    // Row-major X (B×IN) and W (OUT×IN) are the column-major Xᵀ and Wᵀ; the peers get
    // whichever layout they multiply best, prepared outside the timed loop.
    let x = DMatrix::from_row_slice(rows, inputs, &op.x);
    let w_t = DMatrix::from_row_slice(outputs, inputs, &op.w).transpose();
    let mut y = DMatrix::<f32>::zeros(rows, outputs);
    if rows > 5 {
        group.bench_function(op.id("matrixmultiply"), |bench| {
            bench.iter(|| y.gemm(1.0, black_box(&x), &w_t, 0.0));
        });
    }
    macro_rules! statically {
        ($($b:literal, $i:literal, $o:literal);*) => {
            match (rows, inputs, outputs) {
                $(($b, $i, $o) => {
                    let x = SMatrix::<f32, $b, $i>::from_row_slice(&op.x);
                    let w_t = SMatrix::<f32, $o, $i>::from_row_slice(&op.w).transpose();
                    let w_t = Box::new(w_t);
                    group.bench_function(op.id("nalgebra_static"), |bench| {
                        bench.iter(|| black_box(black_box(&x) * &*w_t));
                    });
                })*
                _ => {}
            }
        };
    }
    statically!(1, 32, 64; 32, 32, 64; 32, 64, 64; 128, 64, 64);
}

fn dense_input_gradient(c: &mut Criterion) {
    let mut group = c.benchmark_group("dense_input_gradient");
    for dims in SHAPES {
        let op = Operands::new(dims);
        group.throughput(Throughput::Elements(op.flops()));
        // Multiplying into ones keeps the buffer's values bounded across iterations.
        let mut dx = vec![1.0f32; op.shape.rows * op.shape.inputs];
        for (set, kernel) in INPUT_GRADIENT {
            group.bench_function(op.id(set), |bench| {
                bench.iter(|| {
                    dx.fill(1.0);
                    kernel(black_box(&op.dy), &op.w, &mut dx, op.shape);
                });
            });
        }
    }
    group.finish();
}

fn dense_weight_gradient(c: &mut Criterion) {
    let mut group = c.benchmark_group("dense_weight_gradient_l1_l2");
    let penalty = Regularizer::l1_l2(1e-4, 1e-3).unwrap_or_default();
    for dims in SHAPES {
        let op = Operands::new(dims);
        group.throughput(Throughput::Elements(op.flops()));
        let mut dw = vec![0.0f32; op.shape.inputs * op.shape.outputs];
        for (set, kernel) in WEIGHT_GRADIENT {
            group.bench_function(op.id(set), |bench| {
                // The kernel overwrites `dw`: nothing to reset between calls.
                bench.iter(|| kernel(black_box(&op.dy), &op.x, &op.w, &mut dw, op.shape, penalty));
            });
        }
    }
    group.finish();
}

#[cfg(target_feature = "avx512f")]
type Widest = wide::f32x16;
#[cfg(all(not(target_feature = "avx512f"), target_feature = "avx"))]
type Widest = wide::f32x8;
#[cfg(not(any(target_feature = "avx512f", target_feature = "avx")))]
type Widest = wide::f32x4;

/// Independent accumulators: more than FMA latency × FMA ports on any current core, few
/// enough to stay in 16 registers with the two operands.
const PEAK_CHAINS: usize = 12;
const PEAK_STEPS: usize = 1024;

/// The FMA roof: `PEAK_CHAINS` independent `mul_add` chains, nothing else in the loop.
fn peak(c: &mut Criterion) {
    let lanes = size_of::<Widest>() / size_of::<f32>();
    let mut group = c.benchmark_group("peak");
    group.throughput(Throughput::Elements(
        (2 * lanes * PEAK_CHAINS * PEAK_STEPS) as u64,
    ));
    group.bench_function(format!("mul_add_f32x{lanes}"), |bench| {
        bench.iter(|| {
            let a = black_box(Widest::splat(0.999));
            let b = black_box(Widest::splat(1.0e-3));
            let mut acc = [Widest::splat(1.0); PEAK_CHAINS];
            for _ in 0..PEAK_STEPS {
                for x in &mut acc {
                    *x = x.mul_add(a, b);
                }
            }
            black_box(acc)
        });
    });
    group.finish();
}

/// Per-lane libm against `wide`'s vector `exp`, for the choice documented in the SIMD
/// kernels (elements per second).
fn sigmoid(c: &mut Criterion) {
    let mut group = c.benchmark_group("sigmoid_128x64");
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
    let input: Vec<f32> = random(&mut rng, 128 * 64).iter().map(|x| 8.0 * x).collect();
    group.throughput(Throughput::Elements(input.len() as u64));
    let mut values = input.clone();
    let sets: [(&str, Elementwise); 2] =
        [("scalar_libm", scalar::sigmoid), ("simd", simd::sigmoid)];
    for (set, kernel) in sets {
        group.bench_function(set, |bench| {
            bench.iter(|| {
                values.copy_from_slice(&input);
                kernel(black_box(&mut values));
            });
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    peak,
    dense_forward,
    dense_input_gradient,
    dense_weight_gradient,
    sigmoid
);
criterion_main!(benches);
