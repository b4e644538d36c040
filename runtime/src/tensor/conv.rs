//! 2-D convolution (im2col + GEMM) and pooling, with their backward kernels.
//!
//! Layouts are PyTorch's: inputs `[n, c, h, w]` (NCHW), convolution weights
//! `[o, c, kh, kw]`. For one image, im2col lays the input out as a matrix
//! `cols` of shape `[c·kh·kw, oh·ow]` whose column `(oy, ox)` holds the input
//! patch under output pixel `(oy, ox)` (zeros where it overlaps the padding),
//! so the convolution is the product `W[o, c·kh·kw] · cols`.
//!
//! Images are processed in groups whose im2col matrices sit side by side in
//! one `[c·kh·kw, g·oh·ow]` buffer of at most [`COLS_BUDGET`] floats, so each
//! group is one large GEMM (which `matrixmultiply` runs at full speed and
//! threads itself) instead of `g` small ones. Measured on the development
//! machine for `[64, 32, 14, 14] ⊛ [64, 32, 3, 3]`: one GEMM per image ran
//! at about 50 GFLOP/s single-threaded, grouped GEMMs at about 100.

use super::error::{fail, TensorError};
use super::matmul::{gemm, gemm_acc, Mat};
use super::Tensor;
use rayon::prelude::*;
use std::ops::Range;

/// Most floats an im2col buffer of a group of images may hold (4 MiB).
const COLS_BUDGET: usize = 1 << 20;

/// Below this `m·k + k·n`, `matrixmultiply` runs a GEMM single-threaded, and
/// per-image GEMMs are so cheap (few channels) that gathering a group costs
/// more than it saves: such convolutions run one GEMM per image, images
/// spread over rayon's pool (measured: the first layer of a small CNN,
/// `[64, 1, 28, 28] ⊛ [32, 1, 3, 3]`, took 1.0 ms this way for the input
/// gradient against 7 ms grouped).
const SMALL_GEMM: usize = 1 << 15;

/// Runs `body(image, chunk, scratch)` for each image's `chunk`-long slice of
/// `out`, over rayon's pool, with a per-worker scratch buffer of `scratch_len`.
fn per_image<B>(out: &mut [f32], chunk: usize, scratch_len: usize, body: B)
where
    B: Fn(usize, &mut [f32], &mut [f32]) + Send + Sync,
{
    if chunk == 0 {
        return;
    }
    out.par_chunks_mut(chunk)
        .enumerate()
        .for_each_init(|| vec![0.0f32; scratch_len], |s, (i, c)| body(i, c, s));
}

/// Geometry of a convolution or pooling window sweep.
#[derive(Clone, Copy, Debug)]
struct Geom {
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
    oh: usize,
    ow: usize,
}

impl Geom {
    fn new(
        op: &'static str,
        [c, h, w]: [usize; 3],
        [kh, kw]: [usize; 2],
        stride: usize,
        pad: usize,
    ) -> Result<Geom, TensorError> {
        if stride == 0 {
            return Err(TensorError::Invalid {
                op,
                msg: "stride must be at least 1".into(),
            });
        }
        if h + 2 * pad < kh || w + 2 * pad < kw || kh == 0 || kw == 0 {
            return Err(TensorError::Invalid {
                op,
                msg: format!("kernel {kh}x{kw} does not fit input {h}x{w} with padding {pad}"),
            });
        }
        let oh = (h + 2 * pad - kh) / stride + 1;
        let ow = (w + 2 * pad - kw) / stride + 1;
        Ok(Geom {
            c,
            h,
            w,
            kh,
            kw,
            stride,
            pad,
            oh,
            ow,
        })
    }

