//! Second-order optimisation with derivatives written at compile time: the
//! Rosenbrock function minimised from (-1.2, 1) by Newton's method on the
//! generated Hessian (`_hessian`) and by L-BFGS on the generated gradient
//! (`_grad`); then the extended Rosenbrock function in 100 dimensions by
//! truncated Newton (conjugate gradient on H p = -g with `_hvp` only, H never
//! formed) and by L-BFGS.
//!
//! Every method uses the same Armijo backtracking line search (sufficient
//! decrease c1 = 1e-4, step halved): trial points cost one primal call
//! (`f-evals`), an accepted point one derivative call. Newton adds Levenberg
//! damping H + λI only where H is not positive definite. Each stops at
//! ‖∇f‖ < 1e-10.
//!
//! Run with `cargo run --release --example newton`.

use tapeless::differentiable;

/// Rosenbrock: f(x, y) = (1 - x)² + 100 (y - x²)², minimum 0 at (1, 1).
#[differentiable(hessian)]
fn rosenbrock(x: f64, y: f64) -> f64 {
    let a = 1.0 - x;
    let b = y - x * x;
    a * a + 100.0 * b * b
}

/// The extended Rosenbrock function (Moré, Garbow and Hillstrom, 1981):
/// Σ_i (1 - x_{2i})² + 100 (x_{2i+1} - x_{2i}²)² over the n/2 pairs,
/// minimum 0 at (1, …, 1).
#[differentiable(hessian)]
fn rosenbrock_n(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() / 2 {
        let a = 1.0 - x[2 * i];
        let b = x[2 * i + 1] - x[2 * i] * x[2 * i];
        s += a * a + 100.0 * b * b;
    }
    s
}

/// Stop when ‖∇f‖ falls below this.
pub const GTOL: f64 = 1e-10;
/// Give up after this many iterations.
pub const MAX_ITER: usize = 1000;
/// Armijo's sufficient-decrease constant.
const C1: f64 = 1e-4;

/// Where a solver stopped and what it cost.
#[derive(Debug, Clone)]
pub struct Report {
    /// The final point.
    pub x: Vec<f64>,
    /// f at the final point.
    pub f: f64,
    /// ‖∇f‖ at the final point.
    pub gnorm: f64,
    /// Iterations (steps taken).
    pub iters: usize,
    /// Primal evaluations (line-search trial points).
    pub n_f: usize,
    /// Gradient evaluations (value and gradient).
    pub n_g: usize,
    /// Hessian evaluations (value, gradient and dense Hessian).
    pub n_h: usize,
    /// Hessian-vector products.
    pub n_hv: usize,
    /// Newton steps that needed Levenberg damping.
    pub damped: usize,
}

impl Report {
    fn new(x: Vec<f64>) -> Report {
        Report {
            x,
            f: f64::NAN,
            gnorm: f64::NAN,
            iters: 0,
            n_f: 0,
            n_g: 0,
            n_h: 0,
            n_hv: 0,
            damped: 0,
        }
    }

