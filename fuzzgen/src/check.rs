//! Checks generated programs against central finite differences.
//!
//! For every program, at several random points, with a cotangent `ct` (`1` for
//! scalar outputs, uniform in `[-1, 1]` per output element otherwise):
//!
//! * the value `_adjoint` (and `_grad`) returns is bit-identical to the primal;
//! * `_grad` is bit-identical to `_adjoint(.., 1.0)`;
//! * the gradient has one entry per active input and no NaN;
//! * for every active input `x_j`, the gradient of `phi = ct . f` agrees with a
//!   central difference of `phi`.
//!
//! The finite difference is taken with steps `h` and `h / 2`
//! (`h = 1e-5 max(1, |x_j|)`) and extrapolated (Richardson), and again with
//! `10 h` and `5 h`. When the two steps of a pair differ by more than `1e-3`
//! relative (plus the roundoff estimate `1e3 eps max|phi| / h`), or the two
//! extrapolations do, the point is near a kink or a branch boundary, or the
//! difference is ill-conditioned (roundoff of an intermediate far larger than
//! the output): that coordinate is **skipped and counted**, never compared
//! with a looser tolerance. Otherwise the gradient must agree with the
//! extrapolation at `h` within `8 max(|d_h - d_h/2|, |R_h - R_10h|)`, plus
//! `1e-6 |g|` and the roundoff estimate: the tolerance is the measured error of
//! the finite difference itself. A point that is alone on
//! its branch (a condition decided by rounding, so `phi(x)` jumps away from its
//! neighbours) is detected from the second differences and skipped too. Where
//! the differences are exactly zero (the change lost below one ulp in an
//! intermediate) and the gradient is not, steps `1e-3` and `1e-1` are tried
//! in turn with the same rules; a function flat at all three is skipped.
//!
//! Forward mode, along a direction `v` uniform in `[-1, 1]` per active input:
//!
//! * `_tangent`'s value is bit-identical to the primal, and `ct . (J v)`
//!   equals `g . v` (`g` the gradient checked above) within `1e-9` of
//!   `sum |ct_i (J v)_i|` or `sum |g_j v_j|`, plus `1e-12 max(1, |f|)` (an
//!   identity but for rounding);
//! * `J v` agrees with central differences of `phi` along `v`, with the rules
//!   above (the step is `t` in `x + t v`), skipped and counted likewise;
//! * for scalar outputs, `_hvp`'s value and gradient are bit-identical to
//!   `_grad`'s, and every entry of `H v` agrees with central differences of
//!   that gradient entry along `v`, same rules (a kink of the gradient, as at
//!   a branch on an active value, makes the steps disagree: skipped, counted);
//! * with at most [`HESSIAN_MAX`] active inputs, `_hessian`'s value and
//!   gradient are bit-identical to `_grad`'s, it is symmetric within `1e-9`
//!   relative (plus `1e-12` of its largest entry), and its columns are
//!   bit-identical to `_hvp` along the unit vectors.
//!
//! An `f32` twin (the same program with every `f64` written `f32`) is run at
//! the inputs rounded to `f32`; where its value agrees with the `f64` one
//! within `1e-4` relative and every finite difference of the point was stable,
//! its gradient must be within `1e-2` of the `f64` gradient relative to the
//! largest entry (plus `1e-4` of the value's scale); otherwise it is skipped
//! and counted.

use crate::{Case, Program, Rng};
use std::fmt::Write as _;
use std::sync::mpsc;
use std::time::Duration;

/// Seed salt for sample points.
pub const POINT_SALT: u64 = 0x00C0_FFEE;

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Sample points per program.
    pub points: usize,
    /// Only these program indices (all when `None`).
    pub only: Option<Vec<usize>>,
    /// A program that runs longer than this is reported as hanging.
    pub timeout: Duration,
}

