//! The bundle-adjustment reprojection residual of ADBench / GradBench for one
//! observation: Rodrigues rotation, projection, radial distortion; 15 inputs
//! (camera: rotation 3, centre 3, focal length 1, principal point 2,
//! distortion 2; the point 3; the weight 1), 2 outputs. The full 2 × 15
//! Jacobian is timed:
//!
//! * `tapeless`: two reverse sweeps, `reproj_adjoint` with cotangents (1, 0)
//!   and (0, 1);
//! * `hand-written`: the same two sweeps through a vector-Jacobian product
//!   written by hand (asserted equal to ours at setup);
//! * `easy-ml`: one taped forward pass, two `derivatives()` walks (why that
//!   crate: `common/mod.rs`);
//! * `num-dual`: one forward pass with 15 partials per number (`DualSVec64<15>`);
//! * `central-fd`: 30 calls of the primal.
//!
//! Run with `cargo bench --bench ba -- --warm-up-time 1 --measurement-time 3`;
//! results in docs/benchmarks-ad.md.

#![allow(clippy::needless_range_loop)]

mod common;

use common::*;
use criterion::{criterion_group, criterion_main, Criterion};
use easy_ml::differentiation::{Record, WengertList};
use std::hint::black_box;
use tapeless::differentiable;

/// The weighted reprojection error of point `x` seen by camera `cam` at `feat`.
/// `cam` = rotation (angle-axis, 3), centre (3), focal length, principal point
/// (2), radial distortion (2).
#[differentiable(wrt(cam, x, w))]
fn reproj(cam: &[f64; 11], x: &[f64; 3], w: f64, feat: &[f64; 2]) -> (f64, f64) {
    let (rx, ry, rz) = (cam[0], cam[1], cam[2]);
    let px = x[0] - cam[3];
    let py = x[1] - cam[4];
    let pz = x[2] - cam[5];
    // Rodrigues: rotate p by the angle-axis vector r
    let sqtheta = rx * rx + ry * ry + rz * rz;
    // (`let (xr, yr, zr) = if ..` is rejected: wip/bench-bugs/01-tuple-let-if.rs)
    let rot = if sqtheta != 0.0 {
        let theta = sqtheta.sqrt();
        let (c, s) = (theta.cos(), theta.sin());
        let ti = 1.0 / theta;
        let (wx, wy, wz) = (rx * ti, ry * ti, rz * ti);
        let tmp = (wx * px + wy * py + wz * pz) * (1.0 - c);
        (
            px * c + (wy * pz - wz * py) * s + wx * tmp,
            py * c + (wz * px - wx * pz) * s + wy * tmp,
            pz * c + (wx * py - wy * px) * s + wz * tmp,
        )
    } else {
        // first order: p + r × p
        (
            px + ry * pz - rz * py,
            py + rz * px - rx * pz,
            pz + rx * py - ry * px,
        )
    };
    let (xr, yr, zr) = rot;
    // perspective division, radial distortion, focal length, principal point
    let u = xr / zr;
    let v = yr / zr;
    let rsq = u * u + v * v;
    let dist = 1.0 + cam[9] * rsq + cam[10] * rsq * rsq;
    let pu = u * dist * cam[6] + cam[7];
    let pv = v * dist * cam[6] + cam[8];
    (w * (pu - feat[0]), w * (pv - feat[1]))
}

