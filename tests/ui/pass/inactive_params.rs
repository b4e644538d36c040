// Parameters that carry no derivative: integers flags, `Option`s of integers,
// function pointers; `.clone()` of a differentiated value.
#![deny(warnings)]

use tapeless::differentiable;

#[differentiable]
fn flags(x: f64, n: u32) -> f64 {
    let mut flags = n;
    flags |= 1;
    x * flags as f64
}

#[differentiable]
fn maybe(x: f64, k: Option<i32>) -> f64 {
    match k {
        None => x,
        _ => x * 2.0,
    }
}

#[differentiable]
fn apply(x: f64, f: fn(f64) -> f64) -> f64 {
    f(1.0) * x * x
}

#[differentiable]
fn first(x: Vec<f64>) -> f64 {
    let y = x.clone();
    y[0] * y[0]
}

fn one(_: f64) -> f64 {
    1.0
}

fn main() {
    // d/dx x * (n | 1) = n | 1
    assert_eq!(flags_grad(2.0, 2), (6.0, 3.0));
    assert_eq!(maybe_grad(2.0, Some(1)), (4.0, 2.0));
    // d/dx f(1) x^2 = 2 f(1) x
    assert_eq!(apply_grad(3.0, one), (9.0, 6.0));
    // d/dx0 x0^2 = 2 x0
    assert_eq!(first_grad(vec![3.0, 1.0]), (9.0, vec![6.0, 0.0]));
}
