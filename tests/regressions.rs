//! Regression tests for macro bugs found by the random-program tester
//! (`fuzzgen`). Each test is named after the bug (its minimal reproduction
//! was `wip/fuzz-bugs/NN-name.rs`) and checks the reproduction's functions
//! against hand-derived gradients or finite differences.

// The constructs under test are the point: `a = a * x`, index loops, `&Vec`
// parameters, dereferenced loop variables, unused tuple elements.
#![allow(
    clippy::assign_op_pattern,
    clippy::needless_range_loop,
    clippy::ptr_arg,
    clippy::let_and_return,
    clippy::useless_vec
)]

mod common;

use common::*;
use tapeless::differentiable;

// ---------------------------------------------------------------- 01

#[differentiable]
fn shadow_if(a: f64) -> f64 {
    let a = if a < 1.0 { a * 2.0 } else { a * a };
    a
}

#[differentiable]
fn shadow_if_method(a: f64) -> f64 {
    let a = if a < 1.0 { 1.5 - a.sin() } else { a * a };
    a
}

#[differentiable]
fn shadow_nested_if(a: f64) -> f64 {
    let a = if a < 1.0 {
        if a > 0.0 {
            a
        } else {
            2.0 * a
        }
    } else {
        a * a
    };
    a
}

#[differentiable]
fn shadow_if_in_loop(a: f64, n: usize) -> f64 {
    let mut s = 0.0;
    for i in 0..n {
        let a = if i % 2 == 0 { a * a } else { (a + s).sin() };
        s += a;
    }
    s
}

#[test]
fn fuzz_01_shadowing_let_if_reads_the_shadowed_name() {
    assert_eq!(shadow_if_grad(0.5), (1.0, 2.0));
    assert_eq!(shadow_if_grad(2.0), (4.0, 4.0));
    assert_eq!(shadow_if_method_grad(0.0), (1.5, -1.0));
    assert_eq!(shadow_nested_if_grad(0.5), (0.5, 1.0));
    assert_eq!(shadow_nested_if_grad(-0.5), (-1.0, 2.0));
    assert_eq!(shadow_nested_if_grad(2.0), (4.0, 4.0));
    for &a in &POINTS {
        let (v, d) = shadow_if_in_loop_grad(a, 4);
        assert_eq!(v, shadow_if_in_loop(a, 4));
        assert_close(d, fd(|a| shadow_if_in_loop(a, 4), a), "shadow_if_in_loop");
    }
}

// ---------------------------------------------------------------- 02

#[differentiable]
fn write_computed_index(a: f64, n: usize) -> f64 {
    let mut w = vec![0.0_f64; 3];
    w[n % 3] = a * a;
    w[0] + w[1]
}

#[differentiable]
fn compound_write_computed_index(c: f64, n: usize) -> f64 {
    let mut a = [c, c];
    a[n % 2] *= c;
    a[0]
}

#[differentiable]
fn write_computed_index_in_loop(a: f64) -> f64 {
    let mut w = [0.0_f64; 3];
    for i in 0..2 {
        w[(i + 1) % 3] = a * w[i] + a;
    }
    w[1] + w[2]
}

#[differentiable]
fn write_len_minus_one(xs: &[f64]) -> f64 {
    let mut w = vec![0.0; xs.len()];
    for i in 0..xs.len() {
        w[xs.len() - 1 - i] += xs[i] * (i as f64 + 1.0);
    }
    w[0] * w[w.len() - 1]
}

#[test]
fn fuzz_02_index_write_with_a_computed_index() {
    assert_eq!(write_computed_index_grad(3.0, 0), (9.0, 6.0));
    assert_eq!(write_computed_index_grad(3.0, 2), (0.0, 0.0));
    assert_eq!(compound_write_computed_index_grad(3.0, 0), (9.0, 6.0));
    assert_eq!(compound_write_computed_index_grad(3.0, 1), (3.0, 1.0));
    // w1 = a, w2 = a a + a: value a a + 2a, derivative 2a + 2
    assert_eq!(write_computed_index_in_loop_grad(3.0), (15.0, 8.0));
    let xs = [0.5, -1.0, 2.0];
    let (v, d) = write_len_minus_one_grad(&xs);
    assert_eq!(v, write_len_minus_one(&xs));
    assert_all_close(
        &d,
        &fd_slice(write_len_minus_one, &xs),
        "write_len_minus_one",
    );
}

