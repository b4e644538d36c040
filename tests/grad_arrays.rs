//! Containers: index reads of active slices, arrays (by value and by
//! reference), `Vec`s and nested `Vec<Vec<_>>` / `[[_; N]; M]`; index writes
//! and compound index writes into local `[0.0; N]` and `vec![0.0; n]`;
//! `.len()`; array and `Vec` outputs through `_adjoint`.

// Index loops, `&Vec` parameters and local `vec!`s are constructs under test.
#![allow(clippy::needless_range_loop, clippy::ptr_arg, clippy::useless_vec)]

mod common;

use common::*;
use tapeless::differentiable;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

// ---------------------------------------------------------------- reads

#[differentiable]
fn slice_reads(x: &[f64]) -> f64 {
    // x0 x1^2 + sin(x2) / x_{n-1}
    let n = x.len();
    x[0] * x[1] * x[1] + x[2].sin() / x[n - 1]
}

#[differentiable]
fn array_reads(x: [f64; 3]) -> f64 {
    x[0] * x[1] + x[2] * x[2] * x[0]
}

#[differentiable]
fn array_ref_reads(x: &[f64; 4], k: usize) -> f64 {
    x[k] * x[(k + 1) % 4] - x[3].exp()
}

#[differentiable]
fn vec_reads(x: Vec<f64>, y: &Vec<f64>) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * y[x.len() - 1 - i];
    }
    s * s
}

#[differentiable]
fn repeated_reads(x: &[f64]) -> f64 {
    // the same element read many times
    x[0] * x[0] * x[0] + x[0] * x[1] + x[1]
}

#[differentiable]
fn vec_of_vec(m: &Vec<Vec<f64>>, v: &[f64]) -> f64 {
    // v^T M v
    let mut s = 0.0;
    for i in 0..m.len() {
        for j in 0..m[i].len() {
            s += v[i] * m[i][j] * v[j];
        }
    }
    s
}

#[differentiable]
fn slice_of_vec(m: &[Vec<f64>]) -> f64 {
    let mut s = 0.0;
    for i in 0..m.len() {
        s += m[i][0] * m[i][m[i].len() - 1];
    }
    s
}

#[differentiable]
fn nested_array(m: [[f64; 3]; 2], w: &[[f64; 3]; 2]) -> f64 {
    let mut s = 0.0;
    for i in 0..2 {
        for j in 0..3 {
            s += (m[i][j] * w[i][j]).tanh();
        }
    }
    s
}