impl Config {
    /// From `TAPELESS_FUZZ_POINTS` and `TAPELESS_FUZZ_ONLY`.
    pub fn from_env() -> Config {
        let points = std::env::var("TAPELESS_FUZZ_POINTS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(4);
        let only = std::env::var("TAPELESS_FUZZ_ONLY").ok().map(|s| {
            s.split(',')
                .filter_map(|t| t.trim().parse().ok())
                .collect::<Vec<usize>>()
        });
        Config {
            points,
            only,
            timeout: Duration::from_secs(60),
        }
    }
}

/// One failed check.
#[derive(Clone, Debug)]
pub struct Failure {
    /// Program index in the batch.
    pub index: usize,
    /// Program name.
    pub name: &'static str,
    /// Its source.
    pub source: &'static str,
    /// What went wrong, with the point.
    pub what: String,
}

/// Counts over a run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Programs checked.
    pub programs: usize,
    /// Sample points evaluated.
    pub points: usize,
    /// Gradient entries compared with finite differences.
    pub checked: usize,
    /// Gradient entries skipped: the finite difference was unstable there.
    pub skipped: usize,
    /// Points where an `f32` twin's gradient was compared with the `f64` one.
    pub f32_checked: usize,
    /// Points where the `f32` twin was not compared: its value already
    /// differs from the `f64` one by more than `1e-4` relative (the program is
    /// ill-conditioned in `f32` there), or a finite difference was skipped.
    pub f32_skipped: usize,
    /// Points where `_tangent` along a random direction was compared with
    /// finite differences along it (it is always compared with the gradient).
    pub tangent_checked: usize,
    /// Points where that finite difference was unstable: skipped.
    pub tangent_skipped: usize,
    /// Entries of Hessian-vector products compared with finite differences
    /// of the gradient.
    pub hvp_checked: usize,
    /// Entries skipped: the gradient's finite difference was unstable (a kink
    /// of the gradient, a branch boundary, ill-conditioning).
    pub hvp_skipped: usize,
    /// Points where the dense `_hessian` (of at most [`HESSIAN_MAX`] inputs)
    /// was symmetric and equal to `_hvp` along unit vectors.
    pub hessian_checked: usize,
    /// Programs none of whose entries could be compared.
    pub unchecked_programs: usize,
    /// Programs with a non-scalar output (checked through `_adjoint`).
    pub adjoint_programs: usize,
    /// Programs whose `_tangent` is checked (all).
    pub forward_programs: usize,
    /// Programs whose `_hvp` and `_hessian` are checked (scalar outputs, but
    /// for `gen::HESSIAN_KNOWN_BUGS`).
    pub hessian_programs: usize,
    /// Failed checks.
    pub failures: Vec<Failure>,
}

#[derive(Default)]
struct ProgramReport {
    points: usize,
    checked: usize,
    skipped: usize,
    f32_checked: usize,
    f32_skipped: usize,
    tangent_checked: usize,
    tangent_skipped: usize,
    hvp_checked: usize,
    hvp_skipped: usize,
    hessian_checked: usize,
    failures: Vec<String>,
}

fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn same_all(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(*x, *y))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The outcome of comparing one gradient entry with finite differences.
#[derive(Debug, PartialEq)]
enum Verdict {
    Pass,
    /// The finite difference is unstable here (kink, jump, ill-conditioning).
    Skip,
    Fail(String),
}

/// Compares `g`, the derivative of `phi` in coordinate `j` at `v`, with
/// central differences (see the module docs). `phi` returns `None` where its
/// output changes shape (a branch boundary): skipped.
fn fd_check(phi: &dyn Fn(&[f64]) -> Option<f64>, v: &[f64], j: usize, g: f64) -> Verdict {
    let Some(phi0) = phi(v) else {
        return Verdict::Skip;
    };
    // A function that is flat in floating point at this scale (its change
    // lost below one ulp in an intermediate, as through a saturated `tanh`)
    // gives exactly zero differences that say nothing about a small nonzero
    // gradient: then try larger steps, and skip if it stays flat.
    for step in [1e-5, 1e-3, 1e-1] {
        match fd_check_step(phi, v, j, g, phi0, step) {
            Some(verdict) => return verdict,
            None => continue,
        }
    }
    Verdict::Skip
}