// ---------------------------------------------------------------- 03

#[differentiable]
fn tuple_unused_constant(a: f64) -> f64 {
    let (u, _) = (a * a, 2.0);
    u
}

#[differentiable]
fn tuple_unused_inactive(a: f64, #[no_grad] q: f64) -> f64 {
    #[allow(unused_variables)]
    let (u, v) = (a.exp(), q.exp());
    u
}

#[differentiable]
fn tuple_mixed(a: f64, n: usize) -> f64 {
    let (u, k, c) = (a.sin(), n + 1, 0.5);
    u * k as f64 + c * a
}

#[test]
fn fuzz_03_tuple_let_with_an_inactive_element() {
    assert_eq!(tuple_unused_constant_grad(3.0), (9.0, 6.0));
    assert_eq!(tuple_unused_inactive_grad(0.0, 1.0), (1.0, 1.0));
    let (v, d) = tuple_mixed_grad(0.3, 2);
    assert_eq!(v, tuple_mixed(0.3, 2));
    assert_close(d, 3.0 * 0.3f64.cos() + 0.5, "tuple_mixed");
}

// ---------------------------------------------------------------- 04

#[differentiable]
fn data_dependent_index(a: f64, xs: &[f64]) -> f64 {
    xs[(a.abs() * 1.7) as usize % xs.len()]
}

#[differentiable]
fn cast_in_integer_code(a: f64) -> f64 {
    let k = (a.abs() * 1.7) as usize % 3;
    a * k as f64
}

#[test]
fn fuzz_04_integer_cast_of_an_active_value_inside_integer_code() {
    assert_eq!(
        data_dependent_index_grad(0.5, &[1.0, 2.0, 3.0]),
        (1.0, (0.0, vec![1.0, 0.0, 0.0]))
    );
    assert_eq!(
        data_dependent_index_grad(-1.0, &[1.0, 2.0, 3.0]),
        (2.0, (0.0, vec![0.0, 1.0, 0.0]))
    );
    assert_eq!(cast_in_integer_code_grad(1.0), (1.0, 1.0));
    assert_eq!(cast_in_integer_code_grad(2.0), (0.0, 0.0));
}

// ---------------------------------------------------------------- 05, 08

#[differentiable]
fn first_times(x: f64, zs: &[f64]) -> f64 {
    x * zs[0]
}

#[differentiable]
fn local_array_to_slice(a: f64) -> f64 {
    let w = [a, 2.0 * a];
    first_times(a, &w)
}

#[differentiable]
fn array_param_to_slice(a: f64, arr: [f64; 2]) -> f64 {
    first_times(a, &arr)
}

#[differentiable]
fn array_ref_param_to_slice(a: f64, arr: &[f64; 2]) -> f64 {
    first_times(a, arr)
}

#[differentiable]
fn vec_ref_param_to_slice(a: f64, vs: &Vec<f64>) -> f64 {
    first_times(a, vs)
}

#[test]
fn fuzz_05_array_passed_to_a_slice_parameter() {
    assert_eq!(local_array_to_slice_grad(3.0), (9.0, 6.0));
    assert_eq!(
        array_param_to_slice_grad(3.0, [2.0, 5.0]),
        (6.0, (2.0, [3.0, 0.0]))
    );
    assert_eq!(
        array_ref_param_to_slice_grad(3.0, &[2.0, 5.0]),
        (6.0, (2.0, [3.0, 0.0]))
    );
}