#[test]
fn index_reads() {
    for x in [vec![0.5, -1.2, 0.8, 2.0], vec![-0.3, 0.7, -1.5]] {
        let (v, d) = slice_reads_grad(&x);
        assert_eq!(v, slice_reads(&x));
        assert_all_close(&d, &fd_slice(slice_reads, &x), "slice_reads");
        let (v, d) = repeated_reads_grad(&x);
        assert_eq!(v, repeated_reads(&x));
        // d/dx0 = 3 x0^2 + x1, d/dx1 = x0 + 1, rest 0
        let mut e = vec![0.0; x.len()];
        e[0] = 3.0 * x[0] * x[0] + x[1];
        e[1] = x[0] + 1.0;
        assert_all_close(&d, &e, "repeated_reads");
    }
    for x in [[0.5, -1.2, 0.8], [-2.0, 0.3, 1.1]] {
        // (x1 + x2^2, x0, 2 x2 x0)
        let (v, d) = array_reads_grad(x);
        assert_eq!(v, array_reads(x));
        let e = [x[1] + x[2] * x[2], x[0], 2.0 * x[2] * x[0]];
        assert_all_close(&d, &e, "array_reads");
        assert_all_close(&d, &fd_array(array_reads, x), "array_reads FD");
    }
    let x = [0.4, -0.9, 1.3, 0.2];
    for k in 0..4 {
        let (v, d): (f64, [f64; 4]) = array_ref_reads_grad(&x, k);
        assert_eq!(v, array_ref_reads(&x, k));
        assert_all_close(
            &d,
            &fd_array(|x| array_ref_reads(&x, k), x),
            &format!("array_ref_reads k={k}"),
        );
    }
    let (x, y) = (vec![0.5, -1.0, 2.0], vec![1.5, 0.25, -0.75]);
    let (v, (dx, dy)) = vec_reads_grad(x.clone(), &y);
    assert_eq!(v, vec_reads(x.clone(), &y));
    assert_all_close(
        &dx,
        &fd_slice(|x| vec_reads(x.to_vec(), &y), &x),
        "vec_reads dx",
    );
    assert_all_close(
        &dy,
        &fd_slice(|y| vec_reads(x.clone(), &y.to_vec()), &y),
        "vec_reads dy",
    );

    // d/dM v^T M v = v v^T; d/dv = (M + M^T) v
    let m = vec![
        vec![1.0, 2.0, -0.5],
        vec![0.3, -1.0, 0.8],
        vec![2.0, 0.1, 0.4],
    ];
    let v = [0.7, -0.2, 1.1];
    let (val, (dm, dv)) = vec_of_vec_grad(&m, &v);
    assert_eq!(val, vec_of_vec(&m, &v));
    for i in 0..3 {
        let e: Vec<f64> = (0..3).map(|j| v[i] * v[j]).collect();
        assert_all_close(&dm[i], &e, &format!("vec_of_vec dM row {i}"));
    }
    let e: Vec<f64> = (0..3)
        .map(|i| (0..3).map(|j| (m[i][j] + m[j][i]) * v[j]).sum())
        .collect();
    assert_all_close(&dv, &e, "vec_of_vec dv");

    let m = vec![vec![1.0, 2.0, -0.5], vec![0.3], vec![2.0, 0.1]];
    let (val, dm) = slice_of_vec_grad(&m);
    assert_eq!(val, slice_of_vec(&m));
    let fdm = fd_matrix(slice_of_vec, &m);
    for i in 0..3 {
        assert_all_close(&dm[i], &fdm[i], &format!("slice_of_vec row {i}"));
    }

    let m = [[0.5, -1.0, 0.3], [1.2, 0.0, -0.7]];
    let w = [[1.0, 0.4, -2.0], [0.6, 1.5, 0.9]];
    let (val, (dm, dw)) = nested_array_grad(m, &w);
    assert_eq!(val, nested_array(m, &w));
    for i in 0..2 {
        for j in 0..3 {
            // d/dm tanh(m w) = w (1 - tanh^2)
            let s = 1.0 - (m[i][j] * w[i][j]).tanh().powi(2);
            assert_close(dm[i][j], w[i][j] * s, &format!("nested_array dm[{i}][{j}]"));
            assert_close(dw[i][j], m[i][j] * s, &format!("nested_array dw[{i}][{j}]"));
        }
    }
}

// ---------------------------------------------------------------- writes into locals

#[differentiable]
fn local_array_writes(x: f64, y: f64) -> f64 {
    let mut a = [0.0; 4];
    a[0] = x;
    a[1] = x * y;
    a[2] = a[0] + a[1].sin();
    a[3] = a[2] * a[2];
    a[0] = a[3] - y; // overwrite of an element that was already read
    a[0] * a[1] + a[2]
}

#[differentiable]
fn local_array_compound(x: &[f64; 3]) -> f64 {
    let mut a = [1.0; 3];
    for i in 0..3 {
        a[i] *= x[i];
        a[i] += x[(i + 1) % 3] * x[i];
        a[i] -= 0.5 * x[i];
        a[i] /= 1.0 + x[i] * x[i];
    }
    a[0] * a[1] * a[2]
}

#[differentiable]
fn local_vec_writes(x: &[f64]) -> f64 {
    let n = x.len();
    let mut v = vec![0.0; n];
    for i in 0..n {
        v[i] = x[i] * x[i];
    }
    // prefix sums in place: loop-carried through the vector
    for i in 1..n {
        v[i] += v[i - 1] * 0.5;
    }
    let mut s = 0.0;
    for i in 0..n {
        s += v[i].sqrt();
    }
    s
}

