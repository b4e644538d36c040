// A method both floats and tensors have: the runtime's forward rules are for
// f32/f64 only, and say so.
use tapeless::{differentiable, tensor::Tensor};

#[differentiable(forward)]
fn act(x: &Tensor) -> Tensor {
    x.exp()
}

fn main() {}
