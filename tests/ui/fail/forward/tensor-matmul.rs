// Forward mode covers f32/f64 code: tensor operations have no forward rules yet.
use tapeless::{differentiable, tensor::Tensor};

#[differentiable(forward)]
fn layer(x: &Tensor, w: &Tensor) -> Tensor {
    x.matmul(w)
}

fn main() {}
