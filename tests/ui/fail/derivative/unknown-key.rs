use tapeless::derivative;

fn cube(x: f64) -> f64 {
    x * x * x
}

#[derivative(for = cube)]
fn cube_rule(x: f64, d_out: f64) -> (f64, f64) {
    (cube(x), 3.0 * x * x * d_out)
}

fn main() {}
