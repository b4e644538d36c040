use tapeless::differentiable;

struct Model {
    w: f64,
}

impl Model {
    #[differentiable(wrt(x))]
    fn predict(&mut self, x: f64) -> f64 {
        self.w * x
    }
}

fn main() {}
