//! Shared by the AD benchmarks: one numeric trait so that a workload is written
//! once generically and run on `f64`, on `easy-ml`'s taped `Record`s and on
//! `num-dual`'s forward-mode dual numbers; finite differences; checks.
//!
//! Why `easy-ml` is the taped baseline: of the scalar reverse-mode crates on
//! crates.io, `easy-ml` (MPL-2.0) is maintained (2.3.0, released 2026-10; 2.x
//! since 2025, first release 2020), documented, and its `Record` /
//! `WengertList` is the textbook Wengert list (Rufflewind's design, also used
//! by `revad`): each operation pushes (parents, partials) onto a `Vec`, and
//! `derivatives()` walks it back once. `reverse` (0.2.2) has the same design but
//! no release since 2021-08; `echidna` (Adept-style thread-local tape) needs
//! Rust 1.93 and first appeared in 2026-02; `ad_trait` pulls in bevy and nalgebra by
//! default. The tape is reused across iterations (`WengertList::clear`), the
//! most favourable way to use it.

#![allow(dead_code)]

use easy_ml::differentiation::{Record, WengertList};
use num_dual::{DualNum, DualSVec64};
use std::ops::{Add, Div, Mul, Neg, Sub};

/// The numbers a generic workload runs on.
pub trait Real:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Add<f64, Output = Self>
    + Sub<f64, Output = Self>
    + Mul<f64, Output = Self>
    + Div<f64, Output = Self>
{
    /// A constant.
    fn cst(c: f64) -> Self;
    /// The value.
    fn val(self) -> f64;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn tan(self) -> Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn sqrt(self) -> Self;
    fn tanh(self) -> Self;
    fn powi(self, n: i32) -> Self;
}

impl Real for f64 {
    #[inline(always)]
    fn cst(c: f64) -> Self {
        c
    }
    #[inline(always)]
    fn val(self) -> f64 {
        self
    }
    #[inline(always)]
    fn sin(self) -> Self {
        f64::sin(self)
    }
    #[inline(always)]
    fn cos(self) -> Self {
        f64::cos(self)
    }
    #[inline(always)]
    fn tan(self) -> Self {
        f64::tan(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f64::ln(self)
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        f64::ln_1p(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    #[inline(always)]
    fn powi(self, n: i32) -> Self {
        f64::powi(self, n)
    }
}

/// `easy-ml`'s taped number.
pub type Rec<'a> = Record<'a, f64>;

/// A unary operation recorded on `x`'s tape: `easy_ml`'s `Record::unary`
/// returns a record borrowing `x`; rebuild it with the tape's own lifetime.
#[inline(always)]
fn rec_unary<'a>(x: Rec<'a>, f: impl Fn(f64) -> f64, df: impl Fn(f64) -> f64) -> Rec<'a> {
    let r = x.unary(f, df);
    let (number, index) = (r.number, r.index);
    Record::from_existing((number, index), x.history())
}

impl<'a> Real for Rec<'a> {
    #[inline(always)]
    fn cst(c: f64) -> Self {
        Record::constant(c)
    }
    #[inline(always)]
    fn val(self) -> f64 {
        self.number
    }
    #[inline(always)]
    fn sin(self) -> Self {
        easy_ml::numeric::extra::Sin::sin(self)
    }
    #[inline(always)]
    fn cos(self) -> Self {
        easy_ml::numeric::extra::Cos::cos(self)
    }
    #[inline(always)]
    fn tan(self) -> Self {
        rec_unary(self, f64::tan, |x| {
            let c = x.cos();
            1.0 / (c * c)
        })
    }
    #[inline(always)]
    fn exp(self) -> Self {
        easy_ml::numeric::extra::Exp::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        easy_ml::numeric::extra::Ln::ln(self)
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        rec_unary(self, f64::ln_1p, |x| 1.0 / (1.0 + x))
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        easy_ml::numeric::extra::Sqrt::sqrt(self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        rec_unary(self, f64::tanh, |x| {
            let t = x.tanh();
            1.0 - t * t
        })
    }
    #[inline(always)]
    fn powi(self, n: i32) -> Self {
        rec_unary(self, |x| x.powi(n), |x| n as f64 * x.powi(n - 1))
    }
}

/// `num-dual`'s forward-mode number carrying `N` partial derivatives.
pub type Dual<const N: usize> = DualSVec64<N>;

impl<const N: usize> Real for Dual<N> {
    #[inline(always)]
    fn cst(c: f64) -> Self {
        Dual::from_re(c)
    }
    #[inline(always)]
    fn val(self) -> f64 {
        self.re
    }
    #[inline(always)]
    fn sin(self) -> Self {
        DualNum::sin(&self)
    }
    #[inline(always)]
    fn cos(self) -> Self {
        DualNum::cos(&self)
    }
    #[inline(always)]
    fn tan(self) -> Self {
        DualNum::tan(&self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        DualNum::exp(&self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        DualNum::ln(&self)
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        DualNum::ln_1p(&self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        DualNum::sqrt(&self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        DualNum::tanh(&self)
    }
    #[inline(always)]
    fn powi(self, n: i32) -> Self {
        DualNum::powi(&self, n)
    }
}

/// `N` dual variables seeded with the unit directions.
pub fn duals<const N: usize>(x: [f64; N]) -> [Dual<N>; N] {
    std::array::from_fn(|i| Dual::from_re(x[i]).derivative(i))
}

/// The value and the `N` partials of a dual result.
pub fn dual_parts<const N: usize>(y: Dual<N>) -> (f64, [f64; N]) {
    let mut g = [0.0; N];
    for (i, gi) in g.iter_mut().enumerate() {
        *gi = y.eps.0.as_ref().map_or(0.0, |e| e[i]);
    }
    (y.re, g)
}

/// A fresh tape, kept across iterations and cleared before each use.
pub fn tape() -> WengertList<f64> {
    WengertList::new()
}

/// Central-difference step for `x`: cbrt(eps) scaled to `x`.
#[inline]
pub fn fd_step(x: f64) -> f64 {
    6.055e-6 * x.abs().max(1.0)
}

/// Central differences of `f` at `x` (any number of inputs, in place).
pub fn fd_grad(mut f: impl FnMut(&[f64]) -> f64, x: &mut [f64], g: &mut [f64]) {
    for i in 0..x.len() {
        let xi = x[i];
        let h = fd_step(xi);
        x[i] = xi + h;
        let fp = f(x);
        x[i] = xi - h;
        let fm = f(x);
        x[i] = xi;
        g[i] = (fp - fm) / (2.0 * h);
    }
}

/// `|a - b| <= tol (1 + |b|)`, elementwise, with a message.
#[track_caller]
pub fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// Deterministic pseudo-random numbers in (-1, 1) (a small LCG).
pub fn rand_vec(seed: u64, n: usize) -> Vec<f64> {
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
