//! `Tensor::matmul` against a triple-loop reference: 2-D, batched, broadcast
//! batch axes, 1-D operands, transposed and narrowed views.

use tapeless_runtime::tensor::{Tensor, TensorError};

/// A small seeded xorshift generator (no `rand` dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn tensor(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec((0..n).map(|_| self.f()).collect(), shape)
    }
}

/// `[m, k] · [k, n]` by the triple loop, reading through `get` so views work.
fn naive2(a: &Tensor, b: &Tensor) -> Vec<f32> {
    let (m, k, n) = (a.shape()[0], a.shape()[1], b.shape()[1]);
    let mut c = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f64;
            for p in 0..k {
                s += a.get(&[i, p]) as f64 * b.get(&[p, j]) as f64;
            }
            c[i * n + j] = s as f32;
        }
    }
    c
}

#[track_caller]
fn assert_close(got: &[f32], want: &[f32], k: usize) {
    assert_eq!(got.len(), want.len());
    let tol = 1e-5 * (k as f32).sqrt().max(1.0);
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tol * (1.0 + b.abs()), "at {i}: {a} vs {b}");
    }
}

#[test]
#[cfg_attr(miri, ignore = "too slow under Miri")]
fn random_2d_shapes() {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    for _ in 0..40 {
        let (m, k, n) = (1 + rng.below(40), 1 + rng.below(40), 1 + rng.below(40));
        let a = rng.tensor(&[m, k]);
        let b = rng.tensor(&[k, n]);
        let c = a.matmul(&b);
        assert_eq!(c.shape(), &[m, n]);
        assert_close(&c.to_vec(), &naive2(&a, &b), k);
    }
}

#[test]
#[cfg_attr(miri, ignore = "too slow under Miri")]
fn large_2d_product() {
    let mut rng = Rng(42);
    let a = rng.tensor(&[130, 257]);
    let b = rng.tensor(&[257, 190]);
    assert_close(&a.matmul(&b).to_vec(), &naive2(&a, &b), 257);
}

/// The strided operands of the `unsafe` `sgemm` call (transposed and
/// narrowed views, row stride above the column count) at sizes Miri runs in
/// seconds; [`transposed_and_narrowed_views`] covers more sizes.
#[test]
fn strided_operands_small() {
    let mut rng = Rng(11);
    for (m, k, n) in [(1, 1, 1), (2, 3, 4), (5, 2, 3), (3, 4, 1)] {
        let at = rng.tensor(&[k, m]).t();
        let bt = rng.tensor(&[n, k]).t();
        assert_close(&at.matmul(&bt).to_vec(), &naive2(&at, &bt), k);
        let an = rng.tensor(&[m + 3, k + 5]).narrow(0, 2, m).narrow(1, 3, k);
        let bn = rng.tensor(&[k + 2, n + 4]).narrow(1, 1, n).narrow(0, 2, k);
        assert_close(&an.matmul(&bn).to_vec(), &naive2(&an, &bn), k);
        assert_close(&an.matmul(&bt).to_vec(), &naive2(&an, &bt), k);
        // batched, one operand a view broadcast over the batch
        let a3 = rng.tensor(&[2, m, k]);
        let want: Vec<f32> = (0..2)
            .flat_map(|i| naive2(&a3.narrow(0, i, 1).reshape(&[m, k]), &bn))
            .collect();
        assert_close(&a3.matmul(&bn).to_vec(), &want, k);
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri (over 20 minutes); see strided_operands_small"
)]
fn transposed_and_narrowed_views() {
    let mut rng = Rng(5);
    for _ in 0..20 {
        let (m, k, n) = (1 + rng.below(30), 1 + rng.below(30), 1 + rng.below(30));
        let at = rng.tensor(&[k, m]).t(); // [m, k], column-major
        let bt = rng.tensor(&[n, k]).t(); // [k, n], column-major
        assert!(!at.is_contiguous() || m == 1 || k == 1);
        assert_close(&at.matmul(&bt).to_vec(), &naive2(&at, &bt), k);
        // Narrowed: a window of a larger matrix (row stride > columns).
        let big = rng.tensor(&[m + 3, k + 5]);
        let an = big.narrow(0, 2, m).narrow(1, 3, k);
        let bn = rng.tensor(&[k + 2, n + 4]).narrow(1, 1, n).narrow(0, 2, k);
        assert_close(&an.matmul(&bn).to_vec(), &naive2(&an, &bn), k);
        assert_close(&an.matmul(&bt).to_vec(), &naive2(&an, &bt), k);
    }
}

fn batch_ref(a: &Tensor, b: &Tensor, batch: &[usize]) -> Vec<f32> {
    // Reference: broadcast both to full batch shape, multiply item by item.
    let (m, k) = (a.shape()[a.rank() - 2], a.shape()[a.rank() - 1]);
    let n = b.shape()[b.rank() - 1];
    let mut sa = batch.to_vec();
    sa.extend([m, k]);
    let mut sb = batch.to_vec();
    sb.extend([k, n]);
    let nb: usize = batch.iter().product();
    let a3 = a.broadcast_to(&sa).reshape(&[nb, m, k]);
    let b3 = b.broadcast_to(&sb).reshape(&[nb, k, n]);
    let mut out = Vec::new();
    for i in 0..nb {
        let ai = a3.narrow(0, i, 1).squeeze(0);
        let bi = b3.narrow(0, i, 1).squeeze(0);
        out.extend(naive2(&ai, &bi));
    }
    out
}

