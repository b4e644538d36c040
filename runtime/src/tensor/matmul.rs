//! Matrix products through the `matrixmultiply` crate.
//!
//! # Choice of GEMM crate
//!
//! Both candidates take arbitrary row and column strides, so transposed and
//! narrowed views are multiplied without copying. Measured on the 2-core
//! development machine (Intel Xeon with AVX-512, shared and noisy), square
//! `f32` products `C = A·B`, median time of repeated runs over ≥ 2 s, three
//! runs each (range across runs; GFLOP/s from the best run), release build,
//! `gemm` 0.19.0 and `matrixmultiply` 0.3.11 (`threading` feature):
//!
//! | n    | threads | matrixmultiply            | gemm                      |
//! |------|---------|---------------------------|---------------------------|
//! | 256  | 1       | 0.23–0.36 ms (148 GFLOP/s) | 0.39–0.54 ms (86 GFLOP/s)  |
//! | 512  | 1       | 1.93–1.96 ms (139 GFLOP/s) | 3.41–4.48 ms (79 GFLOP/s)  |
//! | 1024 | 1       | 15.6–17.5 ms (138 GFLOP/s) | 26.6–26.9 ms (81 GFLOP/s)  |
//! | 256  | 2       | 0.26–0.28 ms (130 GFLOP/s) | 0.34–0.58 ms (99 GFLOP/s)  |
//! | 512  | 2       | 1.48–1.97 ms (182 GFLOP/s) | 2.12–2.46 ms (127 GFLOP/s) |
//! | 1024 | 2       | 8.6–9.7 ms (249 GFLOP/s)   | 13.1–18.8 ms (163 GFLOP/s) |
//!
//! With `B` a transposed view (column-major `B`), the picture is the same
//! (matrixmultiply 0.22–0.26 / 1.2–2.0 / 8.2–13.4 ms at 2 threads against
//! gemm's 0.38–0.50 / 1.7–2.3 / 13.2–18.7 ms).
//!
//! **`matrixmultiply` is used**: it is 1.3–1.8× faster at every size here
//! (it dispatches at run time to AVX-512 kernels, which `gemm` 0.19 only has
//! behind its nightly feature), it is small (one crate plus `thread-tree` for
//! threading, against `gemm`'s seven crates with `half`, `dyn-stack`,
//! `raw-cpuid`, ...), so it builds faster, and it is tested under Miri
//! upstream. Its threads are its own (`MATMUL_NUM_THREADS`, default the
//! number of physical cores, at most 4); it only splits products with
//! `m·k + k·n ≥ 32768`, so smaller batched products are spread over rayon's
//! pool here instead.

use super::error::{fail, TensorError};
use super::layout::{broadcast_shape, broadcast_strides, collapse, numel, Rows};
use super::Tensor;
use rayon::prelude::*;

/// Below this `m·k + k·n`, `matrixmultiply` runs single-threaded, so batches
/// of such products are spread over rayon's pool instead.
const GEMM_THREADING_SIZE: usize = 1 << 15;

/// Minimum multiply-adds in a batch before it is worth splitting over rayon.
const PAR_BATCH_FLOPS: usize = 1 << 16;

/// One matrix operand: a buffer, an offset and strides (in elements).
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) offset: usize,
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

impl Mat<'_> {
    /// Whether every element of a `rows × cols` matrix lies inside the buffer.
    fn fits(&self, rows: usize, cols: usize) -> bool {
        if rows == 0 || cols == 0 {
            return true;
        }
        let last = (rows - 1)
            .checked_mul(self.rs)
            .and_then(|r| {
                (cols - 1)
                    .checked_mul(self.cs)
                    .and_then(|c| r.checked_add(c))
            })
            .and_then(|x| x.checked_add(self.offset));
        matches!(last, Some(l) if l < self.data.len())
            && self.rs <= isize::MAX as usize
            && self.cs <= isize::MAX as usize
    }
}

/// `c = a·b` (`alpha = 1`, `beta = 0`) for `a: m×k`, `b: k×n`, `c` a
/// contiguous row-major `m×n` buffer.
///
/// # Panics
/// When a matrix does not fit its buffer (a bug in the caller).
pub(crate) fn gemm(m: usize, k: usize, n: usize, a: Mat<'_>, b: Mat<'_>, c: &mut [f32]) {
    gemm_acc(m, k, n, a, b, 0.0, c)
}

/// `c = a·b + beta·c`, as [`gemm`].
pub(crate) fn gemm_acc(
    m: usize,
    k: usize,
    n: usize,
    a: Mat<'_>,
    b: Mat<'_>,
    beta: f32,
    c: &mut [f32],
) {
    assert!(
        a.fits(m, k) && b.fits(k, n) && c.len() == m * n,
        "gemm: operand out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for x in c.iter_mut() {
            *x *= beta;
        }
        return;
    }
    // SAFETY: `fits` checked that every element `offset + i*rs + j*cs` of A
    // (i < m, j < k) and of B (i < k, j < n) lies inside its slice, and that the
    // strides fit in `isize`; C is an exclusively borrowed contiguous buffer of
    // exactly m*n elements written with row stride n and column stride 1.
    // matrixmultiply reads only those elements of A and B and writes only C,
    // and A and B (shared borrows) cannot alias C (a unique borrow).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr().add(a.offset),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr().add(b.offset),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