#[differentiable]
fn local_vec_overwrite(x: &[f64], w: f64) -> f64 {
    // the same slot overwritten every iteration, read nonlinearly each time
    let mut buf = vec![0.0; 2];
    buf[0] = w;
    for i in 0..x.len() {
        buf[1] = buf[0];
        buf[0] = (buf[0] * x[i] + w).sin();
        buf[0] *= buf[1];
    }
    buf[0] + buf[1]
}

#[differentiable]
fn write_by_active_cond(x: &[f64]) -> f64 {
    let mut pos = [0.0; 2];
    for i in 0..x.len() {
        if x[i] > 0.0 {
            pos[0] += x[i] * x[i];
        } else {
            pos[1] -= x[i] * 2.0;
        }
        pos[0] *= 0.9;
    }
    pos[0] * pos[1] + pos[1]
}

#[differentiable]
fn vec_from_macro_list(x: f64, y: f64) -> f64 {
    let v = vec![x, y * y, x * y];
    let a = [y, x];
    v[0] * v[1] + v[2] * a[0] + a[1]
}

#[differentiable]
fn local_matrix(x: &[f64]) -> f64 {
    // outer product then trace of its square
    let mut m = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = x[i] * x[j] + if i == j { 1.0 } else { 0.0 };
        }
    }
    let mut t = 0.0;
    for i in 0..3 {
        for k in 0..3 {
            t += m[i][k] * m[k][i];
        }
    }
    t
}

#[test]
fn index_writes() {
    for &(x, y) in &[(0.7, 0.3), (-0.4, 1.2), (2.0, -0.5)] {
        let (v, (dx, dy)) = local_array_writes_grad(x, y);
        assert_eq!(v, local_array_writes(x, y));
        assert_close(
            dx,
            fd(|x| local_array_writes(x, y), x),
            "local_array_writes dx",
        );
        assert_close(
            dy,
            fd(|y| local_array_writes(x, y), y),
            "local_array_writes dy",
        );
        let (v, (dx, dy)) = vec_from_macro_list_grad(x, y);
        assert_eq!(v, vec_from_macro_list(x, y));
        // x y^2 + x y^2 + x = 2 x y^2 + x
        assert_close(dx, 2.0 * y * y + 1.0, "vec_from_macro_list dx");
        assert_close(dy, 4.0 * x * y, "vec_from_macro_list dy");
    }
    for x in [[0.5, -1.2, 0.8], [1.5, 0.3, -0.4]] {
        let (v, d) = local_array_compound_grad(&x);
        assert_eq!(v, local_array_compound(&x));
        assert_all_close(
            &d,
            &fd_array(|x| local_array_compound(&x), x),
            "local_array_compound",
        );
    }
    for x in [vec![0.5, -1.2, 0.8, 2.0], vec![-0.3, 0.7, -1.5]] {
        let (v, d) = local_vec_writes_grad(&x);
        assert_eq!(v, local_vec_writes(&x));
        assert_all_close(&d, &fd_slice(local_vec_writes, &x), "local_vec_writes");
        for w in [0.4, -1.1] {
            let (v, (dx, dw)) = local_vec_overwrite_grad(&x, w);
            assert_eq!(v, local_vec_overwrite(&x, w));
            assert_all_close(
                &dx,
                &fd_slice(|x| local_vec_overwrite(x, w), &x),
                "local_vec_overwrite dx",
            );
            assert_close(
                dw,
                fd(|w| local_vec_overwrite(&x, w), w),
                "local_vec_overwrite dw",
            );
        }
        let (v, d) = write_by_active_cond_grad(&x);
        assert_eq!(v, write_by_active_cond(&x));
        assert_all_close(
            &d,
            &fd_slice(write_by_active_cond, &x),
            "write_by_active_cond",
        );
        let (v, d) = local_matrix_grad(&x[..3]);
        assert_eq!(v, local_matrix(&x[..3]));
        assert_all_close(&d, &fd_slice(local_matrix, &x[..3]), "local_matrix");
    }
}

