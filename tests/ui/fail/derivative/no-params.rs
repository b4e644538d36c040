use tapeless::derivative;

fn one() -> f64 {
    1.0
}

#[derivative(of = one)]
fn one_rule() -> (f64, f64) {
    (1.0, 0.0)
}

fn main() {}
