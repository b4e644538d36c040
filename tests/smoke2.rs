use tapeless::differentiable;

#[differentiable]
fn branchy(x: f64, y: f64) -> f64 {
    let z = if x > 0.0 { x.sqrt() * y } else { -x * y.exp() };
    let mut acc = 0.0;
    let mut i = 0;
    while i < 5 {
        i += 1;
        if i == 2 {
            continue;
        }
        acc += z * (i as f64);
        if acc > 100.0 {
            break;
        }
    }
    match i {
        0 => acc,
        1 | 2 => acc * 2.0,
        _ => acc.sin() + z,
    }
}

#[differentiable]
fn early(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for (i, v) in x.iter().enumerate() {
        if *v < 0.0 {
            return s * v;
        }
        s += v * v * (i as f64 + 1.0);
    }
    s.ln()
}

#[differentiable]
fn helper(a: f64, n: usize) -> f64 {
    a.powi(n as i32) + 1.0
}

#[differentiable]
fn caller(x: f64, y: f64) -> f64 {
    let t = helper(x * y, 3);
    let mut arr = [0.0; 3];
    arr[0] = t;
    arr[1] += x;
    arr[2] = arr[0] * arr[1];
    let v = vec![x; 2];
    arr[2] + v[1] * helper(y, 2)
}

#[differentiable]
fn fact(x: f64, n: u32) -> f64 {
    if n == 0 {
        1.0
    } else {
        x * fact(x, n - 1)
    }
}

fn fd1(f: impl Fn(f64) -> f64, x: f64) -> f64 {
    let h = 1e-6;
    (f(x + h) - f(x - h)) / (2.0 * h)
}

#[test]
fn all() {
    for &(x, y) in &[(0.7, 0.3), (-0.4, 1.2), (2.0, -0.5)] {
        let (v, (dx, dy)) = branchy_grad(x, y);
        assert_eq!(v, branchy(x, y));
        assert!((dx - fd1(|x| branchy(x, y), x)).abs() < 1e-5, "{dx}");
        assert!((dy - fd1(|y| branchy(x, y), y)).abs() < 1e-5, "{dy}");
        let (v, (dx, dy)) = caller_grad(x, y);
        assert_eq!(v, caller(x, y));
        assert!((dx - fd1(|x| caller(x, y), x)).abs() < 1e-5, "{dx}");
        assert!((dy - fd1(|y| caller(x, y), y)).abs() < 1e-5, "{dy}");
        let (_, d) = fact_grad(x, 4);
        assert!((d - 4.0 * x.powi(3)).abs() < 1e-12);
    }
    for x in [vec![0.5, 1.0, 2.0], vec![0.5, -1.0, 2.0]] {
        let (v, g) = early_grad(&x);
        assert_eq!(v, early(&x));
        for i in 0..3 {
            let f = |t: f64| {
                let mut z = x.clone();
                z[i] = t;
                early(&z)
            };
            assert!((g[i] - fd1(f, x[i])).abs() < 1e-5, "{i} {g:?}");
        }
    }
}

#[derive(tapeless::Differentiable, Clone, Debug)]
struct Model {
    w: Vec<f64>,
    b: f64,
    #[no_grad]
    n: usize,
}

impl Model {
    #[differentiable]
    fn score(&self, x: f64) -> f64 {
        let mut s = self.b;
        for i in 0..self.n {
            s += self.w[i] * x.powi(i as i32);
        }
        s
    }

    #[differentiable]
    fn loss(&self, x: f64, y: f64) -> f64 {
        let e = self.score(x) - y;
        e * e
    }
}

#[test]
fn methods() {
    let m = Model {
        w: vec![0.5, -1.0, 2.0],
        b: 0.3,
        n: 3,
    };
    let (v, (g, dx, _dy)) = m.loss_grad(0.7, 1.0);
    assert_eq!(v, m.loss(0.7, 1.0));
    let e = m.score(0.7) - 1.0;
    // dL/db = 2e, dL/dw_i = 2e x^i
    assert!((g.b - 2.0 * e).abs() < 1e-12);
    for i in 0..3 {
        assert!((g.w[i] - 2.0 * e * 0.7f64.powi(i as i32)).abs() < 1e-12);
    }
    let ds = -1.0 + 2.0 * 2.0 * 0.7;
    assert!((dx - 2.0 * e * ds).abs() < 1e-12);
}