// ---------------------------------------------------------------- len

#[differentiable]
fn mean(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for v in x.iter() {
        s += v;
    }
    s / x.len() as f64
}

#[differentiable]
fn variance(x: &Vec<f64>) -> f64 {
    let n = x.len() as f64;
    let mut m = 0.0;
    for i in 0..x.len() {
        m += x[i] / n;
    }
    let mut s = 0.0;
    for i in 0..x.len() {
        s += (x[i] - m) * (x[i] - m);
    }
    s / n
}

#[test]
fn lengths() {
    for x in [vec![0.5, -1.2, 0.8, 2.0], vec![-0.3, 0.7, -1.5]] {
        let n = x.len() as f64;
        let (v, d) = mean_grad(&x);
        assert_eq!(v, mean(&x));
        assert_all_close(&d, &vec![1.0 / n; x.len()], "mean");
        // d/dx_i var = 2 (x_i - m) / n
        let (v, d) = variance_grad(&x);
        assert_eq!(v, variance(&x));
        let m = x.iter().sum::<f64>() / n;
        let e: Vec<f64> = x.iter().map(|xi| 2.0 * (xi - m) / n).collect();
        assert_all_close(&d, &e, "variance");
    }
}

// ---------------------------------------------------------------- container outputs

#[differentiable]
fn array_out(x: f64, y: f64) -> [f64; 3] {
    [x * y, x.sin(), y * y]
}

#[differentiable]
fn array_out_built(x: &[f64; 3]) -> [f64; 3] {
    let mut out = [0.0; 3];
    for i in 0..3 {
        out[i] = x[i] * x[(i + 1) % 3];
    }
    out
}

#[differentiable]
fn vec_out(x: &[f64], s: f64) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for i in 0..x.len() {
        out[i] = (x[i] * s).tanh();
    }
    out
}

#[differentiable]
fn tuple_of_containers(x: &[f64]) -> (f64, Vec<f64>) {
    let mut v = vec![0.0; x.len()];
    let mut s = 0.0;
    for i in 0..x.len() {
        v[i] = x[i].exp();
        s += v[i];
    }
    (s, v)
}

#[test]
fn container_outputs() {
    for &(x, y) in &[(0.7, 0.3), (-0.4, 1.2)] {
        let d = [0.5, -2.0, 1.5];
        let (v, (dx, dy)) = array_out_adjoint(x, y, d);
        assert_eq!(v, array_out(x, y));
        // <d, f> = 0.5 x y - 2 sin x + 1.5 y^2
        assert_close(dx, 0.5 * y - 2.0 * x.cos(), "array_out dx");
        assert_close(dy, 0.5 * x + 3.0 * y, "array_out dy");
    }
    let x = [0.5, -1.2, 0.8];
    let d = [1.0, 0.3, -0.7];
    let (v, g) = array_out_built_adjoint(&x, d);
    assert_eq!(v, array_out_built(&x));
    assert_all_close(
        &g,
        &fd_array(|x| dot(&array_out_built(&x), &d), x),
        "array_out_built",
    );

    let x = vec![0.5, -1.2, 0.8, 2.0];
    let d = vec![1.0, 0.3, -0.7, 0.2];
    for s in [0.6, -1.3] {
        let (v, (gx, gs)) = vec_out_adjoint(&x, s, d.clone());
        assert_eq!(v, vec_out(&x, s));
        assert_all_close(
            &gx,
            &fd_slice(|x| dot(&vec_out(x, s), &d), &x),
            "vec_out dx",
        );
        assert_close(gs, fd(|s| dot(&vec_out(&x, s), &d), s), "vec_out ds");
    }
    let ds = 0.7;
    let (v, g) = tuple_of_containers_adjoint(&x, (ds, d.clone()));
    assert_eq!(v, tuple_of_containers(&x));
    let f = |x: &[f64]| {
        let (s, v) = tuple_of_containers(x);
        ds * s + dot(&v, &d)
    };
    assert_all_close(&g, &fd_slice(f, &x), "tuple_of_containers");
}