/// [`fd_check`] with steps `step * max(1, |x|)` and half that; `None` when
/// `phi` is exactly constant over them and `g` is larger than the roundoff
/// resolution of the differences.
fn fd_check_step(
    phi: &dyn Fn(&[f64]) -> Option<f64>,
    v: &[f64],
    j: usize,
    g: f64,
    phi0: f64,
    step: f64,
) -> Option<Verdict> {
    let x = v[j];
    let h = step * x.abs().max(1.0);
    let mut w = v.to_vec();
    let mut at = |t: f64| {
        w[j] = x + t;
        phi(&w)
    };
    let (Some(fp1), Some(fm1), Some(fp2), Some(fm2)) = (at(h), at(-h), at(h / 2.0), at(-h / 2.0))
    else {
        return Some(Verdict::Skip);
    };
    let big = [phi0, fp1, fm1, fp2, fm2]
        .iter()
        .fold(1.0f64, |m, f| m.max(f.abs()));
    let noise = 1e3 * f64::EPSILON * big / h;
    if fp1 == fm1 && fp2 == fm2 && fp1 == phi0 && g.abs() > noise {
        return None;
    }
    let d1 = (fp1 - fm1) / (2.0 * h);
    let d2 = (fp2 - fm2) / h;
    let rich = (4.0 * d2 - d1) / 3.0;
    let spread = (d1 - d2).abs();
    if !spread.is_finite() || spread > 1e-3 * d1.abs().max(d2.abs()) + noise {
        return Some(Verdict::Skip);
    }
    // `x` itself on another branch than its neighbours (a condition decided by
    // rounding, `ln_1p(a * a) >= (a * a + 1.0).ln()`): the second differences
    // with steps h and h/2 are in ratio 4 for a smooth function and differ by
    // 6 J for a jump J at `x` alone.
    let jump = ((fp1 + fm1 - 2.0 * phi0) - 4.0 * (fp2 + fm2 - 2.0 * phi0)).abs() / (6.0 * h);
    if !jump.is_finite() || jump > 1e-3 * d1.abs().max(d2.abs()) + noise {
        return Some(Verdict::Skip);
    }
    // The same at a 10x larger step: roundoff amplified by the program (an
    // intermediate far larger than the output, as in `(999 * t.sin()).fract()`)
    // can make the differences at h and h/2 agree by chance while both are off;
    // at 10h that error is 10x smaller. Their disagreement measures it.
    let (Some(gp1), Some(gm1), Some(gp2), Some(gm2)) =
        (at(10.0 * h), at(-10.0 * h), at(5.0 * h), at(-5.0 * h))
    else {
        return Some(Verdict::Skip);
    };
    let c1 = (gp1 - gm1) / (20.0 * h);
    let c2 = (gp2 - gm2) / (10.0 * h);
    let coarse = (4.0 * c2 - c1) / 3.0;
    let cross = (rich - coarse).abs();
    let scale = rich.abs().max(coarse.abs());
    if !cross.is_finite() || cross > 1e-3 * scale + noise {
        return Some(Verdict::Skip);
    }
    let tol = 8.0 * spread.max(cross) + 1e-6 * g.abs().max(scale) + noise;
    let err = (g - rich).abs();
    Some(if err.is_nan() || err > tol {
        Verdict::Fail(format!(
            "d/dv[{j}]: gradient {g:e}, finite differences {rich:e} (h = {h:e}: {d1:e}, h/2: {d2:e}; at 10 h: {coarse:e}); |diff| {err:e} > tol {tol:e}"
        ))
    } else {
        Verdict::Pass
    })
}

/// The `f32` twin against the (already checked) `f64` program: a gradient of
/// the right length without NaN, and, where the `f32` value agrees with the
/// `f64` one within `1e-4` relative (so the twin takes the same branches and
/// is not ill-conditioned), every finite difference was stable and the `f64`
/// gradient itself moves by less than a quarter of the tolerance when the
/// inputs move by a few `f32` roundings (`f32_sensitive`), a gradient within
/// `1e-2` of the `f64` one relative to the largest entry.
fn check_f32(
    adj32: crate::AdjointFn,
    adj64: crate::AdjointFn,
    case: &Case,
    ct: &[f64],
    out: &[f64],
    g: &[f64],
    stable: bool,
) -> Verdict {
    let (o32, g32) = adj32(case, ct);
    if o32.len() != out.len() || g32.len() != g.len() {
        return Verdict::Fail(format!(
            "f32 twin: output {o32:?} / gradient {g32:?} of another shape than f64's {out:?} / {g:?}"
        ));
    }
    if g32.iter().any(|x| x.is_nan()) && !o32.iter().any(|x| x.is_nan()) {
        return Verdict::Fail(format!(
            "f32 twin: NaN in the gradient {g32:?} (f64: {g:?})"
        ));
    }
    let vscale = out.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    let verr = o32
        .iter()
        .zip(out)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    if !stable || verr.is_nan() || verr > 1e-4 * vscale {
        return Verdict::Skip;
    }
    let gscale = g.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let tol = 1e-2 * gscale + 1e-4 * vscale;
    if f32_sensitive(adj64, case, ct, g, 0.25 * tol) {
        return Verdict::Skip;
    }
    let gerr = g32
        .iter()
        .zip(g)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    if gerr <= tol {
        Verdict::Pass
    } else {
        Verdict::Fail(format!(
            "f32 twin: gradient {g32:?} differs from f64's {g:?} by {gerr:e} (largest entry {gscale:e}; values {o32:?} vs {out:?}); cotangent {ct:?}"
        ))
    }
}

