use tapeless::differentiable;

#[differentiable]
fn square(x: f64) {
    println!("{}", x * x);
}

fn main() {}
