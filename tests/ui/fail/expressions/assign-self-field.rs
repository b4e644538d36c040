use tapeless::differentiable;

struct Model {
    w: f64,
}

impl Model {
    #[differentiable(wrt(x))]
    fn step(mut self, x: f64) -> f64 {
        self.w = self.w * x;
        self.w
    }
}

fn main() {}