/// Whether the `f64` gradient moves by more than `budget` when the float
/// inputs are rounded to `f32`, or scaled by `1 ± 2⁻²⁰` (8 `f32` units in the
/// last place): then the `f32` twin's own roundings, which are at least that
/// large inside the program, can move its gradient past the tolerance with
/// no bug (`sin(999 t)` of an intermediate `t` ≈ 30 turns a rounding of `t`
/// into a 1% change of the gradient while the value barely moves).
fn f32_sensitive(adj64: crate::AdjointFn, case: &Case, ct: &[f64], g: &[f64], budget: f64) -> bool {
    let moved = |f: &dyn Fn(f64) -> f64| -> bool {
        let mut c = case.clone();
        c.v.iter_mut().for_each(|x| *x = f(*x));
        c.nf.iter_mut().for_each(|x| *x = f(*x));
        let (o, gm) = adj64(&c, ct);
        o.len() != ct.len()
            || gm.len() != g.len()
            || gm
                .iter()
                .zip(g)
                .any(|(a, b)| (a - b).is_nan() || (a - b).abs() > budget)
    };
    let e = 2f64.powi(-20);
    moved(&|x| x as f32 as f64) || moved(&|x| x * (1.0 + e)) || moved(&|x| x * (1.0 - e))
}

fn check_program(p: &Program, seed: u64, points: usize) -> ProgramReport {
    let mut r = ProgramReport::default();
    for k in 0..points {
        let mut rng = Rng::stream(seed, POINT_SALT, (p.index * 1000 + k) as u64);
        let case = Case::draw(p.params, &mut rng);
        r.points += 1;
        let fail = |r: &mut ProgramReport, msg: String| {
            r.failures
                .push(format!("point {k}: {msg}\n    inputs: {case:?}"));
        };
        let out = (p.call)(&case);
        if !out.iter().all(|x| x.is_finite()) {
            fail(
                &mut r,
                format!("generator bug: non-finite primal output {out:?}"),
            );
            continue;
        }
        let ct: Vec<f64> = if p.grad.is_some() {
            vec![1.0]
        } else {
            (0..out.len()).map(|_| rng.uniform(-1.0, 1.0)).collect()
        };
        let (out_a, g) = (p.adjoint)(&case, &ct);
        if !same_all(&out_a, &out) {
            fail(
                &mut r,
                format!("_adjoint value {out_a:?} differs from the primal {out:?}"),
            );
        }
        if let Some(grad) = p.grad {
            let (v, g2) = grad(&case);
            if !same(v, out[0]) {
                fail(
                    &mut r,
                    format!("_grad value {v:e} differs from the primal {:e}", out[0]),
                );
            }
            if !same_all(&g2, &g) {
                fail(
                    &mut r,
                    format!("_grad {g2:?} differs from _adjoint(.., 1.0) {g:?}"),
                );
            }
        }
        if g.len() != case.v.len() {
            fail(
                &mut r,
                format!(
                    "gradient has {} entries for {} active inputs: {g:?}",
                    g.len(),
                    case.v.len()
                ),
            );
            continue;
        }
        if g.iter().any(|x| x.is_nan()) {
            fail(&mut r, format!("NaN in the gradient {g:?}"));
            continue;
        }
        // phi(v) = ct . f(v); None when the output length changes (a branch boundary)
        let phi = |v: &[f64]| -> Option<f64> {
            let mut c = case.clone();
            c.v.copy_from_slice(v);
            let o = (p.call)(&c);
            (o.len() == ct.len()).then(|| dot(&ct, &o))
        };
        let mut all_checked = true;
        for (j, &gj) in g.iter().enumerate() {
            match fd_check(&phi, &case.v, j, gj) {
                Verdict::Pass => r.checked += 1,
                Verdict::Skip => {
                    r.skipped += 1;
                    all_checked = false;
                }
                Verdict::Fail(msg) => {
                    fail(&mut r, format!("{msg}; cotangent {ct:?}"));
                    all_checked = false;
                }
            }
        }
        if let Some(adj32) = p.adjoint32 {
            match check_f32(adj32, p.adjoint, &case, &ct, &out, &g, all_checked) {
                Verdict::Pass => r.f32_checked += 1,
                Verdict::Skip => r.f32_skipped += 1,
                Verdict::Fail(msg) => fail(&mut r, msg),
            }
        }
        // forward mode along a random direction (drawn last, so that the
        // points and cotangents stay those of the reverse-mode checks)
        let dir: Vec<f64> = (0..g.len()).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let mut msgs = Vec::new();
        if let Some(tan) = p.tangent {
            check_tangent(tan, &case, &ct, &out, &g, &dir, &phi, &mut r, &mut msgs);
        }
        if let (Some(hvp), Some(grad)) = (p.hvp, p.grad) {
            check_hvp(hvp, grad, &case, out[0], &g, &dir, &mut r, &mut msgs);
            if let Some(hes) = p.hessian {
                if g.len() <= HESSIAN_MAX {
                    check_hessian(hes, hvp, &case, out[0], &g, &mut r, &mut msgs);
                }
            }
        }
        for m in msgs {
            fail(&mut r, m);
        }
    }
    r
}

