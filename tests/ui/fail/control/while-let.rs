use tapeless::differentiable;

#[differentiable]
fn f(x: f64, steps: &[usize]) -> f64 {
    let mut it = steps.iter();
    let mut y = x;
    while let Some(_) = it.next() {
        y = y * x;
    }
    y
}

fn main() {}
