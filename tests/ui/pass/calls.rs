//! Calls of differentiable functions, recursion, custom derivatives, arrays,
//! `Vec`s, and methods of a `#[derive(Differentiable)]` struct.
#![deny(warnings)]

use tapeless::{derivative, differentiable, Differentiable};

#[differentiable]
fn helper(a: f64, n: usize) -> f64 {
    a.powi(n as i32) + 1.0
}

#[differentiable]
fn caller(x: f64, y: f64) -> f64 {
    let t = helper(x * y, 3);
    let mut arr = [0.0; 3];
    arr[0] = t;
    arr[1] += x;
    arr[2] = arr[0] * arr[1];
    let v = vec![x; 2];
    arr[2] + v[1] * helper(y, 2)
}

#[differentiable]
fn fact(x: f64, n: u32) -> f64 {
    if n == 0 {
        1.0
    } else {
        x * fact(x, n - 1)
    }
}

fn cube(x: f64) -> f64 {
    x * x * x
}

#[derivative(of = cube)]
fn cube_rule(x: f64, d_out: f64) -> (f64, f64) {
    (cube(x), 3.0 * x * x * d_out)
}

#[differentiable]
fn uses_cube(x: f64) -> f64 {
    cube(x) * 2.0
}

#[differentiable]
fn array_sum(x: [f64; 3]) -> f64 {
    x[0] * x[1] + x[2]
}

#[derive(Differentiable, Clone, Debug, PartialEq)]
struct Affine {
    w: f64,
    b: f64,
    #[no_grad]
    steps: usize,
}

impl Affine {
    #[differentiable]
    fn apply(&self, x: f64) -> f64 {
        let mut y = x;
        for _ in 0..self.steps {
            y = self.w * y + self.b;
        }
        y
    }

    #[differentiable(wrt(self))]
    fn twice(&self, x: f64) -> f64 {
        self.apply(x) * 2.0
    }
}

fn main() {
    assert_eq!(caller_grad(0.7, 0.3).0, caller(0.7, 0.3));
    assert_eq!(fact_grad(2.0, 3), (fact(2.0, 3), 12.0));
    assert_eq!(uses_cube_grad(2.0), (uses_cube(2.0), 24.0));
    let x = [1.0, 2.0, 3.0];
    assert_eq!(array_sum_grad(x), (array_sum(x), [2.0, 1.0, 1.0]));
    let m = Affine {
        w: 2.0,
        b: 0.5,
        steps: 1,
    };
    assert_eq!(m.apply(3.0), 6.5);
    let (v, (dm, dx)) = m.apply_grad(3.0);
    assert_eq!((v, dm.w, dm.b, dx), (6.5, 3.0, 1.0, 2.0));
    let (v, dm) = m.twice_grad(3.0);
    assert_eq!((v, dm.w, dm.b), (m.twice(3.0), 6.0, 2.0));
}