/// Largest number of active input scalars for which `_hessian` is checked.
pub const HESSIAN_MAX: usize = 4;

/// `_tangent` along `dir`: the same value as the primal, `ct . (J dir)` equal
/// to `(J^T ct) . dir` (the already checked gradient `g`) up to rounding, and
/// agreeing with central differences of `phi` along `dir`.
#[allow(clippy::too_many_arguments)]
fn check_tangent(
    tan: crate::TangentFn,
    case: &Case,
    ct: &[f64],
    out: &[f64],
    g: &[f64],
    dir: &[f64],
    phi: &dyn Fn(&[f64]) -> Option<f64>,
    r: &mut ProgramReport,
    msgs: &mut Vec<String>,
) {
    let (out_t, dt) = tan(case, dir);
    if !same_all(&out_t, out) {
        msgs.push(format!(
            "_tangent value {out_t:?} differs from the primal {out:?}"
        ));
    }
    if dt.len() != out.len() {
        msgs.push(format!(
            "_tangent has {} entries for {} outputs: {dt:?}",
            dt.len(),
            out.len()
        ));
        return;
    }
    if dt.iter().any(|x| x.is_nan()) {
        msgs.push(format!("NaN in the tangent {dt:?} along {dir:?}"));
        return;
    }
    let jv = dot(ct, &dt);
    let gv = dot(g, dir);
    let scale = abs_dot(ct, &dt).max(abs_dot(g, dir));
    // plus an absolute floor: a derivative that is a cancellation of O(1)
    // intermediates (`2.8e-7` from `acosh`, `sin`, ...) keeps their roundoff
    let floor = TANGENT_ATOL * out.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    if (jv - gv).abs() > TANGENT_RTOL * scale + floor {
        msgs.push(format!(
            "_tangent along {dir:?}: cotangent . tangent {jv:e} differs from gradient . direction {gv:e} by {:e} (tangent {dt:?}, gradient {g:?}, cotangent {ct:?})",
            (jv - gv).abs()
        ));
    }
    let along = |w: &[f64]| phi(&shifted(&case.v, dir, w[0]));
    match fd_check(&along, &[0.0], 0, jv) {
        Verdict::Pass => r.tangent_checked += 1,
        Verdict::Skip => r.tangent_skipped += 1,
        Verdict::Fail(msg) => msgs.push(format!(
            "_tangent along {dir:?} (as d/dv[0], v the step along it): {msg}; cotangent {ct:?}"
        )),
    }
}

/// Relative tolerance of identities that hold exactly but for rounding.
const TANGENT_RTOL: f64 = 1e-9;
/// Their absolute tolerance, relative to `max(1, |f|)`.
const TANGENT_ATOL: f64 = 1e-12;

fn abs_dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum()
}

/// `v + t dir`.
fn shifted(v: &[f64], dir: &[f64], t: f64) -> Vec<f64> {
    v.iter().zip(dir).map(|(x, d)| x + t * d).collect()
}