#[test]
#[cfg_attr(miri, ignore = "too slow under Miri")]
fn batched_and_broadcast_batches() {
    let mut rng = Rng(77);
    let cases: &[(&[usize], &[usize], &[usize])] = &[
        (&[3, 4, 5], &[3, 5, 6], &[3, 4, 6]),
        (&[3, 4, 5], &[5, 6], &[3, 4, 6]),
        (&[4, 5], &[3, 5, 6], &[3, 4, 6]),
        (&[2, 1, 4, 5], &[3, 5, 2], &[2, 3, 4, 2]),
        (&[1, 4, 5], &[3, 5, 6], &[3, 4, 6]),
        (&[8, 16, 32], &[32, 24], &[8, 16, 24]),
        (&[64, 20, 30], &[64, 30, 10], &[64, 20, 10]), // parallel over batches
    ];
    for &(sa, sb, so) in cases {
        let a = rng.tensor(sa);
        let b = rng.tensor(sb);
        let c = a.matmul(&b);
        assert_eq!(c.shape(), so, "{sa:?} x {sb:?}");
        assert_close(
            &c.to_vec(),
            &batch_ref(&a, &b, &so[..so.len() - 2]),
            sa[sa.len() - 1],
        );
        assert_eq!(a.try_matmul(&b).unwrap(), c);
    }
    // A batch of transposed matrices, and a permuted batch (batch axis not outermost in memory).
    let a = rng.tensor(&[3, 5, 4]).transpose(1, 2); // [3, 4, 5]
    let b = rng.tensor(&[5, 3, 6]).permute(&[1, 0, 2]); // [3, 5, 6]
    assert_close(&a.matmul(&b).to_vec(), &batch_ref(&a, &b, &[3]), 5);
    // A tall-GEMM candidate whose batch rows are not uniformly strided.
    let a = rng.tensor(&[4, 3, 5]).transpose(0, 1); // [3, 4, 5]
    let b = rng.tensor(&[5, 2]);
    assert_close(&a.matmul(&b).to_vec(), &batch_ref(&a, &b, &[3]), 5);
}

#[test]
fn one_dimensional_operands_follow_pytorch() {
    let mut rng = Rng(8);
    let v = rng.tensor(&[5]);
    let w = rng.tensor(&[5]);
    let m = rng.tensor(&[3, 5]);
    let mt = rng.tensor(&[5, 4]);
    // dot
    let d = v.matmul(&w);
    assert_eq!(d.shape(), &[] as &[usize]);
    let want: f32 = v.to_vec().iter().zip(w.to_vec()).map(|(a, b)| a * b).sum();
    assert!((d.item() - want).abs() < 1e-5);
    // matrix-vector
    let mv = m.matmul(&v);
    assert_eq!(mv.shape(), &[3]);
    assert_close(&mv.to_vec(), &naive2(&m, &v.reshape(&[5, 1])), 5);
    // vector-matrix
    let vm = v.matmul(&mt);
    assert_eq!(vm.shape(), &[4]);
    assert_close(&vm.to_vec(), &naive2(&v.reshape(&[1, 5]), &mt), 5);
    // batched matrix-vector and vector-batched matrix
    let bm = rng.tensor(&[2, 3, 5]);
    assert_eq!(bm.matmul(&v).shape(), &[2, 3]);
    let bmt = rng.tensor(&[2, 5, 4]);
    let r = v.matmul(&bmt);
    assert_eq!(r.shape(), &[2, 4]);
    assert_close(&r.to_vec(), &batch_ref(&v.reshape(&[1, 5]), &bmt, &[2]), 5);
}

#[test]
fn degenerate_sizes() {
    let a = Tensor::zeros(&[3, 0]);
    let b = Tensor::zeros(&[0, 4]);
    assert_eq!(a.matmul(&b), Tensor::zeros(&[3, 4]));
    assert_eq!(
        Tensor::zeros(&[0, 2])
            .matmul(&Tensor::ones(&[2, 3]))
            .shape(),
        &[0, 3]
    );
    assert_eq!(
        Tensor::zeros(&[0, 2, 2])
            .matmul(&Tensor::ones(&[2, 3]))
            .shape(),
        &[0, 2, 3]
    );
    let one = Tensor::from_vec(vec![2.0], &[1, 1]);
    assert_eq!(one.matmul(&one).item(), 4.0);
}

#[test]
fn mismatches_name_both_shapes() {
    let e = Tensor::zeros(&[2, 3])
        .try_matmul(&Tensor::zeros(&[4, 5]))
        .unwrap_err();
    assert_eq!(
        e,
        TensorError::MatmulMismatch {
            lhs: vec![2, 3],
            rhs: vec![4, 5]
        }
    );
    let msg = e.to_string();
    assert!(msg.starts_with("matmul: shapes [2, 3] and [4, 5]"), "{msg}");
    let e = Tensor::zeros(&[2, 2, 3])
        .try_matmul(&Tensor::zeros(&[3, 3, 4]))
        .unwrap_err();
    assert!(e.to_string().contains("[2, 2, 3] and [3, 3, 4]"));
    assert!(Tensor::scalar(1.0)
        .try_matmul(&Tensor::zeros(&[1]))
        .is_err());
    let p = std::panic::catch_unwind(|| Tensor::zeros(&[2, 3]).matmul(&Tensor::zeros(&[2, 3])))
        .unwrap_err();
    assert!(p
        .downcast_ref::<String>()
        .unwrap()
        .contains("[2, 3] and [2, 3]"));
}