impl Tensor {
    /// The matrix product, with PyTorch's rules for `torch.matmul`:
    ///
    /// * `[m, k] · [k, n] -> [m, n]`;
    /// * batched: `[..., m, k] · [..., k, n] -> [..., m, n]`, the batch axes
    ///   broadcast (`[b, m, k] · [k, n]` multiplies every batch item by the same matrix);
    /// * a 1-D left operand `[k]` is a row `[1, k]` and a 1-D right operand
    ///   `[k]` a column `[k, 1]`, and the added axis is removed from the result
    ///   (`[k] · [k] -> []`, `[m, k] · [k] -> [m]`, `[k] · [k, n] -> [n]`).
    ///
    /// Strided views (transposes, narrows) are multiplied in place, without a copy.
    ///
    /// # Panics
    /// When an operand is a scalar or the shapes do not match; the message names both.
    #[track_caller]
    pub fn matmul(&self, rhs: &Tensor) -> Tensor {
        self.try_matmul(rhs).unwrap_or_else(|e| fail(e))
    }

    /// [`matmul`](Tensor::matmul), returning an error instead of panicking.
    pub fn try_matmul(&self, rhs: &Tensor) -> Result<Tensor, TensorError> {
        let mismatch = || TensorError::MatmulMismatch {
            lhs: self.shape.clone(),
            rhs: rhs.shape.clone(),
        };
        if self.rank() == 0 || rhs.rank() == 0 {
            return Err(mismatch());
        }
        let a = if self.rank() == 1 {
            self.unsqueeze(0)
        } else {
            self.clone()
        };
        let b = if rhs.rank() == 1 {
            rhs.unsqueeze(1)
        } else {
            rhs.clone()
        };
        let (ra, rb) = (a.rank(), b.rank());
        let (m, k) = (a.shape[ra - 2], a.shape[ra - 1]);
        let (k2, n) = (b.shape[rb - 2], b.shape[rb - 1]);
        if k != k2 {
            return Err(mismatch());
        }
        let batch = broadcast_shape(&a.shape[..ra - 2], &b.shape[..rb - 2]).ok_or_else(mismatch)?;
        let mut out_shape = batch.clone();
        out_shape.extend([m, n]);
        let out = batched(&a, &b, &batch, m, k, n);
        // Remove the axes that 1-D operands added.
        if rhs.rank() == 1 {
            out_shape.pop();
        }
        if self.rank() == 1 {
            let r = out_shape.len();
            out_shape.remove(r - if rhs.rank() == 1 { 1 } else { 2 });
        }
        Ok(Tensor::contiguous_from(out, out_shape))
    }
}

/// `a·b` over the broadcast `batch` axes, into a new contiguous buffer.
fn batched(a: &Tensor, b: &Tensor, batch: &[usize], m: usize, k: usize, n: usize) -> Vec<f32> {
    let (ra, rb) = (a.rank(), b.rank());
    let nb = numel(batch);
    let mut out = vec![0.0f32; nb * m * n];
    if out.is_empty() {
        return out;
    }
    let (sa, sb) = (&a.strides, &b.strides);
    let mat_a = |offset| Mat {
        data: &a.storage,
        offset,
        rs: sa[ra - 2],
        cs: sa[ra - 1],
    };
    let mat_b = |offset| Mat {
        data: &b.storage,
        offset,
        rs: sb[rb - 2],
        cs: sb[rb - 1],
    };
    let bsa = broadcast_strides(&a.shape[..ra - 2], &sa[..ra - 2], batch);
    let bsb = broadcast_strides(&b.shape[..rb - 2], &sb[..rb - 2], batch);

    // The same right matrix for every batch item, and the left batch and row
    // axes walkable with one stride: one tall GEMM `[batch·m, k] · [k, n]`.
    if nb > 1 && bsb.iter().all(|&s| s == 0) {
        let mut rows_shape = batch.to_vec();
        rows_shape.push(m);
        let mut rows_strides = bsa.clone();
        rows_strides.push(sa[ra - 2]);
        let (cshape, [cs]) = collapse(&rows_shape, [&rows_strides]);
        if cshape.len() == 1 {
            let a_tall = Mat {
                data: &a.storage,
                offset: a.offset,
                rs: cs[0],
                cs: sa[ra - 1],
            };
            gemm(nb * m, k, n, a_tall, mat_b(b.offset), &mut out);
            return out;
        }
    }

    let mut walk_shape = batch.to_vec();
    walk_shape.push(1);
    let mut wa = bsa;
    wa.push(0);
    let mut wb = bsb;
    wb.push(0);
    let strides = [wa, wb];
    let offs = [a.offset, b.offset];
    let small = m * k + k * n < GEMM_THREADING_SIZE;
    if nb > 1 && small && nb * m * n * k >= PAR_BATCH_FLOPS {
        out.par_chunks_mut(m * n).enumerate().for_each(|(i, c)| {
            let [oa, ob] = Rows::new(&walk_shape, &strides, offs, i)
                .next()
                .unwrap_or(offs);
            gemm(m, k, n, mat_a(oa), mat_b(ob), c);
        });
    } else {
        for (c, [oa, ob]) in out
            .chunks_mut(m * n)
            .zip(Rows::new(&walk_shape, &strides, offs, 0))
        {
            gemm(m, k, n, mat_a(oa), mat_b(ob), c);
        }
    }
    out
}