/// `_hvp` along `dir`: value and gradient bit-identical to `_grad`'s, and
/// every entry of `H dir` agreeing with central differences of the gradient
/// along `dir` (skipped where they are unstable: a kink of the gradient).
#[allow(clippy::too_many_arguments)]
fn check_hvp(
    hvp: crate::HvpFn,
    grad: crate::GradFn,
    case: &Case,
    value: f64,
    g: &[f64],
    dir: &[f64],
    r: &mut ProgramReport,
    msgs: &mut Vec<String>,
) {
    let (y, gh, hv) = hvp(case, dir);
    if !same(y, value) {
        msgs.push(format!(
            "_hvp value {y:e} differs from the primal {value:e}"
        ));
    }
    if !same_all(&gh, g) {
        msgs.push(format!("_hvp gradient {gh:?} differs from _grad {g:?}"));
    }
    if hv.len() != g.len() {
        msgs.push(format!(
            "_hvp: H v has {} entries for {} active inputs: {hv:?}",
            hv.len(),
            g.len()
        ));
        return;
    }
    if hv.iter().any(|x| x.is_nan()) {
        msgs.push(format!("NaN in H v {hv:?} along {dir:?}"));
        return;
    }
    // gradients along `dir`, each computed once for all entries
    let cache: std::cell::RefCell<Vec<(u64, Vec<f64>)>> = std::cell::RefCell::new(Vec::new());
    let grad_at = |t: f64| -> Vec<f64> {
        if let Some((_, gt)) = cache.borrow().iter().find(|(b, _)| *b == t.to_bits()) {
            return gt.clone();
        }
        let mut c = case.clone();
        c.v = shifted(&case.v, dir, t);
        let (_, gt) = grad(&c);
        cache.borrow_mut().push((t.to_bits(), gt.clone()));
        gt
    };
    for (i, &hi) in hv.iter().enumerate() {
        let gi = |w: &[f64]| grad_at(w[0]).get(i).copied();
        match fd_check(&gi, &[0.0], 0, hi) {
            Verdict::Pass => r.hvp_checked += 1,
            Verdict::Skip => r.hvp_skipped += 1,
            Verdict::Fail(msg) => msgs.push(format!(
                "_hvp along {dir:?}: entry {i} of H v against differences of gradient entry {i} (as d/dv[0], v the step along the direction): {msg}; H v {hv:?}"
            )),
        }
    }
}

/// `_hessian`: value and gradient bit-identical to `_grad`'s, the matrix
/// `n x n`, symmetric up to rounding, its columns bit-identical to `_hvp`
/// along the unit vectors.
fn check_hessian(
    hes: crate::HessianFn,
    hvp: crate::HvpFn,
    case: &Case,
    value: f64,
    g: &[f64],
    r: &mut ProgramReport,
    msgs: &mut Vec<String>,
) {
    let n = g.len();
    let (y, gh, h) = hes(case);
    if !same(y, value) {
        msgs.push(format!(
            "_hessian value {y:e} differs from the primal {value:e}"
        ));
    }
    if !same_all(&gh, g) {
        msgs.push(format!("_hessian gradient {gh:?} differs from _grad {g:?}"));
    }
    if h.rows() != n || h.cols() != n {
        msgs.push(format!(
            "_hessian is {}x{} for {n} active inputs",
            h.rows(),
            h.cols()
        ));
        return;
    }
    let hmax = h.as_slice().iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let mut ok = true;
    for i in 0..n {
        for j in 0..i {
            let (a, b) = (h.get(i, j), h.get(j, i));
            let tol = TANGENT_RTOL * a.abs().max(b.abs()) + 1e-12 * hmax;
            if a.is_nan() || b.is_nan() || (a - b).abs() > tol {
                ok = false;
                msgs.push(format!(
                    "_hessian not symmetric: H[{i}][{j}] = {a:e}, H[{j}][{i}] = {b:e}; H = {:?}",
                    h.as_slice()
                ));
            }
        }
    }
    for j in 0..n {
        let mut e = vec![0.0; n];
        e[j] = 1.0;
        let (_, _, col) = hvp(case, &e);
        let hcol: Vec<f64> = (0..n).map(|i| h.get(i, j)).collect();
        if !same_all(&col, &hcol) {
            ok = false;
            msgs.push(format!(
                "_hessian column {j} {hcol:?} differs from _hvp along e{j} {col:?}"
            ));
        }
    }
    if ok {
        r.hessian_checked += 1;
    }
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = e.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".into()
    }
}

