// Calls to another differentiable function and index writes into a local array.
#[differentiable]
pub fn features(x: f64, y: f64) -> [f64; 3] {
    let mut out = [0.0; 3];
    out[0] = helper(x, 2);
    out[1] = x * y;
    out[2] += out[0] * out[1];
    out
}
