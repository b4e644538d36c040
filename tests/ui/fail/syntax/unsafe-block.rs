use tapeless::differentiable;

#[differentiable]
fn first(x: &[f64]) -> f64 {
    let v = unsafe { *x.get_unchecked(0) };
    v * v
}

fn main() {}