/// Checks `programs` (of the batch with seed `seed`).
///
/// # Panics
///
/// When a program runs longer than `cfg.timeout` (a hang: the thread running
/// it cannot be stopped), after printing what was found so far.
pub fn run(seed: u64, programs: &'static [Program], cfg: &Config) -> Report {
    let mut rep = Report::default();
    for p in programs {
        if let Some(only) = &cfg.only {
            if !only.contains(&p.index) {
                continue;
            }
        }
        rep.programs += 1;
        if p.grad.is_none() {
            rep.adjoint_programs += 1;
        }
        if p.tangent.is_some() {
            rep.forward_programs += 1;
        }
        if p.hvp.is_some() {
            rep.hessian_programs += 1;
        }
        let (tx, rx) = mpsc::channel();
        let points = cfg.points;
        let prog = *p;
        std::thread::spawn(move || {
            let res = std::panic::catch_unwind(|| check_program(&prog, seed, points));
            let _ = tx.send(res.map_err(|e| panic_message(&*e)));
        });
        match rx.recv_timeout(cfg.timeout) {
            Ok(Ok(pr)) => {
                rep.points += pr.points;
                rep.checked += pr.checked;
                rep.skipped += pr.skipped;
                rep.f32_checked += pr.f32_checked;
                rep.f32_skipped += pr.f32_skipped;
                rep.tangent_checked += pr.tangent_checked;
                rep.tangent_skipped += pr.tangent_skipped;
                rep.hvp_checked += pr.hvp_checked;
                rep.hvp_skipped += pr.hvp_skipped;
                rep.hessian_checked += pr.hessian_checked;
                if pr.checked == 0 && pr.failures.is_empty() {
                    rep.unchecked_programs += 1;
                }
                for what in pr.failures {
                    rep.failures.push(Failure {
                        index: p.index,
                        name: p.name,
                        source: p.source,
                        what,
                    });
                }
            }
            Ok(Err(msg)) => rep.failures.push(Failure {
                index: p.index,
                name: p.name,
                source: p.source,
                what: format!("panicked: {msg}"),
            }),
            Err(_) => {
                rep.failures.push(Failure {
                    index: p.index,
                    name: p.name,
                    source: p.source,
                    what: format!("did not finish within {:?} (hang?)", cfg.timeout),
                });
                eprintln!("{}", rep.describe(seed));
                panic!("program {} hangs; stopping", p.index);
            }
        }
    }
    rep
}