/// `reproj` for the taped and dual numbers.
fn reproj_g<T: Real>(cam: &[T; 11], x: &[T; 3], w: T, feat: &[f64; 2]) -> (T, T) {
    let (rx, ry, rz) = (cam[0], cam[1], cam[2]);
    let px = x[0] - cam[3];
    let py = x[1] - cam[4];
    let pz = x[2] - cam[5];
    let sqtheta = rx * rx + ry * ry + rz * rz;
    let (xr, yr, zr) = if sqtheta.val() != 0.0 {
        let theta = sqtheta.sqrt();
        let (c, s) = (theta.cos(), theta.sin());
        let ti = T::cst(1.0) / theta;
        let (wx, wy, wz) = (rx * ti, ry * ti, rz * ti);
        let tmp = (wx * px + wy * py + wz * pz) * (T::cst(1.0) - c);
        (
            px * c + (wy * pz - wz * py) * s + wx * tmp,
            py * c + (wz * px - wx * pz) * s + wy * tmp,
            pz * c + (wx * py - wy * px) * s + wz * tmp,
        )
    } else {
        (
            px + ry * pz - rz * py,
            py + rz * px - rx * pz,
            pz + rx * py - ry * px,
        )
    };
    let u = xr / zr;
    let v = yr / zr;
    let rsq = u * u + v * v;
    let dist = T::cst(1.0) + cam[9] * rsq + cam[10] * rsq * rsq;
    let pu = u * dist * cam[6] + cam[7];
    let pv = v * dist * cam[6] + cam[8];
    (w * (pu - feat[0]), w * (pv - feat[1]))
}

type Vjp = ((f64, f64), ([f64; 11], [f64; 3], f64));

/// Hand-written vector-Jacobian product of `reproj` with cotangent `(gu, gv)`.
fn reproj_vjp_manual(
    cam: &[f64; 11],
    x: &[f64; 3],
    w: f64,
    feat: &[f64; 2],
    (gu, gv): (f64, f64),
) -> Vjp {
    let r = [cam[0], cam[1], cam[2]];
    let p = [x[0] - cam[3], x[1] - cam[4], x[2] - cam[5]];
    let sqtheta = r[0] * r[0] + r[1] * r[1] + r[2] * r[2];
    let cross = |a: [f64; 3], b: [f64; 3]| {
        [
            a[1] * b[2] - a[2] * b[1],
            a[2] * b[0] - a[0] * b[2],
            a[0] * b[1] - a[1] * b[0],
        ]
    };
    let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    // forward, keeping what the reverse sweep reads
    let rot;
    let (mut theta, mut c, mut s, mut wv, mut wxp, mut tmp, mut wp) =
        (0.0, 0.0, 0.0, [0.0; 3], [0.0; 3], 0.0, 0.0);
    if sqtheta != 0.0 {
        theta = sqtheta.sqrt();
        (s, c) = theta.sin_cos();
        let ti = 1.0 / theta;
        wv = [r[0] * ti, r[1] * ti, r[2] * ti];
        wxp = cross(wv, p);
        wp = dot(wv, p);
        tmp = wp * (1.0 - c);
        rot = [0, 1, 2].map(|i| p[i] * c + wxp[i] * s + wv[i] * tmp);
    } else {
        let rxp = cross(r, p);
        rot = [0, 1, 2].map(|i| p[i] + rxp[i]);
    }
    let u = rot[0] / rot[2];
    let v = rot[1] / rot[2];
    let rsq = u * u + v * v;
    let (k1, k2, f) = (cam[9], cam[10], cam[6]);
    let dist = 1.0 + k1 * rsq + k2 * rsq * rsq;
    let eu = u * dist * f + cam[7] - feat[0];
    let ev = v * dist * f + cam[8] - feat[1];

    // reverse
    let mut dcam = [0.0; 11];
    let dw = gu * eu + gv * ev;
    let (dpu, dpv) = (w * gu, w * gv);
    dcam[7] = dpu;
    dcam[8] = dpv;
    dcam[6] = (dpu * u + dpv * v) * dist;
    let ddist = (dpu * u + dpv * v) * f;
    let mut du = dpu * dist * f;
    let mut dv = dpv * dist * f;
    dcam[9] = ddist * rsq;
    dcam[10] = ddist * rsq * rsq;
    let drsq = ddist * (k1 + 2.0 * k2 * rsq);
    du += 2.0 * u * drsq;
    dv += 2.0 * v * drsq;
    let g = [du / rot[2], dv / rot[2], -(du * u + dv * v) / rot[2]];
    let (dr, dp);
    if sqtheta != 0.0 {
        // rot = p c + (w × p) s + w (w·p)(1 - c)
        let dc = dot(g, p) - dot(g, wv) * wp;
        let ds = dot(g, wxp);
        let dtmp = dot(g, wv);
        let dcross = [g[0] * s, g[1] * s, g[2] * s];
        let dwp = dtmp * (1.0 - c);
        // d(w × p): dw += p × dcross, dp += dcross × w
        let pxd = cross(p, dcross);
        let dxw = cross(dcross, wv);
        let dwv = [0, 1, 2].map(|i| pxd[i] + g[i] * tmp + dwp * p[i]);
        dp = [0, 1, 2].map(|i| g[i] * c + dxw[i] + dwp * wv[i]);
        // w = r / θ, c = cos θ, s = sin θ, θ = sqrt(‖r‖²)
        let dtheta = -dot(dwv, r) / sqtheta - dc * s + ds * c;
        let dsq = dtheta / (2.0 * theta);
        dr = [0, 1, 2].map(|i| dwv[i] / theta + 2.0 * r[i] * dsq);
    } else {
        // rot = p + r × p
        let pxg = cross(p, g);
        let gxr = cross(g, r);
        dr = pxg;
        dp = [0, 1, 2].map(|i| g[i] + gxr[i]);
    }
    dcam[..3].copy_from_slice(&dr);
    for i in 0..3 {
        dcam[3 + i] = -dp[i];
    }
    ((w * eu, w * ev), (dcam, dp, dw))
}