    /// max_i |x_i - 1|: the distance to the minimiser (1, …, 1).
    pub fn err(&self) -> f64 {
        self.x.iter().fold(0.0, |m, v| f64::max(m, (v - 1.0).abs()))
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// x + t p.
fn axpy(x: &[f64], t: f64, p: &[f64]) -> Vec<f64> {
    x.iter().zip(p).map(|(a, b)| a + t * b).collect()
}

/// Armijo backtracking from t = 1 along the descent direction `p`: the first
/// t = 2^-k with f(x + t p) <= f + c1 t ∇f·p. Returns the new point and its
/// value; each trial counts in `n_f`.
fn backtrack(
    f: &mut impl FnMut(&[f64]) -> f64,
    x: &[f64],
    fx: f64,
    g: &[f64],
    p: &[f64],
    n_f: &mut usize,
) -> (Vec<f64>, f64) {
    let slope = dot(g, p);
    let mut t = 1.0;
    loop {
        let xt = axpy(x, t, p);
        let ft = f(&xt);
        *n_f += 1;
        if ft <= fx + C1 * t * slope || t < 1e-20 {
            return (xt, ft);
        }
        t *= 0.5;
    }
}

/// Newton's method on the 2-D Rosenbrock function with the generated dense
/// Hessian: solve (H + λI) p = -g by Cramer's rule, λ = 0 unless H is not
/// positive definite (Levenberg damping), then Armijo backtracking.
pub fn newton_2d(x0: [f64; 2]) -> Report {
    let mut r = Report::new(x0.to_vec());
    let mut f = |p: &[f64]| rosenbrock(p[0], p[1]);
    loop {
        let (x, y) = (r.x[0], r.x[1]);
        let (fx, (gx, gy), h) = rosenbrock_hessian(x, y);
        r.n_h += 1;
        let g = [gx, gy];
        r.f = fx;
        r.gnorm = norm(&g);
        if r.gnorm < GTOL || r.iters == MAX_ITER {
            return r;
        }
        let (a, b, d) = (h.get(0, 0), h.get(0, 1), h.get(1, 1));
        // Smallest λ ≥ 0 (doubling from a small multiple of the diagonal)
        // that makes H + λI positive definite.
        let mut lam = 0.0;
        while !(a + lam > 0.0 && (a + lam) * (d + lam) - b * b > 0.0) {
            lam = f64::max(2.0 * lam, 1e-3 * (a.abs() + d.abs()));
        }
        if lam > 0.0 {
            r.damped += 1;
        }
        let (a, d) = (a + lam, d + lam);
        let det = a * d - b * b;
        let p = [-(d * gx - b * gy) / det, -(a * gy - b * gx) / det];
        let (xn, _) = backtrack(&mut f, &r.x, fx, &g, &p, &mut r.n_f);
        r.x = xn;
        r.iters += 1;
    }
}

/// L-BFGS with memory `m`: the two-loop recursion over the last `m` pairs
/// (s, y), initial scaling γ = sᵀy / yᵀy, Armijo backtracking; a pair is kept
/// only if its curvature sᵀy is positive (backtracking alone does not
/// guarantee the Wolfe curvature condition). `fg` returns (f, ∇f).
pub fn lbfgs(
    x0: &[f64],
    m: usize,
    mut f: impl FnMut(&[f64]) -> f64,
    mut fg: impl FnMut(&[f64]) -> (f64, Vec<f64>),
) -> Report {
    let mut r = Report::new(x0.to_vec());
    let (mut fx, mut g) = fg(x0);
    r.n_g += 1;
    let mut hist: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = Default::default();
    loop {
        r.f = fx;
        r.gnorm = norm(&g);
        if r.gnorm < GTOL || r.iters == MAX_ITER {
            return r;
        }
        // Two-loop recursion: q = -H_k g.
        let mut q: Vec<f64> = g.iter().map(|v| -v).collect();
        let mut alphas = Vec::with_capacity(hist.len());
        for (s, y, rho) in hist.iter().rev() {
            let a = rho * dot(s, &q);
            q = axpy(&q, -a, y);
            alphas.push(a);
        }
        let gamma = match hist.back() {
            Some((s, y, _)) => dot(s, y) / dot(y, y),
            // First step: length at most 1 along -g.
            None => 1.0 / r.gnorm.max(1.0),
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for ((s, y, rho), a) in hist.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &q);
            q = axpy(&q, a - b, s);
        }
        let (xn, _) = backtrack(&mut f, &r.x, fx, &g, &q, &mut r.n_f);
        let (fn_, gn) = fg(&xn);
        r.n_g += 1;
        let s: Vec<f64> = xn.iter().zip(&r.x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * norm(&s) * norm(&y) {
            if hist.len() == m {
                hist.pop_front();
            }
            hist.push_back((s, y, 1.0 / sy));
        }
        (r.x, fx, g) = (xn, fn_, gn);
        r.iters += 1;
    }
}

/// Truncated Newton (Newton-CG): conjugate gradient on H p = -g using only
/// Hessian-vector products, stopped at the relative residual
/// η = min(0.01, √‖g‖) (superlinear convergence; with the textbook cap 0.5
/// instead of 0.01, CG stops after one step too often here and Newton-CG
/// needs about 65 iterations instead of 23) or at negative curvature; then
/// Armijo backtracking. `fg` returns (f, ∇f), `hvp(x, v)` returns H v.
pub fn newton_cg(
    x0: &[f64],
    mut f: impl FnMut(&[f64]) -> f64,
    mut fg: impl FnMut(&[f64]) -> (f64, Vec<f64>),
    mut hvp: impl FnMut(&[f64], Vec<f64>) -> Vec<f64>,
) -> Report {
    let n = x0.len();
    let mut r = Report::new(x0.to_vec());
    loop {
        let (fx, g) = fg(&r.x);
        r.n_g += 1;
        r.f = fx;
        r.gnorm = norm(&g);
        if r.gnorm < GTOL || r.iters == MAX_ITER {
            return r;
        }
        let tol = r.gnorm.sqrt().min(0.01) * r.gnorm;
        let mut p = vec![0.0; n];
        let mut res: Vec<f64> = g.iter().map(|v| -v).collect(); // -g - H p
        let mut d = res.clone();
        let mut rr = dot(&res, &res);
        for j in 0..2 * n {
            let hd = hvp(&r.x, d.clone());
            r.n_hv += 1;
            let curv = dot(&d, &hd);
            if curv <= 1e-12 * dot(&d, &d) {
                if j == 0 {
                    p = res.clone(); // steepest descent
                }
                break;
            }
            let alpha = rr / curv;
            p = axpy(&p, alpha, &d);
            res = axpy(&res, -alpha, &hd);
            let rr_new = dot(&res, &res);
            if rr_new.sqrt() <= tol {
                break;
            }
            d = axpy(&res, rr_new / rr, &d);
            rr = rr_new;
        }
        let (xn, _) = backtrack(&mut f, &r.x, fx, &g, &p, &mut r.n_f);
        r.x = xn;
        r.iters += 1;
    }
}

/// The four runs the example prints: (method, dimension, report).
pub fn run_all() -> Vec<(&'static str, usize, Report)> {
    let x0 = [-1.2, 1.0];
    let f2 = |p: &[f64]| rosenbrock(p[0], p[1]);
    let fg2 = |p: &[f64]| {
        let (v, (a, b)) = rosenbrock_grad(p[0], p[1]);
        (v, vec![a, b])
    };
    let n = 100;
    let xn0: Vec<f64> = (0..n)
        .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
        .collect();
    vec![
        ("Newton, dense H", 2, newton_2d(x0)),
        ("L-BFGS, m = 7", 2, lbfgs(&x0, 7, f2, fg2)),
        (
            "Newton-CG, H v",
            n,
            newton_cg(&xn0, rosenbrock_n, rosenbrock_n_grad, |x, v| {
                rosenbrock_n_hvp(x, v).2
            }),
        ),
        (
            "L-BFGS, m = 7",
            n,
            lbfgs(&xn0, 7, rosenbrock_n, rosenbrock_n_grad),
        ),
    ]
}

fn main() {
    let t = std::time::Instant::now();
    let runs = run_all();
    let el = t.elapsed();
    println!("Rosenbrock from (-1.2, 1, ...), Armijo backtracking, stop at |grad f| < {GTOL:e}");
    println!(
        "{:<16} {:>4} {:>6} {:>8} {:>6} {:>6} {:>6} {:>9} {:>9}",
        "method", "n", "iters", "f-evals", "grads", "hess", "H v", "|grad f|", "max|x-1|"
    );
    for (name, n, r) in &runs {
        println!(
            "{:<16} {:>4} {:>6} {:>8} {:>6} {:>6} {:>6} {:>9.1e} {:>9.1e}",
            name,
            n,
            r.iters,
            r.n_f,
            r.n_g,
            r.n_h,
            r.n_hv,
            r.gnorm,
            r.err()
        );
    }
    let r = &runs[0].2;
    println!(
        "Newton (2-D) ends at ({:.15}, {:.15}), f = {:.1e}; Levenberg damping on {} of {} steps",
        r.x[0], r.x[1], r.f, r.damped, r.iters
    );
    println!("all four runs: {:.1} ms", el.as_secs_f64() * 1e3);
}
