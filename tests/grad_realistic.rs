//! Functions typical of numerical code: logsumexp, softmax cross-entropy, an
//! RNN recurrence, Horner's rule, a Gaussian-mixture log-likelihood, the
//! Rosenbrock function and a two-layer MLP on arrays. Each is checked against
//! finite differences, and against an analytic gradient where one is short.

// Index loops are the natural way to write these.
#![allow(clippy::needless_range_loop)]

mod common;

use common::*;
use tapeless::differentiable;

/// Deterministic pseudo-random numbers in (-1, 1) (a small LCG).
fn rand_vec(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

// ---------------------------------------------------------------- logsumexp / softmax

#[differentiable]
fn logsumexp(x: &[f64]) -> f64 {
    let mut m = x[0];
    for i in 1..x.len() {
        if x[i] > m {
            m = x[i];
        }
    }
    let mut s = 0.0;
    for v in x.iter() {
        s += (v - m).exp();
    }
    m + s.ln()
}

#[differentiable]
fn softmax_xent(logits: &[f64], label: usize) -> f64 {
    // -log softmax(logits)[label], computed stably
    let mut m = logits[0];
    for v in logits.iter() {
        m = m.max(*v);
    }
    let mut z = 0.0;
    for i in 0..logits.len() {
        z += (logits[i] - m).exp();
    }
    z.ln() + m - logits[label]
}

fn softmax(x: &[f64]) -> Vec<f64> {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

#[test]
fn logsumexp_and_softmax() {
    let cases = vec![
        vec![0.5, -1.2, 0.8, 2.0],
        vec![-0.3, 0.7, -1.5],
        vec![3.0],
        vec![100.0, 101.0, 99.5], // stable for large inputs
        rand_vec(7, 10),
    ];
    for x in &cases {
        // d/dx logsumexp = softmax(x)
        let (v, d) = logsumexp_grad(x);
        assert_eq!(v, logsumexp(x));
        assert_all_close(&d, &softmax(x), "logsumexp vs softmax");
        assert_all_close(&d, &fd_slice(logsumexp, x), "logsumexp vs FD");
        for label in 0..x.len() {
            // d/dlogits = softmax - onehot(label)
            let (v, d) = softmax_xent_grad(x, label);
            assert_eq!(v, softmax_xent(x, label));
            let mut e = softmax(x);
            e[label] -= 1.0;
            assert_all_close(&d, &e, &format!("softmax_xent label={label}"));
            assert_all_close(
                &d,
                &fd_slice(|x| softmax_xent(x, label), x),
                "softmax_xent FD",
            );
        }
    }
}

// ---------------------------------------------------------------- RNN

#[differentiable]
fn rnn(w: f64, u: f64, b: f64, x: &[f64]) -> f64 {
    let mut h = 0.0;
    for i in 0..x.len() {
        h = (w * h + u * x[i] + b).tanh();
    }
    h
}

#[differentiable]
fn rnn_loss(w: f64, u: f64, b: f64, x: &[f64], y: &[f64]) -> f64 {
    // per-step squared error, hidden state carried
    let mut h = 0.0;
    let mut loss = 0.0;
    for i in 0..x.len() {
        h = (w * h + u * x[i] + b).tanh();
        let e = h - y[i];
        loss += e * e;
    }
    loss / x.len() as f64
}

#[test]
fn rnn_recurrence() {
    for (seed, n) in [(1, 5), (2, 12), (3, 1)] {
        let x = rand_vec(seed, n);
        let y = rand_vec(seed + 100, n);
        for &(w, u, b) in &[(0.7, 1.3, -0.2), (-1.1, 0.4, 0.5)] {
            let (v, (dw, du, db, dx)) = rnn_grad(w, u, b, &x);
            assert_eq!(v, rnn(w, u, b, &x));
            assert_close(dw, fd(|w| rnn(w, u, b, &x), w), "rnn dw");
            assert_close(du, fd(|u| rnn(w, u, b, &x), u), "rnn du");
            assert_close(db, fd(|b| rnn(w, u, b, &x), b), "rnn db");
            assert_all_close(&dx, &fd_slice(|x| rnn(w, u, b, x), &x), "rnn dx");

            let (v, (dw, du, db, dx, dy)) = rnn_loss_grad(w, u, b, &x, &y);
            assert_eq!(v, rnn_loss(w, u, b, &x, &y));
            assert_close(dw, fd(|w| rnn_loss(w, u, b, &x, &y), w), "rnn_loss dw");
            assert_close(du, fd(|u| rnn_loss(w, u, b, &x, &y), u), "rnn_loss du");
            assert_close(db, fd(|b| rnn_loss(w, u, b, &x, &y), b), "rnn_loss db");
            assert_all_close(
                &dx,
                &fd_slice(|x| rnn_loss(w, u, b, x, &y), &x),
                "rnn_loss dx",
            );
            assert_all_close(
                &dy,
                &fd_slice(|y| rnn_loss(w, u, b, &x, y), &y),
                "rnn_loss dy",
            );
        }
    }
}

// ---------------------------------------------------------------- Horner

#[differentiable]
fn horner(c: &[f64], x: f64) -> f64 {
    // c[0] + c[1] x + ... + c[n-1] x^(n-1)
    let mut acc = 0.0;
    for i in (0..c.len()).rev() {
        acc = acc * x + c[i];
    }
    acc
}

#[test]
fn horner_polynomial() {
    for c in [vec![1.0, -2.0, 0.5, 3.0], vec![0.3], rand_vec(9, 8)] {
        for &x in &POINTS {
            // d/dc_i = x^i ; d/dx = sum i c_i x^(i-1)
            let (v, (dc, dx)) = horner_grad(&c, x);
            assert_eq!(v, horner(&c, x));
            let e: Vec<f64> = (0..c.len()).map(|i| x.powi(i as i32)).collect();
            assert_all_close(&dc, &e, "horner dc");
            let ex: f64 = (1..c.len())
                .map(|i| i as f64 * c[i] * x.powi(i as i32 - 1))
                .sum();
            assert_close(dx, ex, "horner dx");
        }
    }
}

// ---------------------------------------------------------------- Gaussian mixture

/// Log-likelihood of `n` points in `d` dimensions under a `k`-component
/// diagonal Gaussian mixture: `means[k*d]`, `log_vars[k*d]`, `logits[k]`
/// (mixture weights are softmax(logits)), `data[n*d]`.
#[differentiable]
fn gmm_loglik(means: &[f64], log_vars: &[f64], logits: &[f64], data: &[f64], d: usize) -> f64 {
    let k = logits.len();
    let n = data.len() / d;
    let log_2pi = (2.0 * std::f64::consts::PI).ln();
    // log-normaliser of the weights
    let mut wmax = logits[0];
    for j in 1..k {
        wmax = wmax.max(logits[j]);
    }
    let mut wsum = 0.0;
    for j in 0..k {
        wsum += (logits[j] - wmax).exp();
    }
    let log_norm = wmax + wsum.ln();

    let mut total = 0.0;
    // per-component log-densities of one point, overwritten for every point
    // (declared inside the loop: wip/bugs/03-local-array-declared-in-loop-body.rs)
    let mut lp = vec![0.0; k];
    for p in 0..n {
        // log-densities, then logsumexp over components
        for j in 0..k {
            let mut s = logits[j] - log_norm;
            for t in 0..d {
                let diff = data[p * d + t] - means[j * d + t];
                let lv = log_vars[j * d + t];
                s -= 0.5 * (log_2pi + lv + diff * diff * (-lv).exp());
            }
            lp[j] = s;
        }
        let mut m = lp[0];
        for j in 1..k {
            if lp[j] > m {
                m = lp[j];
            }
        }
        let mut acc = 0.0;
        for j in 0..k {
            acc += (lp[j] - m).exp();
        }
        total += m + acc.ln();
    }
    total
}

#[test]
fn gaussian_mixture() {
    for (k, d, n, seed) in [(3, 2, 5, 11), (2, 3, 4, 12), (1, 1, 3, 13)] {
        let means = rand_vec(seed, k * d);
        let log_vars: Vec<f64> = rand_vec(seed + 1, k * d).iter().map(|v| v * 0.5).collect();
        let logits = rand_vec(seed + 2, k);
        let data: Vec<f64> = rand_vec(seed + 3, n * d).iter().map(|v| v * 2.0).collect();
        let f = |m: &[f64], lv: &[f64], w: &[f64], x: &[f64]| gmm_loglik(m, lv, w, x, d);
        let (v, (dm, dlv, dw, dx)) = gmm_loglik_grad(&means, &log_vars, &logits, &data, d);
        assert_eq!(v, f(&means, &log_vars, &logits, &data));
        let what = format!("gmm k={k} d={d} n={n}");
        assert_all_close(
            &dm,
            &fd_slice(|m| f(m, &log_vars, &logits, &data), &means),
            &format!("{what} d/dmeans"),
        );
        assert_all_close(
            &dlv,
            &fd_slice(|lv| f(&means, lv, &logits, &data), &log_vars),
            &format!("{what} d/dlog_vars"),
        );
        assert_all_close(
            &dw,
            &fd_slice(|w| f(&means, &log_vars, w, &data), &logits),
            &format!("{what} d/dlogits"),
        );
        assert_all_close(
            &dx,
            &fd_slice(|x| f(&means, &log_vars, &logits, x), &data),
            &format!("{what} d/ddata"),
        );
        // softmax-weight logits are shift-invariant: their gradient sums to 0
        assert_close(
            dw.iter().sum::<f64>(),
            0.0,
            "gmm logits gradient sums to zero",
        );
    }
}

// ---------------------------------------------------------------- Rosenbrock

#[differentiable]
fn rosenbrock(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        let a = 1.0 - x[i];
        let b = x[i + 1] - x[i] * x[i];
        s += a * a + 100.0 * b * b;
    }
    s
}

fn rosenbrock_analytic(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut g = vec![0.0; n];
    for i in 0..n - 1 {
        let b = x[i + 1] - x[i] * x[i];
        g[i] += -2.0 * (1.0 - x[i]) - 400.0 * x[i] * b;
        g[i + 1] += 200.0 * b;
    }
    g
}

#[test]
fn rosenbrock_function() {
    for x in [
        vec![-1.2, 1.0],
        vec![1.0, 1.0, 1.0],
        vec![0.5, -0.3, 0.8, 1.1, -2.0],
        rand_vec(21, 9),
    ] {
        let (v, d) = rosenbrock_grad(&x);
        assert_eq!(v, rosenbrock(&x));
        assert_all_close(&d, &rosenbrock_analytic(&x), "rosenbrock analytic");
        assert_all_close(&d, &fd_slice(rosenbrock, &x), "rosenbrock FD");
    }
    // the minimum: value 0, gradient 0
    assert_eq!(rosenbrock_grad(&[1.0; 4]), (0.0, vec![0.0; 4]));
}

// ---------------------------------------------------------------- two-layer MLP on arrays

#[differentiable]
fn mlp(w1: &[[f64; 3]; 4], b1: &[f64; 4], w2: &[f64; 4], b2: f64, x: &[f64; 3]) -> f64 {
    // y = w2 . relu(W1 x + b1) + b2 ; then a squared loss to target 0.5
    let mut h = [0.0; 4];
    for i in 0..4 {
        let mut z = b1[i];
        for j in 0..3 {
            z += w1[i][j] * x[j];
        }
        h[i] = z.max(0.0);
    }
    let mut y = b2;
    for i in 0..4 {
        y += w2[i] * h[i];
    }
    let e = y - 0.5;
    e * e
}

#[differentiable]
fn mlp_tanh_batch(w1: &[[f64; 2]; 3], w2: &[f64; 3], xs: &[[f64; 2]], ys: &[f64]) -> f64 {
    let mut loss = 0.0;
    for p in 0..xs.len() {
        let mut y = 0.0;
        for i in 0..3 {
            let z = w1[i][0] * xs[p][0] + w1[i][1] * xs[p][1];
            y += w2[i] * z.tanh();
        }
        loss += (y - ys[p]).powi(2);
    }
    loss / xs.len() as f64
}

fn flat<const N: usize, const M: usize>(m: &[[f64; N]; M]) -> Vec<f64> {
    m.iter().flatten().copied().collect()
}

fn unflat<const N: usize, const M: usize>(v: &[f64]) -> [[f64; N]; M] {
    let mut m = [[0.0; N]; M];
    for i in 0..M {
        m[i].copy_from_slice(&v[i * N..(i + 1) * N]);
    }
    m
}

#[test]
fn two_layer_mlp() {
    let r = rand_vec(31, 12 + 4 + 4 + 1 + 3);
    let w1: [[f64; 3]; 4] = unflat(&r[..12]);
    let b1: [f64; 4] = r[12..16].try_into().unwrap();
    let w2: [f64; 4] = r[16..20].try_into().unwrap();
    let b2 = r[20];
    let x: [f64; 3] = [r[21] * 2.0, r[22] * 2.0, r[23] * 2.0];
    let (v, (dw1, db1, dw2, db2, dx)) = mlp_grad(&w1, &b1, &w2, b2, &x);
    assert_eq!(v, mlp(&w1, &b1, &w2, b2, &x));
    let fw1 = fd_slice(|w| mlp(&unflat(w), &b1, &w2, b2, &x), &flat(&w1));
    assert_all_close(&flat(&dw1), &fw1, "mlp dW1");
    assert_all_close(
        &db1,
        &fd_array(|b| mlp(&w1, &b, &w2, b2, &x), b1),
        "mlp db1",
    );
    assert_all_close(
        &dw2,
        &fd_array(|w| mlp(&w1, &b1, &w, b2, &x), w2),
        "mlp dw2",
    );
    assert_close(db2, fd(|b| mlp(&w1, &b1, &w2, b, &x), b2), "mlp db2");
    assert_all_close(&dx, &fd_array(|x| mlp(&w1, &b1, &w2, b2, &x), x), "mlp dx");

    let r = rand_vec(41, 6 + 3);
    let w1: [[f64; 2]; 3] = unflat(&r[..6]);
    let w2: [f64; 3] = r[6..9].try_into().unwrap();
    let xs = [[0.5, -1.0], [1.5, 0.2], [-0.7, 0.9]];
    let ys = [0.3, -0.2, 1.0];
    let (v, (dw1, dw2, dxs, dys)) = mlp_tanh_batch_grad(&w1, &w2, &xs, &ys);
    assert_eq!(v, mlp_tanh_batch(&w1, &w2, &xs, &ys));
    let fw1 = fd_slice(|w| mlp_tanh_batch(&unflat(w), &w2, &xs, &ys), &flat(&w1));
    assert_all_close(&flat(&dw1), &fw1, "mlp_tanh_batch dW1");
    assert_all_close(
        &dw2,
        &fd_array(|w| mlp_tanh_batch(&w1, &w, &xs, &ys), w2),
        "mlp_tanh_batch dw2",
    );
    let fxs = fd_slice(
        |v| mlp_tanh_batch(&w1, &w2, &unflat::<2, 3>(v), &ys),
        &flat(&xs),
    );
    let dxs_flat: Vec<f64> = dxs.iter().flatten().copied().collect();
    assert_all_close(&dxs_flat, &fxs, "mlp_tanh_batch dxs");
    assert_all_close(
        &dys,
        &fd_slice(|y| mlp_tanh_batch(&w1, &w2, &xs, y), &ys),
        "mlp_tanh_batch dys",
    );
}
