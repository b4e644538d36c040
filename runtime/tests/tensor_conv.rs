//! Convolution and pooling, forward and backward, against direct loops, and
//! the backward kernels against the adjoint identity `<J v, w> = <v, Jᵀ w>`.

use tapeless_runtime::tensor::{
    avg_pool2d_backward, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight,
    max_pool2d_backward, Tensor,
};

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

#[track_caller]
fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tol * (1.0 + b.abs()), "at {i}: {a} vs {b}");
    }
}

/// Direct convolution: the definition, term by term.
fn naive_conv(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: usize,
    pad: usize,
) -> (Vec<f32>, [usize; 4]) {
    let [n, c, h, wd] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    let [o, _, kh, kw] = [w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]];
    let oh = (h + 2 * pad - kh) / stride + 1;
    let ow = (wd + 2 * pad - kw) / stride + 1;
    let mut out = vec![0.0f32; n * o * oh * ow];
    for bi in 0..n {
        for oc in 0..o {
            for i in 0..oh {
                for j in 0..ow {
                    let mut s = b.map_or(0.0, |b| b.get(&[oc])) as f64;
                    for ci in 0..c {
                        for p in 0..kh {
                            for q in 0..kw {
                                let (y, xx) = (
                                    (i * stride + p) as isize - pad as isize,
                                    (j * stride + q) as isize - pad as isize,
                                );
                                if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < wd {
                                    s += (x.get(&[bi, ci, y as usize, xx as usize])
                                        * w.get(&[oc, ci, p, q]))
                                        as f64;
                                }
                            }
                        }
                    }
                    out[((bi * o + oc) * oh + i) * ow + j] = s as f32;
                }
            }
        }
    }
    (out, [n, o, oh, ow])
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    a.to_vec()
        .iter()
        .zip(b.to_vec())
        .map(|(x, y)| *x as f64 * y as f64)
        .sum()
}

#[test]
fn conv2d_matches_direct_convolution() {
    let mut rng = Rng(101);
    for case in 0..25 {
        let n = 1 + rng.below(3);
        let c = 1 + rng.below(3);
        let o = 1 + rng.below(4);
        let kh = 1 + rng.below(3);
        let kw = 1 + rng.below(3);
        let stride = 1 + rng.below(2);
        let pad = rng.below(4);
        let h = kh + rng.below(6);
        let w = kw + rng.below(6);
        let x = rng.tensor(&[n, c, h, w]);
        let wt = rng.tensor(&[o, c, kh, kw]);
        let b = rng.tensor(&[o]);
        let bias = if case % 2 == 0 { Some(&b) } else { None };
        let y = x.conv2d_bias(&wt, bias, stride, pad);
        let (want, shape) = naive_conv(&x, &wt, bias, stride, pad);
        assert_eq!(y.shape(), &shape, "case {case}");
        assert_close(&y.to_vec(), &want, 1e-5);
    }
}

#[test]
#[cfg_attr(miri, ignore = "too slow under Miri")]
fn conv2d_on_views_and_larger_batches() {
    let mut rng = Rng(7);
    // A permuted input ([n, h, w, c] stored, read as NCHW) and a big enough
    // batch to go parallel.
    let x = rng.tensor(&[6, 10, 9, 3]).permute(&[0, 3, 1, 2]);
    let wt = rng.tensor(&[4, 3, 3, 3]);
    let (want, _) = naive_conv(&x, &wt, None, 1, 1);
    assert_close(&x.conv2d_bias(&wt, None, 1, 1).to_vec(), &want, 1e-5);
    // One GEMM large enough for matrixmultiply's own threads.
    let x = rng.tensor(&[2, 8, 20, 20]);
    let wt = rng.tensor(&[32, 8, 3, 3]);
    let (want, _) = naive_conv(&x, &wt, None, 1, 1);
    assert_close(&x.conv2d_bias(&wt, None, 1, 1).to_vec(), &want, 1e-5);
}

