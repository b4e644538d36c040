//! Matmul benches: `Tensor::matmul` against the GEMM crate it wraps
//! (`matrixmultiply::sgemm`) called directly on the same buffers, so the ratio
//! is the wrapper's overhead (shape checks, output allocation, dispatch).
//!
//! ```text
//! cargo bench --bench matmul -- --warm-up-time 1 --measurement-time 3
//! ```

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use tapeless::tensor::{matrixmultiply, Tensor};

/// Deterministic pseudo-random values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul");
    for n in [256usize, 512, 1024] {
        // Throughput in multiply-adds counted as two floating-point operations.
        group.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        if n == 1024 {
            group.sample_size(20);
        }
        let av = values(n * n, 1);
        let bv = values(n * n, 2);
        let a = Tensor::from_slice(&av, &[n, n]);
        let b = Tensor::from_slice(&bv, &[n, n]);
        group.bench_with_input(BenchmarkId::new("tensor", n), &n, |bench, _| {
            bench.iter(|| black_box(&a).matmul(black_box(&b)))
        });
        // B read through a transposed view: no copy, strides passed to the GEMM.
        let bt = b.t();
        group.bench_with_input(BenchmarkId::new("tensor_bt", n), &n, |bench, _| {
            bench.iter(|| black_box(&a).matmul(black_box(&bt)))
        });
        let mut out = vec![0.0f32; n * n];
        group.bench_with_input(BenchmarkId::new("sgemm", n), &n, |bench, _| {
            bench.iter(|| {
                // SAFETY: `av`, `bv` and `out` hold n*n elements each, read and
                // written row-major (row stride n, column stride 1); `out` is
                // borrowed mutably and aliases neither input.
                unsafe {
                    matrixmultiply::sgemm(
                        n,
                        n,
                        n,
                        1.0,
                        black_box(av.as_ptr()),
                        n as isize,
                        1,
                        black_box(bv.as_ptr()),
                        n as isize,
                        1,
                        0.0,
                        out.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, matmul);
criterion_main!(benches);
