use tapeless::derivative;

fn cube(x: f64) -> f64 {
    x * x * x
}

#[derivative(of = cube)]
struct CubeRule;

fn main() {
    let _ = cube(1.0);
}