#[test]
fn fuzz_08_vec_ref_parameter_passed_to_a_slice_parameter() {
    assert_eq!(
        vec_ref_param_to_slice_grad(3.0, &vec![2.0, 5.0]),
        (6.0, (2.0, vec![3.0, 0.0]))
    );
}

// ---------------------------------------------------------------- 06

#[differentiable]
fn return_index_local(a: f64, xs: &[f64], n: usize) -> f64 {
    let k = n % 2;
    if a > 0.0 {
        return xs[k];
    }
    a * a
}

#[differentiable]
fn return_index_computed(a: f64, xs: &[f64], n: usize) -> f64 {
    if a > 0.0 {
        return xs[(n + 1) % xs.len()];
    }
    a * a
}

#[differentiable]
fn return_index_in_loop(xs: &[f64], limit: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += xs[i] * xs[i];
        if s > limit {
            return xs[(i + 1) % xs.len()];
        }
    }
    s
}

#[test]
fn fuzz_06_early_return_of_an_index_read() {
    assert_eq!(
        return_index_local_grad(1.0, &[2.0, 3.0], 1),
        (3.0, (0.0, vec![0.0, 1.0]))
    );
    assert_eq!(
        return_index_local_grad(-1.0, &[2.0, 3.0], 1),
        (1.0, (-2.0, vec![0.0, 0.0]))
    );
    assert_eq!(
        return_index_computed_grad(1.0, &[2.0, 3.0], 0),
        (3.0, (0.0, vec![0.0, 1.0]))
    );
    assert_eq!(
        return_index_in_loop_grad(&[1.0, 2.0, 3.0], 4.0),
        (3.0, (vec![0.0, 0.0, 1.0], 0.0))
    );
    assert_eq!(
        return_index_in_loop_grad(&[1.0, 2.0], 10.0),
        (5.0, (vec![2.0, 4.0], 0.0))
    );
}

// ---------------------------------------------------------------- 07

#[differentiable]
fn method_on_deref(a: f64, xs: &[f64]) -> f64 {
    let mut s = 0.0;
    for e in xs {
        s += (*e).sin() * a;
    }
    s
}

#[differentiable]
fn method_on_deref_iter(a: f64, xs: &[f64]) -> f64 {
    for e in xs.iter() {
        if a > 0.0 {
            return (*e).max(0.5) * a;
        }
    }
    a
}

#[test]
fn fuzz_07_method_on_a_dereferenced_loop_variable() {
    let (v, (da, dx)) = method_on_deref_grad(2.0, &[0.5, 1.0]);
    assert_eq!(v, (0.5f64.sin() + 1.0f64.sin()) * 2.0);
    assert_eq!(da, 0.5f64.sin() + 1.0f64.sin());
    assert_eq!(dx, vec![2.0 * 0.5f64.cos(), 2.0 * 1.0f64.cos()]);
    assert_eq!(
        method_on_deref_iter_grad(2.0, &[1.0, 3.0]),
        (2.0, (1.0, vec![2.0, 0.0]))
    );
}

// ---------------------------------------------------------------- 09

#[differentiable]
fn by_ref_loop_then_write(a: f64) -> f64 {
    let mut s = a;
    let mut w: [f64; 2] = [a, 2.0];
    for e in w.iter() {
        s *= *e * a;
    }
    w[0] = 1.0;
    s + w[0]
}

#[differentiable]
fn by_ref_vec_loop_then_write(a: f64) -> f64 {
    let mut s = a;
    let mut w = vec![a, 2.0];
    for e in &w {
        s *= e * a;
    }
    w[0] = 1.0;
    s + w[0]
}

#[differentiable]
fn by_ref_loop_written_between(a: f64) -> f64 {
    // the reverse sweep must read the values the loop saw, not later ones
    let mut w = [a, a * a];
    let mut s = 0.0;
    for e in w.iter() {
        s += (*e) * (*e);
    }
    w[0] = 100.0;
    w[1] = -3.0;
    s + w[0] * w[1]
}