    /// Rows of the im2col matrix: `c·kh·kw`.
    fn ckk(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Columns of the im2col matrix: `oh·ow`.
    fn pixels(&self) -> usize {
        self.oh * self.ow
    }

    /// The input coordinate under output coordinate `o` at kernel offset `k`,
    /// or `None` in the padding.
    #[inline(always)]
    fn src(&self, o: usize, k: usize, len: usize) -> Option<usize> {
        (o * self.stride + k)
            .checked_sub(self.pad)
            .filter(|&i| i < len)
    }
}

/// The output columns `lo..hi` whose input column `ox·stride + k − pad`
/// lies inside `0..len` (the others read the zero padding).
#[inline]
fn valid_range(k: usize, pad: usize, stride: usize, len: usize, out_len: usize) -> (usize, usize) {
    let lo = if pad > k {
        (pad - k).div_ceil(stride)
    } else {
        0
    };
    let hi = (len + pad).saturating_sub(k).div_ceil(stride).min(out_len);
    (lo.min(hi), hi)
}

/// Fills the `oh·ow` columns of one image `x` (`[c, h, w]`) in an im2col
/// matrix of `c·kh·kw` rows spaced `rs` apart, starting at `cols[0]`.
fn im2col(x: &[f32], g: &Geom, cols: &mut [f32], rs: usize) {
    let p = g.pixels();
    for ci in 0..g.c {
        let plane = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let (lo, hi) = valid_range(kj, g.pad, g.stride, g.w, g.ow);
                let row = &mut cols[((ci * g.kh + ki) * g.kw + kj) * rs..][..p];
                for (oy, out) in row.chunks_exact_mut(g.ow).enumerate() {
                    match g.src(oy, ki, g.h) {
                        None => out.fill(0.0),
                        Some(iy) => {
                            out[..lo].fill(0.0);
                            out[hi..].fill(0.0);
                            if lo < hi {
                                // Input columns lo·stride + kj − pad, stepping by stride.
                                let start = iy * g.w + lo * g.stride + kj - g.pad;
                                let dst = &mut out[lo..hi];
                                if g.stride == 1 {
                                    dst.copy_from_slice(&plane[start..start + dst.len()]);
                                } else {
                                    for (o, &v) in
                                        dst.iter_mut().zip(plane[start..].iter().step_by(g.stride))
                                    {
                                        *o = v;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Adds the `oh·ow` columns of one image in an im2col matrix (rows `rs`
/// apart, starting at `cols[0]`) back onto the image `dx` (`[c, h, w]`): the
/// adjoint of [`im2col`].
fn col2im(cols: &[f32], g: &Geom, dx: &mut [f32], rs: usize) {
    let p = g.pixels();
    for ci in 0..g.c {
        let plane = &mut dx[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let (lo, hi) = valid_range(kj, g.pad, g.stride, g.w, g.ow);
                if lo >= hi {
                    continue;
                }
                let row = &cols[((ci * g.kh + ki) * g.kw + kj) * rs..][..p];
                for (oy, src) in row.chunks_exact(g.ow).enumerate() {
                    if let Some(iy) = g.src(oy, ki, g.h) {
                        let start = iy * g.w + lo * g.stride + kj - g.pad;
                        let src = &src[lo..hi];
                        if g.stride == 1 {
                            for (d, &v) in plane[start..start + src.len()].iter_mut().zip(src) {
                                *d += v;
                            }
                        } else {
                            for (d, &v) in plane[start..].iter_mut().step_by(g.stride).zip(src) {
                                *d += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Checks a rank-4 operand and returns its shape.
fn rank4(op: &'static str, what: &str, t: &[usize]) -> Result<[usize; 4], TensorError> {
    match *t {
        [a, b, c, d] => Ok([a, b, c, d]),
        _ => Err(TensorError::Invalid {
            op,
            msg: format!("{what} must be rank 4, got shape {t:?}"),
        }),
    }
}

/// The groups of images whose im2col matrices fit [`COLS_BUDGET`] together.
fn groups(n: usize, g: &Geom) -> impl Iterator<Item = Range<usize>> {
    let size = (COLS_BUDGET / (g.ckk() * g.pixels()).max(1)).clamp(1, n.max(1));
    (0..n).step_by(size).map(move |b| b..(b + size).min(n))
}

/// The im2col matrix `[c·kh·kw, images·oh·ow]` of `images` of `x`
/// (`[n, c, h, w]` data) into `cols`, image `t`'s columns at `t·oh·ow`.
fn im2col_group(x: &[f32], g: &Geom, images: Range<usize>, cols: &mut Vec<f32>) {
    let (img, p, gp) = (g.c * g.h * g.w, g.pixels(), images.len() * g.pixels());
    cols.resize(g.ckk() * gp, 0.0);
    for (t, b) in images.enumerate() {
        im2col(&x[b * img..(b + 1) * img], g, &mut cols[t * p..], gp);
    }
}

/// Gathers the per-image `[rows, p]` blocks of `images` from `src`
/// (`[n, rows, p]` data) side by side into `dst` (`[rows, images·p]`).
fn gather_blocks(src: &[f32], dst: &mut Vec<f32>, rows: usize, p: usize, images: Range<usize>) {
    let gp = images.len() * p;
    dst.resize(rows * gp, 0.0);
    for (t, b) in images.enumerate() {
        for r in 0..rows {
            dst[r * gp + t * p..][..p].copy_from_slice(&src[(b * rows + r) * p..][..p]);
        }
    }
}

/// The inverse of [`gather_blocks`]: `src` (`[rows, images·p]`) back into
/// the blocks of `images` in `dst` (`[n, rows, p]` data).
fn scatter_blocks(src: &[f32], dst: &mut [f32], rows: usize, p: usize, images: Range<usize>) {
    let gp = images.len() * p;
    for (t, b) in images.enumerate() {
        for r in 0..rows {
            dst[(b * rows + r) * p..][..p].copy_from_slice(&src[r * gp + t * p..][..p]);
        }
    }
}

impl Tensor {
    /// 2-D convolution (cross-correlation, as in PyTorch): input `[n, c, h, w]`,
    /// `weight` `[o, c, kh, kw]`, optional `bias` `[o]`, the same `stride` and
    /// zero `padding` on both spatial axes. Returns `[n, o, oh, ow]` with
    /// `oh = (h + 2·padding − kh) / stride + 1` (likewise `ow`):
    ///
    /// `y[b, o, i, j] = bias[o] + Σ_{c, p, q} x[b, c, i·stride + p − padding, j·stride + q − padding] · w[o, c, p, q]`.
    ///
    /// Computed by im2col and one GEMM per group of images.
    ///
    /// # Panics
    /// When the shapes do not fit together; the message names them.
    #[track_caller]
    pub fn conv2d_bias(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: usize,
    ) -> Tensor {
        self.try_conv2d(weight, bias, stride, padding)
            .unwrap_or_else(|e| fail(e))
    }

    /// 2-D convolution without bias: [`conv2d_bias`](Tensor::conv2d_bias)
    /// with `None`. This is the form `#[differentiable]` code uses (add a bias
    /// by broadcasting: `&x.conv2d(&w, 1, 1) + &b.reshape(&[1, o, 1, 1])`).
    ///
    /// # Panics
    /// When the shapes do not fit together; the message names them.
    #[track_caller]
    pub fn conv2d(&self, weight: &Tensor, stride: usize, padding: usize) -> Tensor {
        self.conv2d_bias(weight, None, stride, padding)
    }

    /// [`conv2d`](Tensor::conv2d), returning an error instead of panicking.
    pub fn try_conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: usize,
    ) -> Result<Tensor, TensorError> {
        const OP: &str = "conv2d";
        let [n, c, h, w] = rank4(OP, "input", &self.shape)?;
        let [o, wc, kh, kw] = rank4(OP, "weight", &weight.shape)?;
        if wc != c {
            return Err(TensorError::Invalid {
                op: OP,
                msg: format!(
                    "input {:?} has {c} channels but weight {:?} expects {wc}",
                    self.shape, weight.shape
                ),
            });
        }
        if let Some(b) = bias {
            if b.shape != [o] {
                return Err(TensorError::Invalid {
                    op: OP,
                    msg: format!(
                        "bias {:?} must have shape [{o}] for weight {:?}",
                        b.shape, weight.shape
                    ),
                });
            }
        }
        let g = Geom::new(OP, [c, h, w], [kh, kw], stride, padding)?;
        let (x, wt) = (self.data(), weight.data());
        let bias = bias.map(|b| b.to_vec());
        let (ckk, p) = (g.ckk(), g.pixels());
        let mut out = vec![0.0f32; n * o * p];
        let wm = Mat {
            data: &wt,
            offset: 0,
            rs: ckk,
            cs: 1,
        };
        let add_bias = |y: &mut [f32], row_len: usize| {
            if let Some(b) = &bias {
                for (row, &bo) in y.chunks_exact_mut(row_len).zip(b) {
                    for v in row {
                        *v += bo;
                    }
                }
            }
        };
        if o * ckk + ckk * p < SMALL_GEMM {
            let img = c * h * w;
            per_image(&mut out, o * p, ckk * p, |i, y, cols| {
                im2col(&x[i * img..(i + 1) * img], &g, cols, p);
                let cm = Mat {
                    data: cols,
                    offset: 0,
                    rs: p,
                    cs: 1,
                };
                gemm(o, ckk, p, wm, cm, y);
                add_bias(y, p);
            });
            return Ok(Tensor::contiguous_from(out, vec![n, o, g.oh, g.ow]));
        }
        let (mut cols, mut y) = (Vec::new(), Vec::new());
        for images in groups(n, &g) {
            // y[o, images·p] = W[o, ckk] · cols[ckk, images·p]
            let gp = images.len() * p;
            im2col_group(&x, &g, images.clone(), &mut cols);
            y.resize(o * gp, 0.0);
            let cm = Mat {
                data: &cols,
                offset: 0,
                rs: gp,
                cs: 1,
            };
            gemm(o, ckk, gp, wm, cm, &mut y);
            add_bias(&mut y, gp);
            scatter_blocks(&y, &mut out, o, p, images);
        }
        Ok(Tensor::contiguous_from(out, vec![n, o, g.oh, g.ow]))
    }

    /// Max pooling over `kernel × kernel` windows moved by `stride` (no
    /// padding): input `[n, c, h, w]`, output `[n, c, (h − kernel)/stride + 1, (w − kernel)/stride + 1]`.
    ///
    /// # Panics
    /// When the input is not rank 4, `stride` is 0, or the window does not fit.
    #[track_caller]
    pub fn max_pool2d(&self, kernel: usize, stride: usize) -> Tensor {
        self.max_pool2d_with_indices(kernel, stride).0
    }

    /// Where each output of [`max_pool2d`](Tensor::max_pool2d) came from: for
    /// each output element (row-major), the row-major flat index into the
    /// input of its window's maximum (the first one on ties, the last `NaN`
    /// if the window has any, whose value is then `NaN`). This is what
    /// [`max_pool2d_backward`] needs.
    #[track_caller]
    pub fn max_pool2d_indices(&self, kernel: usize, stride: usize) -> Vec<usize> {
        self.max_pool2d_with_indices(kernel, stride).1
    }

    /// [`max_pool2d`](Tensor::max_pool2d) and [`max_pool2d_indices`](Tensor::max_pool2d_indices) in one sweep.
    #[track_caller]
    pub fn max_pool2d_with_indices(&self, kernel: usize, stride: usize) -> (Tensor, Vec<usize>) {
        let (g, n) =
            pool_geom("max_pool2d", &self.shape, kernel, stride).unwrap_or_else(|e| fail(e));
        let x = self.data();
        let planes = n * g.c;
        let p = g.pixels();
        let mut vals = vec![0.0f32; planes * p];
        let mut idx = vec![0usize; planes * p];
        let one = |pl: usize, vals: &mut [f32], idx: &mut [usize]| {
            let base = pl * g.h * g.w;
            let plane = &x[base..base + g.h * g.w];
            let rows = vals.chunks_exact_mut(g.ow).zip(idx.chunks_exact_mut(g.ow));
            for (oy, (vrow, irow)) in rows.enumerate() {
                let y0 = oy * g.stride;
                if g.kh == 2 && g.kw == 2 && g.stride == 2 {
                    // The common 2×2/2 case: windows are pairs of two rows.
                    let r0 = plane[y0 * g.w..][..2 * g.ow].chunks_exact(2);
                    let r1 = plane[(y0 + 1) * g.w..][..2 * g.ow].chunks_exact(2);
                    let cells = vrow.iter_mut().zip(irow.iter_mut()).zip(r0.zip(r1));
                    for (ox, ((v, i), (a, b))) in cells.enumerate() {
                        let at = base + y0 * g.w + 2 * ox;
                        let (mut m, mut best) = (a[0], at);
                        max_step(&mut m, &mut best, a[1], at + 1);
                        max_step(&mut m, &mut best, b[0], at + g.w);
                        max_step(&mut m, &mut best, b[1], at + g.w + 1);
                        *v = m;
                        *i = best;
                    }
                    continue;
                }
                for (ox, (v, i)) in vrow.iter_mut().zip(irow.iter_mut()).enumerate() {
                    let x0 = ox * g.stride;
                    let (mut m, mut best) = (plane[y0 * g.w + x0], y0 * g.w + x0);
                    for ky in 0..g.kh {
                        let at = (y0 + ky) * g.w + x0;
                        for (kx, &e) in plane[at..at + g.kw].iter().enumerate() {
                            max_step(&mut m, &mut best, e, at + kx);
                        }
                    }
                    *v = m;
                    *i = base + best;
                }
            }
        };
        if x.len() >= super::PAR_THRESHOLD_STRIDED && planes > 1 && p > 0 {
            vals.par_chunks_mut(p)
                .zip(idx.par_chunks_mut(p))
                .enumerate()
                .for_each(|(pl, (v, i))| one(pl, v, i));
        } else if p > 0 {
            for (pl, (v, i)) in vals.chunks_mut(p).zip(idx.chunks_mut(p)).enumerate() {
                one(pl, v, i);
            }
        }
        (Tensor::contiguous_from(vals, vec![n, g.c, g.oh, g.ow]), idx)
    }

    /// Average pooling over `kernel × kernel` windows moved by `stride` (no
    /// padding); shapes as [`max_pool2d`](Tensor::max_pool2d).
    ///
    /// # Panics
    /// When the input is not rank 4, `stride` is 0, or the window does not fit.
    #[track_caller]
    pub fn avg_pool2d(&self, kernel: usize, stride: usize) -> Tensor {
        let (g, n) =
            pool_geom("avg_pool2d", &self.shape, kernel, stride).unwrap_or_else(|e| fail(e));
        let x = self.data();
        let p = g.pixels();
        let scale = 1.0 / (g.kh * g.kw) as f32;
        let mut out = vec![0.0f32; n * g.c * p];
        let one = |pl: usize, out: &mut [f32]| {
            let plane = &x[pl * g.h * g.w..(pl + 1) * g.h * g.w];
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let (y0, x0) = (oy * g.stride, ox * g.stride);
                    let mut s = 0.0f32;
                    for ky in 0..g.kh {
                        s += plane[(y0 + ky) * g.w + x0..][..g.kw].iter().sum::<f32>();
                    }
                    out[oy * g.ow + ox] = s * scale;
                }
            }
        };
        if x.len() >= super::PAR_THRESHOLD_STRIDED && p > 0 {
            out.par_chunks_mut(p)
                .enumerate()
                .for_each(|(pl, o)| one(pl, o));
        } else if p > 0 {
            out.chunks_mut(p).enumerate().for_each(|(pl, o)| one(pl, o));
        }
        Tensor::contiguous_from(out, vec![n, g.c, g.oh, g.ow])
    }
}

/// One step of a running maximum with its index: `e` replaces `m` when it is
/// larger (so the first maximum wins) or `NaN` (so `NaN` propagates).
/// Written with masks instead of branches: on random data a branch here is
/// mispredicted half the time, which made max pooling 5× slower.
#[inline(always)]
fn max_step(m: &mut f32, best: &mut usize, e: f32, at: usize) {
    let take = (e > *m) | e.is_nan();
    let mask32 = 0u32.wrapping_sub(take as u32);
    let mask = 0usize.wrapping_sub(take as usize);
    *m = f32::from_bits(m.to_bits() ^ ((m.to_bits() ^ e.to_bits()) & mask32));
    *best ^= (*best ^ at) & mask;
}

/// The geometry of a pooling over `shape` and the batch size.
fn pool_geom(
    op: &'static str,
    shape: &[usize],
    kernel: usize,
    stride: usize,
) -> Result<(Geom, usize), TensorError> {
    let [n, c, h, w] = rank4(op, "input", shape)?;
    Ok((Geom::new(op, [c, h, w], [kernel, kernel], stride, 0)?, n))
}

/// The gradient of [`Tensor::conv2d`] with respect to its input.
///
/// With `y = conv2d(x, w, stride, padding)` and `d_out = ∂L/∂y`
/// (`[n, o, oh, ow]`):
/// `∂L/∂x[b, c, i', j'] = Σ_{o, i, j, p, q : i·stride + p − padding = i', j·stride + q − padding = j'} d_out[b, o, i, j] · w[o, c, p, q]`,
/// computed per image (one GEMM per group of images) as `dcols = Wᵀ · d_out[b]` (`[c·kh·kw, oh·ow]`)
/// followed by col2im, which adds each column back onto the input pixels
/// its patch was read from. `input_shape` is `[n, c, h, w]`.
///
/// # Panics
/// When the shapes do not fit together.
#[track_caller]
pub fn conv2d_backward_input(
    d_out: &Tensor,
    weight: &Tensor,
    input_shape: &[usize],
    stride: usize,
    padding: usize,
) -> Tensor {
    const OP: &str = "conv2d_backward_input";
    let check = || -> Result<Geom, TensorError> {
        let [n, c, h, w] = rank4(OP, "input shape", input_shape)?;
        let [o, wc, kh, kw] = rank4(OP, "weight", weight.shape())?;
        let g = Geom::new(OP, [c, h, w], [kh, kw], stride, padding)?;
        if wc != c || d_out.shape() != [n, o, g.oh, g.ow] {
            return Err(TensorError::Invalid {
                op: OP,
                msg: format!(
                    "d_out {:?} does not fit weight {:?} and input {input_shape:?}",
                    d_out.shape(),
                    weight.shape()
                ),
            });
        }
        Ok(g)
    };
    let g = check().unwrap_or_else(|e| fail(e));
    let o = weight.shape()[0];
    let (dy, wt) = (d_out.data(), weight.data());
    let (ckk, p) = (g.ckk(), g.pixels());
    let img = g.c * g.h * g.w;
    let mut dx = vec![0.0f32; input_shape[0] * img];
    // Wᵀ: [ckk, o] read from W [o, ckk] with swapped strides.
    let wt_m = Mat {
        data: &wt,
        offset: 0,
        rs: 1,
        cs: ckk,
    };
    if ckk * o + o * p < SMALL_GEMM {
        per_image(&mut dx, img, ckk * p, |i, dxi, dcols| {
            let dy_m = Mat {
                data: &dy,
                offset: i * o * p,
                rs: p,
                cs: 1,
            };
            gemm(ckk, o, p, wt_m, dy_m, dcols);
            col2im(dcols, &g, dxi, p);
        });
        return Tensor::contiguous_from(dx, input_shape.to_vec());
    }
    let (mut dy_g, mut dcols) = (Vec::new(), Vec::new());
    for images in groups(input_shape[0], &g) {
        // dcols[ckk, images·p] = Wᵀ[ckk, o] · d_out[o, images·p]
        let gp = images.len() * p;
        gather_blocks(&dy, &mut dy_g, o, p, images.clone());
        dcols.resize(ckk * gp, 0.0);
        let dy_m = Mat {
            data: &dy_g,
            offset: 0,
            rs: gp,
            cs: 1,
        };
        gemm(ckk, o, gp, wt_m, dy_m, &mut dcols);
        for (t, b) in images.enumerate() {
            col2im(&dcols[t * p..], &g, &mut dx[b * img..(b + 1) * img], gp);
        }
    }
    Tensor::contiguous_from(dx, input_shape.to_vec())
}

/// The gradient of [`Tensor::conv2d`] with respect to its weight.
///
/// `∂L/∂w[o, c, p, q] = Σ_{b, i, j} d_out[b, o, i, j] · x[b, c, i·stride + p − padding, j·stride + q − padding]`,
/// computed as `Σ_b d_out[b] · cols_bᵀ` (`[o, oh·ow] · [oh·ow, c·kh·kw]`)
/// with `cols_b` the im2col matrix of image `b` (one GEMM per group of images). `weight_shape` is `[o, c, kh, kw]`.
///
/// # Panics
/// When the shapes do not fit together.
#[track_caller]
pub fn conv2d_backward_weight(
    input: &Tensor,
    d_out: &Tensor,
    weight_shape: &[usize],
    stride: usize,
    padding: usize,
) -> Tensor {
    const OP: &str = "conv2d_backward_weight";
    let check = || -> Result<(Geom, usize, usize), TensorError> {
        let [n, c, h, w] = rank4(OP, "input", input.shape())?;
        let [o, wc, kh, kw] = rank4(OP, "weight shape", weight_shape)?;
        let g = Geom::new(OP, [c, h, w], [kh, kw], stride, padding)?;
        if wc != c || d_out.shape() != [n, o, g.oh, g.ow] {
            return Err(TensorError::Invalid {
                op: OP,
                msg: format!(
                    "d_out {:?} does not fit input {:?} and weight {weight_shape:?}",
                    d_out.shape(),
                    input.shape()
                ),
            });
        }
        Ok((g, n, o))
    };
    let (g, n, o) = check().unwrap_or_else(|e| fail(e));
    let (x, dy) = (input.data(), d_out.data());
    let (ckk, p) = (g.ckk(), g.pixels());
    let img = g.c * g.h * g.w;
    if n > 1 && o * p + p * ckk < SMALL_GEMM {
        // dW = Σ_b d_out[b] · cols_bᵀ, partial sums per rayon worker.
        let dw = (0..n)
            .into_par_iter()
            .fold(
                || (vec![0.0f32; o * ckk], vec![0.0f32; ckk * p]),
                |(mut dw, mut cols), b| {
                    im2col(&x[b * img..(b + 1) * img], &g, &mut cols, p);
                    let dy_m = Mat {
                        data: &dy,
                        offset: b * o * p,
                        rs: p,
                        cs: 1,
                    };
                    let ct = Mat {
                        data: &cols,
                        offset: 0,
                        rs: 1,
                        cs: p,
                    };
                    gemm_acc(o, p, ckk, dy_m, ct, 1.0, &mut dw);
                    (dw, cols)
                },
            )
            .map(|(dw, _)| dw)
            .reduce(
                || vec![0.0f32; o * ckk],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(&b) {
                        *x += y;
                    }
                    a
                },
            );
        return Tensor::contiguous_from(dw, weight_shape.to_vec());
    }
    let mut dw = vec![0.0f32; o * ckk];
    let (mut dy_g, mut cols) = (Vec::new(), Vec::new());
    for images in groups(n, &g) {
        // dW[o, ckk] += d_out[o, images·p] · colsᵀ[images·p, ckk], colsᵀ read
        // from cols by swapped strides.
        let gp = images.len() * p;
        im2col_group(&x, &g, images.clone(), &mut cols);
        gather_blocks(&dy, &mut dy_g, o, p, images);
        let dy_m = Mat {
            data: &dy_g,
            offset: 0,
            rs: gp,
            cs: 1,
        };
        let ct = Mat {
            data: &cols,
            offset: 0,
            rs: 1,
            cs: gp,
        };
        gemm_acc(o, gp, ckk, dy_m, ct, 1.0, &mut dw);
    }
    Tensor::contiguous_from(dw, weight_shape.to_vec())
}

/// The gradient of [`Tensor::conv2d`] with respect to its bias:
/// `∂L/∂bias[o] = Σ_{b, i, j} d_out[b, o, i, j]` (shape `[o]`).
///
/// # Panics
/// When `d_out` is not rank 4.
#[track_caller]
pub fn conv2d_backward_bias(d_out: &Tensor) -> Tensor {
    let [_, o, _, _] =
        rank4("conv2d_backward_bias", "d_out", d_out.shape()).unwrap_or_else(|e| fail(e));
    d_out.sum_to_shape(&[o, 1, 1]).reshape(&[o])
}

/// The gradient of [`Tensor::max_pool2d`]: each output's gradient goes to the
/// input element its maximum came from, `∂L/∂x[indices[k]] += d_out[k]`
/// (windows that overlap add up), zero elsewhere. `indices` are those of
/// [`Tensor::max_pool2d_indices`]; `input_shape` is the input's shape.
///
/// # Panics
/// When `indices` and `d_out` differ in length or an index is out of range.
#[track_caller]
pub fn max_pool2d_backward(d_out: &Tensor, indices: &[usize], input_shape: &[usize]) -> Tensor {
    if indices.len() != d_out.numel() {
        panic!(
            "max_pool2d_backward: {} indices for d_out of shape {:?}",
            indices.len(),
            d_out.shape()
        );
    }
    let mut dx = vec![0.0f32; input_shape.iter().product()];
    for (&i, &d) in indices.iter().zip(d_out.data().iter()) {
        dx[i] += d;
    }
    Tensor::contiguous_from(dx, input_shape.to_vec())
}

/// The gradient of [`Tensor::avg_pool2d`]: each output's gradient is spread
/// evenly over its window, `∂L/∂x[b, c, i·stride + p, j·stride + q] += d_out[b, c, i, j] / kernel²`
/// for `p, q < kernel`. `input_shape` is the input's shape `[n, c, h, w]`.
///
/// # Panics
/// When the shapes do not fit together.
#[track_caller]
pub fn avg_pool2d_backward(
    d_out: &Tensor,
    input_shape: &[usize],
    kernel: usize,
    stride: usize,
) -> Tensor {
    const OP: &str = "avg_pool2d_backward";
    let (g, n) = pool_geom(OP, input_shape, kernel, stride).unwrap_or_else(|e| fail(e));
    if d_out.shape() != [n, g.c, g.oh, g.ow] {
        fail(TensorError::Invalid {
            op: OP,
            msg: format!(
                "d_out {:?} does not fit input {input_shape:?}",
                d_out.shape()
            ),
        });
    }
    let dy = d_out.data();
    let scale = 1.0 / (g.kh * g.kw) as f32;
    let p = g.pixels();
    let plane_len = g.h * g.w;
    let mut dx = vec![0.0f32; n * g.c * plane_len];
    let one = |pl: usize, plane: &mut [f32]| {
        let d = &dy[pl * p..(pl + 1) * p];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let v = d[oy * g.ow + ox] * scale;
                let (y0, x0) = (oy * g.stride, ox * g.stride);
                for ky in 0..g.kh {
                    for e in &mut plane[(y0 + ky) * g.w + x0..][..g.kw] {
                        *e += v;
                    }
                }
            }
        }
    };
    if dx.len() >= super::PAR_THRESHOLD_STRIDED && plane_len > 0 {
        dx.par_chunks_mut(plane_len)
            .enumerate()
            .for_each(|(pl, o)| one(pl, o));
    } else if plane_len > 0 {
        dx.chunks_mut(plane_len)
            .enumerate()
            .for_each(|(pl, o)| one(pl, o));
    }
    Tensor::contiguous_from(dx, input_shape.to_vec())
}