#[test]
fn conv2d_backward_kernels_are_adjoints() {
    let mut rng = Rng(33);
    for case in 0..15 {
        let n = 1 + rng.below(3);
        let c = 1 + rng.below(3);
        let o = 1 + rng.below(3);
        let k = 1 + rng.below(3);
        let stride = 1 + rng.below(2);
        let pad = rng.below(4);
        let h = k + rng.below(5);
        let w = k + rng.below(5);
        let x = rng.tensor(&[n, c, h, w]);
        let wt = rng.tensor(&[o, c, k, k]);
        let y = x.conv2d_bias(&wt, None, stride, pad);
        let d = rng.tensor(y.shape());
        // y is linear in x: <conv(v, w), d> = <v, conv_backward_input(d, w)>.
        let dx = conv2d_backward_input(&d, &wt, x.shape(), stride, pad);
        assert_eq!(dx.shape(), x.shape());
        let lhs = dot(&y, &d);
        assert!(
            (lhs - dot(&x, &dx)).abs() < 1e-4 * (1.0 + lhs.abs()),
            "case {case}"
        );
        // and linear in w: <conv(x, v), d> = <v, conv_backward_weight(x, d)>.
        let dw = conv2d_backward_weight(&x, &d, wt.shape(), stride, pad);
        assert_eq!(dw.shape(), wt.shape());
        assert!(
            (lhs - dot(&wt, &dw)).abs() < 1e-4 * (1.0 + lhs.abs()),
            "case {case}"
        );
        // The bias gradient sums d over batch and pixels.
        let db = conv2d_backward_bias(&d);
        for oc in 0..o {
            let s: f32 = d.narrow(1, oc, 1).sum();
            assert!((db.get(&[oc]) - s).abs() < 1e-4);
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "too slow under Miri")]
fn conv2d_backward_weight_parallel_batch_matches_sequential_sum() {
    let mut rng = Rng(4);
    let x = rng.tensor(&[16, 2, 7, 7]);
    let wt = rng.tensor(&[3, 2, 3, 3]);
    let d = rng.tensor(&[16, 3, 5, 5]);
    let all = conv2d_backward_weight(&x, &d, wt.shape(), 1, 0);
    let mut sum = Tensor::zeros(wt.shape());
    for b in 0..16 {
        let xb = x.narrow(0, b, 1);
        let db = d.narrow(0, b, 1);
        sum += conv2d_backward_weight(&xb, &db, wt.shape(), 1, 0);
    }
    assert_close(&all.to_vec(), &sum.to_vec(), 1e-4);
}

#[test]
fn conv2d_shape_errors_name_shapes() {
    let x = Tensor::zeros(&[1, 3, 5, 5]);
    let w = Tensor::zeros(&[2, 4, 3, 3]);
    let e = x.try_conv2d(&w, None, 1, 0).unwrap_err().to_string();
    assert!(
        e.contains("[1, 3, 5, 5]") && e.contains("[2, 4, 3, 3]"),
        "{e}"
    );
    let e = Tensor::zeros(&[3, 5, 5])
        .try_conv2d(&w, None, 1, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("rank 4") && e.contains("[3, 5, 5]"), "{e}");
    let e = x
        .try_conv2d(&Tensor::zeros(&[2, 3, 7, 7]), None, 1, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not fit"), "{e}");
}

fn naive_pool(x: &Tensor, k: usize, s: usize, max: bool) -> (Vec<f32>, Vec<usize>) {
    let [n, c, h, w] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    let (oh, ow) = ((h - k) / s + 1, (w - k) / s + 1);
    let mut out = Vec::new();
    let mut idx = Vec::new();
    for b in 0..n {
        for ch in 0..c {
            for i in 0..oh {
                for j in 0..ow {
                    let mut best = f32::NEG_INFINITY;
                    let mut at = 0;
                    let mut sum = 0.0;
                    for p in 0..k {
                        for q in 0..k {
                            let v = x.get(&[b, ch, i * s + p, j * s + q]);
                            sum += v;
                            if v > best {
                                best = v;
                                at = ((b * c + ch) * h + i * s + p) * w + j * s + q;
                            }
                        }
                    }
                    out.push(if max { best } else { sum / (k * k) as f32 });
                    idx.push(at);
                }
            }
        }
    }
    (out, idx)
}

#[test]
fn pooling_matches_naive_and_backward_is_adjoint() {
    let mut rng = Rng(55);
    for _ in 0..20 {
        let n = 1 + rng.below(3);
        let c = 1 + rng.below(3);
        let k = 1 + rng.below(3);
        let s = 1 + rng.below(3);
        let h = k + rng.below(7);
        let w = k + rng.below(7);
        let x = rng.tensor(&[n, c, h, w]);
        let (want_max, want_idx) = naive_pool(&x, k, s, true);
        let (mp, idx) = x.max_pool2d_with_indices(k, s);
        assert_eq!(mp.to_vec(), want_max);
        assert_eq!(idx, want_idx);
        assert_eq!(x.max_pool2d(k, s), mp);
        assert_eq!(x.max_pool2d_indices(k, s), idx);
        let (want_avg, _) = naive_pool(&x, k, s, false);
        let ap = x.avg_pool2d(k, s);
        assert_eq!(ap.shape(), mp.shape());
        assert_close(&ap.to_vec(), &want_avg, 1e-6);

        let d = rng.tensor(mp.shape());
        // Max pooling is linear once the argmax is fixed: <x, max_backward(d)> = <pool(x), d>.
        let dx = max_pool2d_backward(&d, &idx, x.shape());
        assert_eq!(dx.shape(), x.shape());
        assert!((dot(&x, &dx) - dot(&mp, &d)).abs() < 1e-4);
        // Average pooling is linear: <x, avg_backward(d)> = <avg(x), d>.
        let dx = avg_pool2d_backward(&d, x.shape(), k, s);
        assert!((dot(&x, &dx) - dot(&ap, &d)).abs() < 1e-4);
    }
}

#[test]
fn max_pool_backward_routes_to_the_maximum() {
    let x = Tensor::from_vec(
        vec![1.0, 5.0, 2.0, 3.0, 0.0, 4.0, 6.0, 7.0, 8.0],
        &[1, 1, 3, 3],
    );
    let (y, idx) = x.max_pool2d_with_indices(2, 1);
    assert_eq!(y.to_vec(), vec![5.0, 5.0, 7.0, 8.0]);
    assert_eq!(idx, vec![1, 1, 7, 8]);
    let dx = max_pool2d_backward(&Tensor::ones(&[1, 1, 2, 2]), &idx, x.shape());
    assert_eq!(
        dx.to_vec(),
        vec![0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    );
}

#[test]
#[cfg_attr(miri, ignore = "too slow under Miri")]
fn large_pooling_goes_parallel() {
    let mut rng = Rng(66);
    let x = rng.tensor(&[4, 8, 32, 32]);
    let (want, want_idx) = naive_pool(&x, 2, 2, true);
    let (got, idx) = x.max_pool2d_with_indices(2, 2);
    assert_eq!(got.to_vec(), want);
    assert_eq!(idx, want_idx);
    let (want, _) = naive_pool(&x, 2, 2, false);
    assert_close(&x.avg_pool2d(2, 2).to_vec(), &want, 1e-6);
    let d = Tensor::ones(got.shape());
    let dx = avg_pool2d_backward(&d, x.shape(), 2, 2);
    assert_close(&dx.to_vec(), &vec![0.25; x.numel()], 0.0);
}

#[test]
#[cfg_attr(miri, ignore = "too slow under Miri")]
fn conv_splits_large_batches_into_groups() {
    // 144 × 1024 im2col floats per image: several groups of images.
    let mut rng = Rng(88);
    let x = rng.tensor(&[9, 16, 32, 32]);
    let wt = rng.tensor(&[4, 16, 3, 3]);
    let b = rng.tensor(&[4]);
    let y = x.conv2d_bias(&wt, Some(&b), 1, 1);
    let (want, _) = naive_conv(&x, &wt, Some(&b), 1, 1);
    assert_close(&y.to_vec(), &want, 1e-5);
    let d = rng.tensor(y.shape());
    let lhs = dot(&x.conv2d_bias(&wt, None, 1, 1), &d);
    let dx = conv2d_backward_input(&d, &wt, x.shape(), 1, 1);
    assert!((lhs - dot(&x, &dx)).abs() < 1e-4 * (1.0 + lhs.abs()));
    let dw = conv2d_backward_weight(&x, &d, wt.shape(), 1, 1);
    assert!((lhs - dot(&wt, &dw)).abs() < 1e-4 * (1.0 + lhs.abs()));
}

#[test]
fn max_pool_propagates_nan() {
    let x = Tensor::from_vec(vec![1.0, f32::NAN, 3.0, 2.0], &[1, 1, 2, 2]);
    for (k, s) in [(2, 2), (2, 1)] {
        let (y, idx) = x.max_pool2d_with_indices(k, s);
        assert!(y.item().is_nan());
        assert_eq!(idx, vec![1]);
    }
    let x = Tensor::from_vec(vec![1.0, 5.0, 3.0, 5.0, 0.0, 0.0], &[1, 1, 2, 3]);
    // Ties: the first maximum in row-major window order.
    assert_eq!(x.max_pool2d_indices(2, 1), vec![1, 1]);
}

#[test]
#[cfg_attr(miri, ignore = "too slow under Miri")]
fn conv_backward_input_in_groups_is_the_adjoint() {
    // Many output channels: the input gradient takes the grouped GEMM path,
    // in two groups of images.
    let mut rng = Rng(99);
    let x = rng.tensor(&[60, 2, 32, 32]);
    let wt = rng.tensor(&[128, 2, 3, 3]);
    let y = x.conv2d_bias(&wt, None, 1, 1);
    let d = rng.tensor(y.shape());
    let lhs = dot(&y, &d);
    let dx = conv2d_backward_input(&d, &wt, x.shape(), 1, 1);
    assert!(
        (lhs - dot(&x, &dx)).abs() < 1e-4 * (1.0 + lhs.abs()),
        "{lhs} vs {}",
        dot(&x, &dx)
    );
    let dw = conv2d_backward_weight(&x, &d, wt.shape(), 1, 1);
    assert!((lhs - dot(&wt, &dw)).abs() < 1e-4 * (1.0 + lhs.abs()));
}