#[test]
fn fuzz_09_by_reference_loop_variable_saved_as_a_reference() {
    // s = a (a a) (2 a) = 2 a^4, + 1
    assert_eq!(by_ref_loop_then_write_grad(1.0), (3.0, 8.0));
    assert_eq!(by_ref_vec_loop_then_write_grad(1.0), (3.0, 8.0));
    // s = a^2 + a^4 - 300: derivative 2a + 4a^3
    for &a in &POINTS {
        let (v, d) = by_ref_loop_written_between_grad(a);
        assert_eq!(v, by_ref_loop_written_between(a));
        assert_close(d, 2.0 * a + 4.0 * a * a * a, "by_ref_loop_written_between");
    }
}

// ---------------------------------------------------------------- 10

#[differentiable]
fn times(x: f64, y: f64) -> f64 {
    x * y
}

#[differentiable]
fn tuple_constant_into_call(x: f64) -> f64 {
    let (v2, v3) = (0.3, x * 2.0);
    times(v2, v3)
}

#[differentiable]
fn tuple_integer_element_into_call(x: f64, m: usize) -> f64 {
    let (v2, v3) = (0.3 * (m as f64), x * 2.0);
    times(v2, v2) + v3
}

#[test]
fn fuzz_10_tuple_let_inactive_element_passed_to_a_call() {
    assert_eq!(tuple_constant_into_call_grad(1.5), (0.3 * 3.0, 0.6));
    assert_eq!(
        tuple_integer_element_into_call_grad(1.5, 2),
        (0.6 * 0.6 + 3.0, 2.0)
    );
}

// Fuzz bug 11 (seed 2, program 82): `.to_vec()` of an array did not compile:
// the copy's adjoint (a `Vec`) was handed to the array's adjoint (`[f64; N]`).

/// f = w[0] a with w = arr.to_vec(): ∂f/∂a = arr[0], ∂f/∂arr = (a, 0, 0).
#[differentiable]
fn array_to_vec(a: f64, arr: [f64; 3]) -> f64 {
    let w = arr.to_vec();
    w[0] * a
}

/// f = w[1] a with w = [a, 2a].to_vec(): f = 2a², f' = 4a.
#[differentiable]
fn local_array_to_vec(a: f64) -> f64 {
    let arr = [a, 2.0 * a];
    let w = arr.to_vec();
    w[1] * a
}

/// As `array_to_vec`, with the array behind a reference.
#[differentiable]
fn array_ref_to_vec(a: f64, arr: &[f64; 3]) -> f64 {
    let w = arr.to_vec();
    w[0] * a
}

#[test]
fn fuzz_11_to_vec_of_an_array() {
    assert_eq!(
        array_to_vec_grad(2.0, [3.0, 4.0, 5.0]),
        (6.0, (3.0, [2.0, 0.0, 0.0]))
    );
    assert_eq!(local_array_to_vec_grad(1.5), (4.5, 6.0));
    assert_eq!(
        array_ref_to_vec_grad(2.0, &[3.0, 4.0, 5.0]),
        (6.0, (3.0, [2.0, 0.0, 0.0]))
    );
}

// GradBench finding 04: a differentiable method called on an element of a
// slice of models (`comps[j].g(x)`) was rejected with "no derivative rule".

#[derive(tapeless::Differentiable, Clone)]
struct Component {
    alpha: f64,
    mu: Vec<f64>,
}

impl Component {
    /// g = alpha - ½ Σ (x_t - mu_t)²: ∂g/∂alpha = 1, ∂g/∂mu_t = x_t - mu_t.
    #[differentiable(wrt(self))]
    fn log_weighted_density(&self, x: &[f64]) -> f64 {
        let mut s = self.alpha;
        for t in 0..x.len() {
            s -= 0.5 * (x[t] - self.mu[t]) * (x[t] - self.mu[t]);
        }
        s
    }
}