/// The 2 × 15 Jacobian rows from two vector-Jacobian products.
type Jac = [[f64; 15]; 2];

fn rows(a: &Vjp, b: &Vjp) -> Jac {
    let row = |v: &Vjp| -> [f64; 15] {
        let (c, x, w) = &v.1;
        std::array::from_fn(|i| match i {
            0..=10 => c[i],
            11..=13 => x[i - 11],
            _ => *w,
        })
    };
    [row(a), row(b)]
}

struct Obs {
    cam: [f64; 11],
    x: [f64; 3],
    w: f64,
    feat: [f64; 2],
}

fn jac_tapeless(o: &Obs) -> (Vjp, Vjp) {
    (
        reproj_adjoint(&o.cam, &o.x, o.w, &o.feat, (1.0, 0.0)),
        reproj_adjoint(&o.cam, &o.x, o.w, &o.feat, (0.0, 1.0)),
    )
}

fn jac_manual(o: &Obs) -> (Vjp, Vjp) {
    (
        reproj_vjp_manual(&o.cam, &o.x, o.w, &o.feat, (1.0, 0.0)),
        reproj_vjp_manual(&o.cam, &o.x, o.w, &o.feat, (0.0, 1.0)),
    )
}

fn jac_easy_ml(list: &WengertList<f64>, o: &Obs) -> ((f64, f64), Jac) {
    list.clear();
    let cam = o.cam.map(|v| Record::variable(v, list));
    let x = o.x.map(|v| Record::variable(v, list));
    let w = Record::variable(o.w, list);
    let (eu, ev) = reproj_g(&cam, &x, w, &o.feat);
    let row = |y: Rec| -> [f64; 15] {
        let d = y.derivatives();
        std::array::from_fn(|i| match i {
            0..=10 => d[&cam[i]],
            11..=13 => d[&x[i - 11]],
            _ => d[&w],
        })
    };
    ((eu.number, ev.number), [row(eu), row(ev)])
}

fn jac_dual(o: &Obs) -> ((f64, f64), Jac) {
    let all: [f64; 15] = std::array::from_fn(|i| match i {
        0..=10 => o.cam[i],
        11..=13 => o.x[i - 11],
        _ => o.w,
    });
    let v = duals(all);
    let cam: [Dual<15>; 11] = std::array::from_fn(|i| v[i]);
    let x = [v[11], v[12], v[13]];
    let (eu, ev) = reproj_g(&cam, &x, v[14], &o.feat);
    let ((a, ra), (b, rb)) = (dual_parts(eu), dual_parts(ev));
    ((a, b), [ra, rb])
}

