use tapeless::differentiable;

#[differentiable]
struct Params {
    w: f64,
}

fn main() {
    let _ = Params { w: 1.0 }.w;
}