impl Report {
    /// A summary, then every failure with its program's source and how to replay it.
    pub fn describe(&self, seed: u64) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "fuzzgen seed {seed}: {} programs ({} through _adjoint with a random cotangent), {} points; {} gradient entries checked against finite differences, {} skipped (finite difference unstable: kink, branch boundary or ill-conditioned); forward mode ({} programs): {} tangents checked against the gradient and finite differences, {} against the gradient only (finite difference skipped as a kink); HVPs ({} programs): {} entries checked against differences of the gradient, {} skipped (kink); {} dense Hessians checked (symmetric, columns = HVPs); f32 twins: {} points compared with f64, {} skipped (ill-conditioned in f32); {} programs with no entry checked; {} failures",
            self.programs,
            self.adjoint_programs,
            self.points,
            self.checked,
            self.skipped,
            self.forward_programs,
            self.tangent_checked,
            self.tangent_skipped,
            self.hessian_programs,
            self.hvp_checked,
            self.hvp_skipped,
            self.hessian_checked,
            self.f32_checked,
            self.f32_skipped,
            self.unchecked_programs,
            self.failures.len()
        );
        let mut last = usize::MAX;
        for f in &self.failures {
            if f.index != last {
                let _ = writeln!(
                    s,
                    "\n==== FAIL seed {seed}, program {} (`{}`)\n---- replay: TAPELESS_FUZZ_SEED={seed} TAPELESS_FUZZ_N={} TAPELESS_FUZZ_ONLY={} cargo test -p fuzzgen -- --nocapture\n---- source (also: cargo run -p fuzzgen -- {seed} {}):\n{}",
                    f.index, f.name, f.index + 1, f.index, f.index, f.source
                );
                last = f.index;
            }
            let _ = writeln!(s, "  - {}", f.what);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParamKind;

    // f(a, b) = a^2 b, hand-written: a correct adjoint and a wrong one
    fn call(c: &Case) -> Vec<f64> {
        vec![c.v[0] * c.v[0] * c.v[1]]
    }
    fn adj(c: &Case, ct: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (a, b) = (c.v[0], c.v[1]);
        (call(c), vec![ct[0] * 2.0 * a * b, ct[0] * a * a])
    }
    fn adj_wrong(c: &Case, ct: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (a, b) = (c.v[0], c.v[1]);
        (call(c), vec![ct[0] * 2.0 * a * b * 1.001, ct[0] * a * a])
    }
    fn grd(c: &Case) -> (f64, Vec<f64>) {
        let (v, g) = adj(c, &[1.0]);
        (v[0], g)
    }
    fn grd_wrong(c: &Case) -> (f64, Vec<f64>) {
        let (v, g) = adj_wrong(c, &[1.0]);
        (v[0], g)
    }

    const PARAMS: &[ParamKind] = &[ParamKind::Scalar, ParamKind::Scalar];

    fn prog(adjoint: crate::AdjointFn, grad: crate::GradFn) -> Program {
        Program {
            index: 0,
            name: "t",
            source: "",
            params: PARAMS,
            call,
            adjoint,
            grad: Some(grad),
            adjoint32: None,
            tangent: None,
            hvp: None,
            hessian: None,
        }
    }

    #[test]
    fn correct_gradients_pass() {
        let r = check_program(&prog(adj, grd), 7, 20);
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        assert_eq!(r.checked + r.skipped, 40);
        assert!(r.checked >= 38, "{} checked", r.checked);
    }

    #[test]
    fn a_relative_error_of_1e_minus_3_fails() {
        let r = check_program(&prog(adj_wrong, grd_wrong), 7, 20);
        assert!(r.failures.len() >= 18, "{:?}", r.failures);
        assert!(r.failures[0].contains("d/dv[0]"), "{}", r.failures[0]);
    }

    #[test]
    fn grad_must_equal_adjoint_with_seed_one() {
        let r = check_program(&prog(adj, grd_wrong), 7, 3);
        assert!(
            r.failures
                .iter()
                .any(|f| f.contains("differs from _adjoint")),
            "{:?}",
            r.failures
        );
    }

    #[test]
    fn kinks_and_jumps_are_skipped_not_failed() {
        let abs = |v: &[f64]| Some((v[0] - 0.3).abs());
        // within h of the kink: the two steps disagree, skipped whatever the gradient
        for x in [0.3 + 2e-6, 0.3 - 7e-6, 0.3 + 1e-7] {
            for g in [1.0, -1.0, 0.0] {
                assert_eq!(fd_check(&abs, &[x], 0, g), Verdict::Skip, "{x}");
            }
        }
        // away from it: checked
        assert_eq!(fd_check(&abs, &[0.31], 0, 1.0), Verdict::Pass);
        assert!(matches!(fd_check(&abs, &[0.31], 0, -1.0), Verdict::Fail(_)));
        let step = |v: &[f64]| Some(if v[0] > 1.0 { 2.0 } else { 0.0 } + v[0]);
        assert_eq!(fd_check(&step, &[1.0 - 3e-6], 0, 1.0), Verdict::Skip);
        assert_eq!(fd_check(&step, &[1.0 + 8e-6], 0, 1.0), Verdict::Skip);
        assert_eq!(fd_check(&step, &[1.1], 0, 1.0), Verdict::Pass);
        // the point itself on another branch (an isolated jump)
        let isolated = |v: &[f64]| Some(if v[0] == 0.7 { 5.0 } else { 2.0 * v[0] });
        assert_eq!(fd_check(&isolated, &[0.7], 0, 0.0), Verdict::Skip);
        assert_eq!(fd_check(&isolated, &[0.7], 0, 2.0), Verdict::Skip);
        assert_eq!(fd_check(&isolated, &[0.8], 0, 2.0), Verdict::Pass);
        // flat in floating point at the finest step (a change below one ulp):
        // decided at a larger step
        let flat = |v: &[f64]| Some(((v[0] * 1e4).round() * 1e-4).sin());
        assert_eq!(fd_check(&flat, &[0.4], 0, 0.4f64.cos()), Verdict::Pass);
        assert!(matches!(fd_check(&flat, &[0.4], 0, 5.0), Verdict::Fail(_)));
        // a change of output shape: skipped
        let shape = |v: &[f64]| (v[0] < 0.5).then_some(v[0]);
        assert_eq!(fd_check(&shape, &[0.5 - 1e-6], 0, 1.0), Verdict::Skip);
    }
}
