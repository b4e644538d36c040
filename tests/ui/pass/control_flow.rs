//! `if`, `match` on inactive values, `while`, `loop`, `for` over ranges and
//! slices, `break`/`continue` and early `return`.
#![deny(warnings)]

use tapeless::differentiable;

#[differentiable]
fn branchy(x: f64, y: f64) -> f64 {
    let z = if x > 0.0 { x.sqrt() * y } else { -x * y.exp() };
    let mut acc = 0.0;
    let mut i = 0;
    while i < 5 {
        i += 1;
        if i == 2 {
            continue;
        }
        acc += z * (i as f64);
        if acc > 100.0 {
            break;
        }
    }
    match i {
        0 => acc,
        1 | 2 => acc * 2.0,
        _ => acc.sin() + z,
    }
}

#[differentiable]
fn early(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for (i, v) in x.iter().enumerate() {
        if *v < 0.0 {
            return s * v;
        }
        s += v * v * (i as f64 + 1.0);
    }
    s.ln()
}

#[differentiable]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut s = 0.0;
    for (x, y) in a.iter().zip(b.iter()) {
        s += x * y;
    }
    s
}

#[differentiable]
fn halve(x: f64) -> f64 {
    let mut y = x;
    let mut n = 0;
    loop {
        y = y * 0.5;
        n += 1;
        if n == 3 {
            break;
        }
    }
    y
}

#[differentiable]
fn rnn(w: f64, x: &[f64]) -> f64 {
    let mut h = 0.0;
    for i in 0..x.len() {
        h = (w * h + x[i]).tanh();
    }
    h * h
}

fn main() {
    assert_eq!(branchy_grad(0.7, 0.3).0, branchy(0.7, 0.3));
    let (v, g) = early_grad(&[0.5, 1.0, 2.0]);
    assert_eq!((v, g.len()), (early(&[0.5, 1.0, 2.0]), 3));
    let (v, (ga, gb)) = dot_grad(&[1.0, 2.0], &[3.0, 4.0]);
    assert_eq!(v, dot(&[1.0, 2.0], &[3.0, 4.0]));
    assert_eq!((ga, gb), (vec![3.0, 4.0], vec![1.0, 2.0]));
    assert_eq!(halve_grad(8.0), (halve(8.0), 0.125));
    let x = [0.5, -0.3, 0.8];
    assert_eq!(rnn_grad(0.7, &x).0, rnn(0.7, &x));
}