fn jac_fd(o: &Obs) -> ((f64, f64), Jac) {
    let mut all: [f64; 15] = std::array::from_fn(|i| match i {
        0..=10 => o.cam[i],
        11..=13 => o.x[i - 11],
        _ => o.w,
    });
    let split = |a: &[f64]| -> ([f64; 11], [f64; 3], f64) {
        (std::array::from_fn(|i| a[i]), [a[11], a[12], a[13]], a[14])
    };
    let mut jac = [[0.0; 15]; 2];
    for i in 0..15 {
        let xi = all[i];
        let h = fd_step(xi);
        all[i] = xi + h;
        let (c, x, w) = split(&all);
        let fp = reproj(&c, &x, w, &o.feat);
        all[i] = xi - h;
        let (c, x, w) = split(&all);
        let fm = reproj(&c, &x, w, &o.feat);
        all[i] = xi;
        jac[0][i] = (fp.0 - fm.0) / (2.0 * h);
        jac[1][i] = (fp.1 - fm.1) / (2.0 * h);
    }
    (reproj(&o.cam, &o.x, o.w, &o.feat), jac)
}

fn check(o: &Obs, list: &WengertList<f64>, what: &str) {
    let (a, b) = jac_tapeless(o);
    let ours = rows(&a, &b);
    let value = a.0;
    assert_eq!(value, reproj(&o.cam, &o.x, o.w, &o.feat));
    let (ha, hb) = jac_manual(o);
    assert!((ha.0 .0 - value.0).abs() < 1e-12 && (ha.0 .1 - value.1).abs() < 1e-12);
    let hand = rows(&ha, &hb);
    for r in 0..2 {
        assert_close(&hand[r], &ours[r], 1e-12, &format!("{what} hand row {r}"));
        assert_close(
            &jac_easy_ml(list, o).1[r],
            &ours[r],
            1e-12,
            &format!("{what} easy-ml row {r}"),
        );
        assert_close(
            &jac_dual(o).1[r],
            &ours[r],
            1e-12,
            &format!("{what} num-dual row {r}"),
        );
        assert_close(
            &jac_fd(o).1[r],
            &ours[r],
            1e-6,
            &format!("{what} fd row {r}"),
        );
    }
}

fn bench_ba(c: &mut Criterion) {
    // ADBench-like values: a small rotation, the point in front of the camera
    let o = Obs {
        cam: [
            0.12, -0.05, 0.03, 0.3, -0.2, -5.0, 800.0, 0.01, -0.02, 1e-2, -2e-3,
        ],
        x: [0.4, 0.25, 1.2],
        w: 0.9,
        feat: [50.0, 30.0],
    };
    let list = tape();
    check(&o, &list, "ba");
    // the branch without rotation too
    let mut o0 = Obs {
        cam: o.cam,
        x: o.x,
        w: o.w,
        feat: o.feat,
    };
    o0.cam[..3].copy_from_slice(&[0.0; 3]);
    check(&o0, &list, "ba (no rotation)");

    let mut g = c.benchmark_group("ba_reproj_jacobian");
    g.bench_function("primal", |bch| {
        bch.iter(|| {
            let o = black_box(&o);
            reproj(&o.cam, &o.x, o.w, &o.feat)
        })
    });
    g.bench_function("tapeless", |bch| bch.iter(|| jac_tapeless(black_box(&o))));
    g.bench_function("hand-written", |bch| bch.iter(|| jac_manual(black_box(&o))));
    g.bench_function("easy-ml", |bch| {
        bch.iter(|| jac_easy_ml(&list, black_box(&o)))
    });
    g.bench_function("num-dual", |bch| bch.iter(|| jac_dual(black_box(&o))));
    g.bench_function("central-fd", |bch| bch.iter(|| jac_fd(black_box(&o))));
    g.finish();
}

criterion_group!(benches, bench_ba);
criterion_main!(benches);
