use tapeless::differentiable;

struct Model {
    w: f64,
}

impl Model {
    fn scale(&self, x: f64) -> f64 {
        self.w * x
    }

    #[differentiable(wrt(x))]
    fn predict(&self, x: f64) -> f64 {
        self.scale(x) + 1.0
    }
}

fn main() {}