/// f = Σ_j g(comps[j]) squared per component: f = Σ_j g_j², ∂f/∂θ_j = 2 g_j ∂g_j/∂θ_j.
#[differentiable(wrt(comps))]
fn components_total(comps: &[Component], x: &[f64]) -> f64 {
    let mut s = 0.0;
    for j in 0..comps.len() {
        let g = comps[j].log_weighted_density(x);
        s += g * g;
    }
    s
}

#[test]
fn gradbench_04_method_on_an_indexed_element() {
    let comps = vec![
        Component {
            alpha: 0.5,
            mu: vec![1.0, -1.0],
        },
        Component {
            alpha: -0.2,
            mu: vec![0.0, 2.0],
        },
    ];
    let x = [0.5, 1.5];
    let (_, g) = components_total_grad(&comps, &x);
    for (j, c) in comps.iter().enumerate() {
        let gj = c.log_weighted_density(&x);
        assert_eq!(g[j].alpha, 2.0 * gj);
        for t in 0..2 {
            let want = 2.0 * gj * (x[t] - c.mu[t]);
            assert!((g[j].mu[t] - want).abs() < 1e-12, "∂f/∂mu[{j}][{t}]");
        }
    }
}

// Bench finding 01: destructuring the value of an `if` was rejected
// ("bind it to one name first").

/// x, y = (ab, a + b) if a > 0 else (b, a); f = x y.
#[differentiable]
fn tuple_from_if(a: f64, b: f64) -> f64 {
    let (x, y) = if a > 0.0 { (a * b, a + b) } else { (b, a) };
    x * y
}

/// Sorting two values by shadowing them: (a, b) = (min, max); f = a b² (a smaller).
#[differentiable]
fn sorted_pair(a: f64, b: f64) -> f64 {
    let (a, b) = if a > b { (b, a) } else { (a, b) };
    a * b * b
}

#[test]
fn bench_01_tuple_let_of_an_if() {
    // a > 0: f = ab(a + b), ∂f/∂a = 2ab + b², ∂f/∂b = a² + 2ab; at (2, 3): 30, 21, 16.
    assert_eq!(tuple_from_if_grad(2.0, 3.0), (30.0, (21.0, 16.0)));
    // a ≤ 0: f = ba, ∂f/∂a = b, ∂f/∂b = a.
    assert_eq!(tuple_from_if_grad(-2.0, 3.0), (-6.0, (3.0, -2.0)));
    // f = s l² with s = min, l = max: ∂f/∂s = l², ∂f/∂l = 2 s l.
    // (3, 2): s = b = 2, l = a = 3: f = 18, ∂f/∂a = 12, ∂f/∂b = 9.
    assert_eq!(sorted_pair_grad(3.0, 2.0), (18.0, (12.0, 9.0)));
    assert_eq!(sorted_pair_grad(2.0, 3.0), (18.0, (9.0, 12.0)));
}

// GradBench finding 02: a call argument borrowing a local that the loop
// writes later (`pick(a, &sub[..1])` then `sub[0] = ..`) kept the borrow alive
// in the saved copy.

/// a[idx[0]].
#[differentiable]
fn pick(a: &[f64], idx: &[usize]) -> f64 {
    a[idx[0]] * a[idx[0]]
}

/// f = Σ_j a[idx[j]]²: ∂f/∂a_i = 2 a_i · (number of j with idx[j] = i).
#[differentiable]
fn sum_picks(a: &[f64], idx: &[usize]) -> f64 {
    let mut s = 0.0;
    let mut sub = [0usize; 4];
    for j in 0..idx.len() {
        sub[0] = idx[j];
        s += pick(a, &sub[..1]);
    }
    s
}

#[test]
fn gradbench_02_borrowed_argument_saved_across_a_write() {
    let a = [1.0, 2.0, 3.0];
    let (v, g) = sum_picks_grad(&a, &[2, 0, 2]);
    assert_eq!(v, 9.0 + 1.0 + 9.0);
    assert_eq!(g, vec![2.0, 0.0, 12.0]);
}
