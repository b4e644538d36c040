// `self.n as f64` with `n` a `#[no_grad]` integer field of a differentiated struct.
#![deny(warnings)]

use tapeless::{differentiable, Differentiable};

#[derive(Differentiable, Clone, Debug, PartialEq)]
struct Affine {
    w: f64,
    b: f64,
    #[no_grad]
    n: usize,
}

impl Affine {
    #[differentiable]
    fn apply(&self, x: f64) -> f64 {
        self.w * x + self.b * self.n as f64
    }
}

fn main() {
    let m = Affine { w: 2.0, b: 0.5, n: 2 };
    let (v, (dm, dx)) = m.apply_grad(3.0);
    assert_eq!((v, dm.w, dm.b, dx), (m.apply(3.0), 3.0, 2.0, 2.0));
}
