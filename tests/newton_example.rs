//! The solvers of `examples/newton.rs` converge to the Rosenbrock minimiser
//! (1, …, 1): Newton on the generated dense Hessian, L-BFGS on the generated
//! gradient, and Newton-CG on generated Hessian-vector products, in 2 and in
//! 100 dimensions.

#[allow(dead_code)]
#[path = "../examples/newton.rs"]
mod newton;

use newton::{run_all, Report, GTOL, MAX_ITER};

fn check(name: &str, n: usize, r: &Report) {
    assert_eq!(r.x.len(), n, "{name}: dimension");
    assert!(r.iters < MAX_ITER, "{name}: no convergence: {r:?}");
    assert!(r.gnorm < GTOL, "{name}: |grad f| = {}", r.gnorm);
    assert!(r.err() < 1e-9, "{name} (n = {n}): max|x - 1| = {}", r.err());
    assert!(r.f < 1e-18, "{name}: f = {}", r.f);
}

#[test]
fn every_solver_converges_to_one() {
    let runs = run_all();
    assert_eq!(runs.len(), 4);
    for (name, n, r) in &runs {
        check(name, *n, r);
    }
    // Which derivatives each method used.
    let [newton, lbfgs2, ncg, lbfgs100] = [&runs[0].2, &runs[1].2, &runs[2].2, &runs[3].2];
    assert!(newton.n_h > 0 && newton.n_g == 0 && newton.n_hv == 0);
    assert!(lbfgs2.n_g > 0 && lbfgs2.n_h == 0 && lbfgs2.n_hv == 0);
    assert!(ncg.n_hv > 0 && ncg.n_h == 0);
    assert!(lbfgs100.n_g > 0 && lbfgs100.n_hv == 0);
    // Newton's quadratic convergence: far fewer steps than L-BFGS in 2-D.
    assert!(newton.iters < lbfgs2.iters, "{newton:?} vs {lbfgs2:?}");
}

#[test]
fn newton_2d_from_a_point_where_the_hessian_is_indefinite() {
    // At (0, 1): f_xx = 2 - 400 (y - x²) = -398 < 0, so the first step needs
    // Levenberg damping.
    let r = newton::newton_2d([0.0, 1.0]);
    check("Newton from (0, 1)", 2, &r);
    assert!(r.damped > 0, "{r:?}");
}
