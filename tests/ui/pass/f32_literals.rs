// Float literals next to f32 values take the type the primal code gives them.
#![deny(warnings)]

use tapeless::differentiable;

#[differentiable]
fn plus_one(y: f32) -> f32 {
    1.0 + y * y
}

#[differentiable]
fn twice(y: f32) -> f32 {
    y * 2.0
}

fn main() {
    assert_eq!(plus_one_grad(3.0), (10.0, 6.0));
    assert_eq!(twice_grad(3.0), (6.0, 2.0));
}
