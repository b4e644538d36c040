//! Tensor construction, views, broadcasting, element-wise maps, reductions,
//! softmax, indexing and the tangent impls, against naive references.

use tapeless_runtime::tensor::{Tensor, TensorError};
use tapeless_runtime::{Differentiable, Tangent};

/// A small seeded xorshift generator (no `rand` dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [-1, 1).
    fn f(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn tensor(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec((0..n).map(|_| self.f()).collect(), shape)
    }
}

fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
}

#[track_caller]
fn assert_close(a: &Tensor, b: &[f32], tol: f32) {
    let av = a.to_vec();
    assert!(close(&av, b, tol), "\n left: {av:?}\nright: {b:?}");
}

/// All multi-indices of `shape` in row-major order.
fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = shape.iter().product();
    (0..n)
        .map(|mut l| {
            let mut idx = vec![0; shape.len()];
            for (i, &d) in shape.iter().enumerate().rev() {
                idx[i] = l % d;
                l /= d;
            }
            idx
        })
        .collect()
}

/// Reference broadcast: element of `t` at output index `idx`.
fn bget(t: &Tensor, idx: &[usize]) -> f32 {
    let extra = idx.len() - t.rank();
    let i: Vec<usize> = t
        .shape()
        .iter()
        .enumerate()
        .map(|(k, &d)| if d == 1 { 0 } else { idx[k + extra] })
        .collect();
    t.get(&i)
}

/// A binary element-wise function.
type BinFn = fn(f32, f32) -> f32;

fn ref_binary(a: &Tensor, b: &Tensor, out: &[usize], f: impl Fn(f32, f32) -> f32) -> Vec<f32> {
    indices(out)
        .iter()
        .map(|i| f(bget(a, i), bget(b, i)))
        .collect()
}

// ---- construction and layout -------------------------------------------------

#[test]
fn constructors_and_accessors() {
    let t = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(t.rank(), 2);
    assert_eq!(t.numel(), 6);
    assert_eq!(t.get(&[1, 2]), 6.0);
    assert!(t.is_contiguous());
    assert_eq!(Tensor::zeros(&[2, 2]).to_vec(), vec![0.0; 4]);
    assert_eq!(Tensor::ones(&[3]).to_vec(), vec![1.0; 3]);
    assert_eq!(Tensor::full(&[2], 7.5).to_vec(), vec![7.5; 2]);
    let s = Tensor::scalar(3.0);
    assert_eq!((s.rank(), s.numel(), s.item()), (0, 1, 3.0));
    assert_eq!(Tensor::from_slice(&[1.0, 2.0], &[2, 1]).shape(), &[2, 1]);
    assert_eq!(Tensor::zeros(&[0, 3]).to_vec(), Vec::<f32>::new());
    let e = Tensor::try_from_vec(vec![1.0; 5], &[2, 3]).unwrap_err();
    assert!(matches!(e, TensorError::ElementCount { .. }));
    assert!(e.to_string().contains("[2, 3]"), "{e}");
}

#[test]
#[should_panic(expected = "item: shape [2] has 2 elements")]
fn item_of_many_panics() {
    Tensor::zeros(&[2]).item();
}

#[test]
fn debug_shows_shape_and_values() {
    let t = Tensor::from_vec(vec![1.0, 2.0], &[2]);
    assert_eq!(format!("{t:?}"), "Tensor[2] [1.0, 2.0]");
    let big = Tensor::zeros(&[3, 4]);
    let s = format!("{big:?}");
    assert!(
        s.starts_with("Tensor[3, 4] [0.0") && s.contains("12 values"),
        "{s}"
    );
}

#[test]
fn clone_shares_storage_and_partial_eq_compares_values() {
    let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let b = a.clone();
    assert_eq!(a, b);
    // A transposed copy compares by logical values.
    let t = a.t().contiguous();
    assert_eq!(t, Tensor::from_vec(vec![1.0, 3.0, 2.0, 4.0], &[2, 2]));
    assert_ne!(a, a.reshape(&[4]));
}

#[test]
fn views_do_not_copy_and_read_correctly() {
    let a = Tensor::from_vec((0..24).map(|x| x as f32).collect(), &[2, 3, 4]);
    let t = a.transpose(0, 2);
    assert_eq!(t.shape(), &[4, 3, 2]);
    assert!(!t.is_contiguous());
    for idx in indices(t.shape()) {
        assert_eq!(t.get(&idx), a.get(&[idx[2], idx[1], idx[0]]));
    }
    let p = a.permute(&[1, 2, 0]);
    assert_eq!(p.shape(), &[3, 4, 2]);
    for idx in indices(p.shape()) {
        assert_eq!(p.get(&idx), a.get(&[idx[2], idx[0], idx[1]]));
    }
    let n = a.narrow(2, 1, 2);
    assert_eq!(n.shape(), &[2, 3, 2]);
    assert_eq!(n.to_vec()[..4], [1.0, 2.0, 5.0, 6.0]);
    assert_eq!(a.reshape(&[6, 4]).get(&[5, 3]), 23.0);
    // Reshape of a non-contiguous view copies in logical order.
    assert_eq!(t.reshape(&[24]).to_vec(), t.to_vec());
    let u = a.unsqueeze(1);
    assert_eq!(u.shape(), &[2, 1, 3, 4]);
    assert_eq!(u.squeeze(1).shape(), &[2, 3, 4]);
    assert_eq!(a.unsqueeze(3).shape(), &[2, 3, 4, 1]);
    assert_eq!(Tensor::zeros(&[1, 3, 1]).squeeze_all().shape(), &[3]);
    assert_eq!(t.contiguous().to_vec(), t.to_vec());
    assert!(t.contiguous().is_contiguous());
}

#[test]
fn large_transposes_copy_in_tiles() {
    let mut rng = Rng(41);
    for (shape, perm) in [
        (&[70, 45][..], &[1, 0][..]),
        (&[3, 40, 33], &[0, 2, 1]),
        (&[2, 33, 3, 40], &[0, 3, 2, 1]),
    ] {
        let x = rng.tensor(shape);
        let p = x.permute(perm);
        let c = p.contiguous();
        assert!(c.is_contiguous());
        for idx in indices(p.shape()) {
            assert_eq!(c.get(&idx), p.get(&idx));
        }
        // A narrowed transpose: offsets and partial tiles.
        let n = p.narrow(p.rank() - 1, 1, p.shape()[p.rank() - 1] - 1);
        let nc = n.contiguous();
        for idx in indices(n.shape()) {
            assert_eq!(nc.get(&idx), n.get(&idx));
        }
    }
}

#[test]
#[should_panic(expected = "permute: [0, 0] is not a permutation")]
fn permute_rejects_non_permutations() {
    Tensor::zeros(&[2, 2]).permute(&[0, 0]);
}

#[test]
#[should_panic(expected = "reshape: cannot view shape [2, 3]")]
fn reshape_rejects_wrong_counts() {
    Tensor::zeros(&[2, 3]).reshape(&[4]);
}

// ---- broadcasting binary ops ------------------------------------------------

#[test]
fn broadcasting_cases() {
    let mut rng = Rng(7);
    let cases: &[(&[usize], &[usize], &[usize])] = &[
        (&[3, 1], &[1, 4], &[3, 4]),
        (&[2, 3, 4], &[4], &[2, 3, 4]),
        (&[2, 3, 4], &[], &[2, 3, 4]),
        (&[], &[2, 3], &[2, 3]),
        (&[2, 1, 4], &[3, 1], &[2, 3, 4]),
        (&[5], &[5], &[5]),
        (&[1], &[3, 2], &[3, 2]),
    ];
    for &(sa, sb, so) in cases {
        let a = rng.tensor(sa);
        let b = rng.tensor(sb).map_elements(|x| x + 2.0); // keep division away from 0
        let ops: [(&str, BinFn); 6] = [
            ("add", |x, y| x + y),
            ("sub", |x, y| x - y),
            ("mul", |x, y| x * y),
            ("div", |x, y| x / y),
            ("max", f32::max),
            ("min", f32::min),
        ];
        for (name, f) in ops {
            let got = match name {
                "add" => &a + &b,
                "sub" => &a - &b,
                "mul" => &a * &b,
                "div" => &a / &b,
                "max" => a.maximum(&b),
                _ => a.minimum(&b),
            };
            assert_eq!(got.shape(), so, "{name} {sa:?} {sb:?}");
            assert_close(&got, &ref_binary(&a, &b, so, f), 1e-6);
        }
    }
}

#[test]
fn operator_forms_agree() {
    let mut rng = Rng(11);
    let a = rng.tensor(&[3, 4]);
    let b = rng.tensor(&[4]);
    let r = &a * &b;
    assert_eq!(a.clone() * b.clone(), r);
    assert_eq!(&a * b.clone(), r);
    assert_eq!(a.clone() * &b, r);
    assert_eq!(a.try_mul(&b).unwrap(), r);
    // Owned operands with unique buffers are reused; results must not change.
    let a2 = Tensor::from_vec(a.to_vec(), a.shape());
    assert_eq!(a2 * &b, r);
    let b2 = Tensor::from_vec(b.to_vec(), &[1, 4])
        .broadcast_to(&[3, 4])
        .contiguous();
    assert_eq!(&a - b2.clone(), &a - &b);
    // The left operand broadcast, the right one reused: order must be kept.
    let left = Tensor::from_vec(vec![10.0], &[1]);
    let right = Tensor::from_vec(vec![1.0, 2.0], &[2]);
    assert_eq!((left.clone() - right).to_vec(), vec![9.0, 8.0]);
    assert_eq!(
        (&left / Tensor::from_vec(vec![2.0, 5.0], &[2])).to_vec(),
        vec![5.0, 2.0]
    );
    // Scalars on both sides.
    assert_eq!(
        (&a + 1.0).to_vec(),
        a.to_vec().iter().map(|x| x + 1.0).collect::<Vec<_>>()
    );
    assert_eq!(
        (2.0 - &a).to_vec(),
        a.to_vec().iter().map(|x| 2.0 - x).collect::<Vec<_>>()
    );
    assert_eq!((a.clone() * 3.0).to_vec(), (3.0 * &a).to_vec());
    assert_eq!((1.0 / a.clone()).to_vec(), a.recip().to_vec());
    assert_eq!(
        (-&a).to_vec(),
        a.to_vec().iter().map(|x| -x).collect::<Vec<_>>()
    );
    assert_eq!(-a.clone(), a.neg());
    // A shared buffer is never written through.
    let keep = a.to_vec();
    let shared = a.clone();
    let _ = shared + &b;
    assert_eq!(a.to_vec(), keep);
}

#[test]
fn compound_assignment() {
    let mut a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let view = a.clone();
    a += &Tensor::from_vec(vec![10.0, 20.0], &[2]);
    assert_eq!(a.to_vec(), vec![11.0, 22.0, 13.0, 24.0]);
    assert_eq!(view.to_vec(), vec![1.0, 2.0, 3.0, 4.0], "copy-on-write");
    a *= 2.0;
    a -= Tensor::scalar(2.0);
    a /= &Tensor::full(&[2, 2], 2.0);
    assert_eq!(a.to_vec(), vec![10.0, 21.0, 12.0, 23.0]);
}

#[test]
fn views_as_operands() {
    let mut rng = Rng(3);
    let a = rng.tensor(&[4, 5]);
    let b = rng.tensor(&[5, 4]);
    let at = b.t(); // [4, 5] non-contiguous
    let got = &a + &at;
    let want: Vec<f32> = a
        .to_vec()
        .iter()
        .zip(at.contiguous().to_vec())
        .map(|(x, y)| x + y)
        .collect();
    assert_close(&got, &want, 0.0);
    let n = a.narrow(1, 1, 3); // [4, 3]
    let row = rng.tensor(&[3]);
    assert_close(
        &(&n * &row),
        &ref_binary(&n, &row, &[4, 3], |x, y| x * y),
        0.0,
    );
    let bc = row.broadcast_to(&[4, 3]);
    assert_eq!(bc.strides(), &[0, 1]);
    assert_close(
        &(&n - &bc),
        &ref_binary(&n, &row, &[4, 3], |x, y| x - y),
        0.0,
    );
}

#[test]
#[cfg_attr(miri, ignore = "too slow under Miri")]
fn million_element_kernels_go_parallel_and_stay_correct() {
    // Above PAR_THRESHOLD: the memory-bound kernels split over rayon.
    let mut rng = Rng(6);
    let a = rng.tensor(&[1100, 1000]);
    let row = rng.tensor(&[1000]);
    let got = &a - &row;
    let (av, rv) = (a.to_vec(), row.to_vec());
    let want: Vec<f32> = av
        .iter()
        .enumerate()
        .map(|(i, x)| x - rv[i % 1000])
        .collect();
    assert_eq!(got.to_vec(), want);
    let r = a.relu().to_vec();
    assert!(r.iter().zip(&av).all(|(r, x)| *r == x.max(0.0)));
    let s: f64 = av.iter().map(|&x| x as f64).sum();
    assert!((a.sum() as f64 - s).abs() < 1e-2);
    let cols = a.sum_axis(1, false).to_vec();
    for i in (0..1100).step_by(97) {
        let want: f32 = av[i * 1000..(i + 1) * 1000].iter().sum();
        assert!((cols[i] - want).abs() < 1e-3);
    }
    let mut acc = a.clone();
    acc += &a; // copy-on-write, then parallel in place
    assert_eq!(acc.get(&[1099, 999]), 2.0 * a.get(&[1099, 999]));
}

#[test]
#[cfg_attr(miri, ignore = "too slow under Miri")]
fn large_broadcast_goes_parallel_and_stays_correct() {
    let mut rng = Rng(5);
    let a = rng.tensor(&[300, 257]);
    let b = rng.tensor(&[300, 1]);
    let got = &a * &b;
    assert_close(&got, &ref_binary(&a, &b, &[300, 257], |x, y| x * y), 0.0);
    let c = rng.tensor(&[257]);
    assert_close(
        &(&a.t().contiguous().t() + &c),
        &ref_binary(&a, &c, &[300, 257], |x, y| x + y),
        0.0,
    );
}

#[test]
fn shape_mismatch_messages_name_both_shapes() {
    let a = Tensor::zeros(&[2, 3]);
    let b = Tensor::zeros(&[4]);
    let e = a.try_add(&b).unwrap_err();
    assert_eq!(
        e.to_string(),
        "add: shapes [2, 3] and [4] cannot be broadcast"
    );
    assert_eq!(
        e,
        TensorError::ShapeMismatch {
            op: "add",
            lhs: vec![2, 3],
            rhs: vec![4]
        }
    );
    for (e, op) in [
        (a.try_sub(&b), "sub"),
        (a.try_mul(&b), "mul"),
        (a.try_div(&b), "div"),
        (a.try_maximum(&b), "maximum"),
    ] {
        assert_eq!(
            e.unwrap_err().to_string(),
            format!("{op}: shapes [2, 3] and [4] cannot be broadcast")
        );
    }
    let err: &dyn std::error::Error = &e;
    assert!(err.source().is_none());
    let panic =
        std::panic::catch_unwind(|| &Tensor::zeros(&[2, 3]) * &Tensor::zeros(&[4])).unwrap_err();
    let msg = panic.downcast_ref::<String>().unwrap();
    assert_eq!(msg, "mul: shapes [2, 3] and [4] cannot be broadcast");
    let e = Tensor::zeros(&[3]).try_broadcast_to(&[2, 4]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "broadcast_to: shape [3] cannot be broadcast to [2, 4]"
    );
}

#[test]
fn sum_to_shape_unbroadcasts() {
    let mut rng = Rng(9);
    let g = rng.tensor(&[2, 3, 4]);
    let v = g.to_vec();
    let s = g.sum_to_shape(&[4]);
    let want: Vec<f32> = (0..4).map(|k| (0..6).map(|r| v[r * 4 + k]).sum()).collect();
    assert_close(&s, &want, 1e-5);
    let s = g.sum_to_shape(&[3, 1]);
    assert_eq!(s.shape(), &[3, 1]);
    let want: Vec<f32> = (0..3)
        .map(|j| {
            (0..2)
                .flat_map(|i| (0..4).map(move |k| (i, k)))
                .map(|(i, k)| v[i * 12 + j * 4 + k])
                .sum()
        })
        .collect();
    assert_close(&s, &want, 1e-5);
    let s = g.sum_to_shape(&[]);
    assert_eq!(s.shape(), &[] as &[usize]);
    assert!((s.item() - v.iter().sum::<f32>()).abs() < 1e-4);
    let s = g.sum_to_shape(&[2, 1, 4]);
    let want: Vec<f32> = (0..2)
        .flat_map(|i| (0..4).map(move |k| (i, k)))
        .map(|(i, k)| (0..3).map(|j| v[i * 12 + j * 4 + k]).sum())
        .collect();
    assert_close(&s, &want, 1e-5);
    assert_eq!(g.sum_to_shape(&[2, 3, 4]), g);
    // On a transposed view.
    let t = g.transpose(0, 2); // [4, 3, 2]
    assert_close(
        &t.sum_to_shape(&[1, 3, 2]),
        &t.contiguous().sum_to_shape(&[1, 3, 2]).to_vec(),
        1e-6,
    );
    let e = g.try_sum_to_shape(&[5]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "sum_to_shape: shape [5] cannot be broadcast to [2, 3, 4]"
    );
    // Broadcast then sum back: multiplies by the number of copies.
    let b = Tensor::from_vec(vec![1.0, 2.0], &[2, 1]);
    assert_eq!(
        b.broadcast_to(&[3, 2, 5]).sum_to_shape(&[2, 1]).to_vec(),
        vec![15.0, 30.0]
    );
}

// ---- element-wise maps ------------------------------------------------------

#[test]
#[cfg_attr(miri, ignore = "too slow under Miri")]
fn maps_match_scalar_functions() {
    let mut rng = Rng(13);
    // Big enough to take the parallel path as well as a small one.
    for n in [7usize, 70_001] {
        let x = rng.tensor(&[n]).map_elements(|v| v * 3.0);
        let xv = x.to_vec();
        let check = |got: Tensor, f: &dyn Fn(f32) -> f32| {
            let want: Vec<f32> = xv.iter().map(|&v| f(v)).collect();
            let g = got.to_vec();
            for (a, b) in g.iter().zip(&want) {
                assert!(
                    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                    "{a} vs {b}"
                );
            }
        };
        check(x.exp(), &f32::exp);
        check(x.ln(), &f32::ln);
        check(x.sqrt(), &f32::sqrt);
        check(x.powf(3.0), &|v| v.powf(3.0));
        check(x.abs(), &f32::abs);
        check(x.relu(), &|v| v.max(0.0));
        check(x.leaky_relu(0.1), &|v| if v > 0.0 { v } else { 0.1 * v });
        check(x.sigmoid(), &|v| 1.0 / (1.0 + (-v).exp()));
        check(x.tanh(), &f32::tanh);
        check(x.sin(), &f32::sin);
        check(x.cos(), &f32::cos);
        check(x.neg(), &|v| -v);
        check(x.recip(), &|v| 1.0 / v);
        check(x.square(), &|v| v * v);
        check(x.clamp(-1.0, 0.5), &|v| v.clamp(-1.0, 0.5));
        let c = (2.0f32 / std::f32::consts::PI).sqrt();
        check(x.gelu(), &|v| {
            0.5 * v * (1.0 + (c * (v + 0.044715 * v * v * v)).tanh())
        });
    }
}

#[test]
fn gelu_matches_pytorch_tanh_values_and_its_derivative() {
    // torch.nn.functional.gelu(torch.tensor([-3., -1., 0., 0.5, 2.]), approximate='tanh')
    let x = Tensor::from_vec(vec![-3.0, -1.0, 0.0, 0.5, 2.0], &[5]);
    assert_close(
        &x.gelu(),
        &[-0.0036373, -0.158808, 0.0, 0.345714, 1.954598],
        1e-5,
    );
    // Central differences of gelu.
    let h = 1e-2f32;
    let fd = (&(&x + h).gelu() - &(&x - h).gelu()) / (2.0 * h);
    assert_close(&x.gelu_derivative(), &fd.to_vec(), 2e-3);
}

#[test]
fn sigmoid_is_finite_at_extremes() {
    let x = Tensor::from_vec(vec![-1000.0, -100.0, 0.0, 100.0, 1000.0], &[5]);
    assert_eq!(x.sigmoid().to_vec(), vec![0.0, 0.0, 0.5, 1.0, 1.0]);
}

#[test]
fn maps_on_views() {
    let a = Tensor::from_vec((0..6).map(|x| x as f32).collect(), &[2, 3]);
    assert_eq!(
        a.t().square().to_vec(),
        vec![0.0, 9.0, 1.0, 16.0, 4.0, 25.0]
    );
    assert_eq!(a.t().square().shape(), &[3, 2]);
}

// ---- reductions ------------------------------------------------------------

#[test]
#[cfg_attr(miri, ignore = "too slow under Miri")]
fn full_reductions() {
    let mut rng = Rng(17);
    let x = rng.tensor(&[100_003]);
    let v = x.to_vec();
    let s: f64 = v.iter().map(|&a| a as f64).sum();
    assert!((x.sum() as f64 - s).abs() < 1e-3, "{} vs {s}", x.sum());
    assert!((x.mean() as f64 - s / v.len() as f64).abs() < 1e-6);
    assert_eq!(x.max(), v.iter().cloned().fold(f32::MIN, f32::max));
    assert_eq!(x.min(), v.iter().cloned().fold(f32::MAX, f32::min));
    assert_eq!(Tensor::zeros(&[0]).sum(), 0.0);
    assert!(Tensor::from_vec(vec![1.0, f32::NAN, 3.0], &[3])
        .max()
        .is_nan());
    let t = x.narrow(0, 5, 1000).reshape(&[10, 100]).t();
    let tv: f32 = v[5..1005].iter().sum();
    assert!((t.sum() - tv).abs() < 1e-3);
}

fn ref_axis(x: &Tensor, axis: usize, f: impl Fn(&[f32]) -> f32) -> Vec<f32> {
    let mut out_shape = x.shape().to_vec();
    out_shape.remove(axis);
    indices(&out_shape)
        .iter()
        .map(|idx| {
            let lane: Vec<f32> = (0..x.shape()[axis])
                .map(|j| {
                    let mut i = idx.clone();
                    i.insert(axis, j);
                    x.get(&i)
                })
                .collect();
            f(&lane)
        })
        .collect()
}

#[test]
#[cfg_attr(miri, ignore = "too slow under Miri")]
fn axis_reductions_match_reference() {
    let mut rng = Rng(19);
    for shape in [&[5][..], &[3, 4], &[2, 3, 4], &[4, 1, 3, 2], &[70, 600]] {
        let x = rng.tensor(shape);
        let views = [
            x.clone(),
            x.permute(&(0..shape.len()).rev().collect::<Vec<_>>()),
        ];
        for x in &views {
            for axis in 0..x.rank() {
                let sum = ref_axis(x, axis, |l| l.iter().sum());
                let got = x.sum_axis(axis, false);
                let mut kept = x.shape().to_vec();
                kept[axis] = 1;
                assert_eq!(x.sum_axis(axis, true).shape(), &kept[..]);
                assert_close(&got, &sum, 1e-5);
                let n = x.shape()[axis] as f32;
                assert_close(
                    &x.mean_axis(axis, false),
                    &sum.iter().map(|s| s / n).collect::<Vec<_>>(),
                    1e-5,
                );
                let max = ref_axis(x, axis, |l| l.iter().cloned().fold(f32::MIN, f32::max));
                assert_close(&x.max_axis(axis, false), &max, 0.0);
                assert_eq!(x.max_axis(axis, true).shape(), &kept[..]);
                let arg = x.argmax_axis(axis);
                let want: Vec<f32> = ref_axis(x, axis, |l| {
                    let m = l.iter().cloned().fold(f32::MIN, f32::max);
                    l.iter().position(|&v| v == m).unwrap() as f32
                });
                assert_eq!(arg.iter().map(|&i| i as f32).collect::<Vec<_>>(), want);
            }
        }
    }
}

#[test]
fn argmax_takes_the_first_maximum() {
    let x = Tensor::from_vec(vec![1.0, 3.0, 3.0, 2.0, 2.0, 0.0], &[2, 3]);
    assert_eq!(x.argmax_axis(1), vec![1, 0]);
    assert_eq!(x.argmax_axis(0), vec![1, 0, 0]);
    let ties = Tensor::from_vec(vec![2.0, 2.0, 1.0, 2.0], &[2, 2]);
    assert_eq!(ties.argmax_axis(0), vec![0, 0]);
}

#[test]
#[should_panic(expected = "sum_axis: axis 2 is out of range for shape [2, 3]")]
fn axis_out_of_range_names_the_shape() {
    Tensor::zeros(&[2, 3]).sum_axis(2, false);
}

// ---- softmax ----------------------------------------------------------------

#[test]
fn softmax_rows_sum_to_one_and_stay_finite() {
    let mut rng = Rng(23);
    let mut x = rng.tensor(&[4, 10]).map_elements(|v| v * 5.0);
    x = &x + &Tensor::from_vec(vec![0.0, 1000.0, -1000.0, 88.0], &[4, 1]);
    let s = x.softmax(1);
    for r in 0..4 {
        let row: Vec<f32> = (0..10).map(|j| s.get(&[r, j])).collect();
        assert!(row.iter().all(|v| v.is_finite() && *v >= 0.0));
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
    let big = Tensor::from_vec(vec![1000.0, 1000.0, 999.0], &[3]);
    let s = big.softmax(0).to_vec();
    assert!(s.iter().all(|v| v.is_finite()));
    let e = 1.0 / (2.0 + (-1.0f32).exp());
    assert!(close(&s, &[e, e, e * (-1.0f32).exp()], 1e-6));
    let l = big.log_softmax(0).to_vec();
    assert!(l.iter().all(|v| v.is_finite()));
    assert!(close(
        &l,
        &s.iter().map(|v| v.ln()).collect::<Vec<_>>(),
        1e-5
    ));
}

#[test]
#[cfg_attr(miri, ignore = "too slow under Miri")]
fn softmax_along_any_axis_matches_reference() {
    let mut rng = Rng(29);
    for shape in [&[3, 5][..], &[2, 3, 4], &[250, 300]] {
        let x = rng.tensor(shape).map_elements(|v| v * 4.0);
        for axis in 0..x.rank() {
            let s = x.softmax(axis);
            let l = x.log_softmax(axis);
            for idx in indices(x.shape()).iter().step_by(7) {
                let lane: Vec<f32> = (0..x.shape()[axis])
                    .map(|j| {
                        let mut i = idx.clone();
                        i[axis] = j;
                        x.get(&i)
                    })
                    .collect();
                let m = lane.iter().cloned().fold(f32::MIN, f32::max);
                let z: f32 = lane.iter().map(|v| (v - m).exp()).sum();
                let v = x.get(idx);
                assert!((s.get(idx) - (v - m).exp() / z).abs() < 1e-6);
                assert!((l.get(idx) - (v - m - z.ln())).abs() < 1e-5);
            }
        }
        // On a transposed view.
        let t = x.t_or_self();
        assert_close(&t.softmax(0), &t.contiguous().softmax(0).to_vec(), 1e-6);
    }
}

trait TOrSelf {
    fn t_or_self(&self) -> Tensor;
}
impl TOrSelf for Tensor {
    fn t_or_self(&self) -> Tensor {
        if self.rank() == 2 {
            self.t()
        } else {
            self.clone()
        }
    }
}

// ---- indexing -------------------------------------------------------------

#[test]
fn gather_and_scatter_rows() {
    let x = Tensor::from_vec((0..12).map(|v| v as f32).collect(), &[4, 3]);
    let labels = [2, 0, 1, 2];
    assert_eq!(x.gather_rows(&labels).to_vec(), vec![2.0, 3.0, 7.0, 11.0]);
    // On a transposed view: [3, 4] -> t -> [4, 3].
    let xt = Tensor::from_vec((0..12).map(|v| v as f32).collect(), &[3, 4]).t();
    assert_eq!(xt.gather_rows(&labels).to_vec(), vec![8.0, 1.0, 6.0, 11.0]);
    let d = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[4]);
    let s = Tensor::scatter_rows(&labels, &d, 3);
    assert_eq!(s.shape(), &[4, 3]);
    assert_eq!(
        s.to_vec(),
        vec![0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 4.0]
    );
    // Adjointness: <gather(x), d> = <x, scatter(d)>.
    let lhs: f32 = (&x.gather_rows(&labels) * &d).sum();
    let rhs: f32 = (&x * &s).sum();
    assert_eq!(lhs, rhs);
}

#[test]
#[should_panic(expected = "gather_rows: label 3 at row 1 is out of range for shape [2, 3]")]
fn gather_rows_checks_labels() {
    Tensor::zeros(&[2, 3]).gather_rows(&[0, 3]);
}

#[test]
fn select_rows_and_concat() {
    let x = Tensor::from_vec((0..12).map(|v| v as f32).collect(), &[4, 3]);
    let s = x.select_rows(&[3, 1, 3]);
    assert_eq!(s.shape(), &[3, 3]);
    assert_eq!(
        s.to_vec(),
        vec![9.0, 10.0, 11.0, 3.0, 4.0, 5.0, 9.0, 10.0, 11.0]
    );
    assert_eq!(x.t().select_rows(&[2]).to_vec(), vec![2.0, 5.0, 8.0, 11.0]);
    let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let b = Tensor::from_vec(vec![5.0, 6.0], &[2, 1]);
    let c = Tensor::concat(&[&a, &b], 1);
    assert_eq!(c.shape(), &[2, 3]);
    assert_eq!(c.to_vec(), vec![1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
    let r = Tensor::concat(&[&a, &b.t()], 0);
    assert_eq!(r.to_vec(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let e = Tensor::try_concat(&[&a, &b], 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "concat: shapes [2, 2] and [2, 1] differ outside axis 0"
    );
    // narrow + concat round trip.
    let parts = [x.narrow(0, 0, 1), x.narrow(0, 1, 3)];
    assert_eq!(Tensor::concat(&[&parts[0], &parts[1]], 0), x);
}

// ---- tangent impls ---------------------------------------------------------

#[test]
fn shapeless_zero_accumulates() {
    let z = <Tensor as Tangent>::zero();
    assert_eq!(z.shape(), &[0]);
    assert!(z.is_shapeless_zero());
    let g = Tensor::from_vec(vec![1.0, 2.0], &[2]);
    // zero + g = g
    let mut acc = Tensor::zero();
    acc.accumulate(g.clone());
    assert_eq!(acc, g);
    // g + zero = g
    acc.accumulate(Tensor::zero());
    assert_eq!(acc, g);
    // g + g, and the buffer shared with `g` is not written through.
    acc.accumulate(g.clone());
    assert_eq!(acc.to_vec(), vec![2.0, 4.0]);
    assert_eq!(g.to_vec(), vec![1.0, 2.0]);
    // zero + zero stays zero.
    let mut zz = Tensor::zero();
    zz.accumulate(Tensor::zero());
    assert!(zz.is_shapeless_zero());
    assert_eq!(g.zero_tangent(), Tensor::zeros(&[2]));
    let x = Tensor::zeros(&[2, 3]);
    assert_eq!(x.t().zero_tangent().shape(), &[3, 2]);
}

#[test]
fn accumulate_is_in_place_when_unique() {
    let mut acc = Tensor::from_vec(vec![1.0; 4], &[2, 2]);
    let before = acc.as_slice().unwrap().as_ptr();
    acc.accumulate(Tensor::ones(&[2, 2]));
    assert_eq!(
        acc.as_slice().unwrap().as_ptr(),
        before,
        "accumulate allocated"
    );
    assert_eq!(acc.to_vec(), vec![2.0; 4]);
    // A view as the other operand.
    let other = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]).t();
    acc.accumulate(other);
    assert_eq!(acc.to_vec(), vec![3.0, 5.0, 4.0, 6.0]);
}

#[test]
#[should_panic(expected = "accumulate: gradient shapes [2] and [3] differ")]
fn accumulate_rejects_different_shapes() {
    let mut a = Tensor::zeros(&[2]);
    a.accumulate(Tensor::zeros(&[3]));
}

#[test]
fn as_mut_slice_is_copy_on_write() {
    let mut a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let shared = a.clone();
    a.as_mut_slice()[0] = 10.0;
    assert_eq!(a.to_vec(), vec![10.0, 2.0, 3.0, 4.0]);
    assert_eq!(shared.to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
    let p = a.as_slice().unwrap().as_ptr();
    a.as_mut_slice()[1] = 20.0;
    assert_eq!(a.as_slice().unwrap().as_ptr(), p, "unique: no copy");
    let mut t = a.t();
    t.as_mut_slice()[1] = 0.0; // the transposed view becomes its own contiguous copy
    assert_eq!(t.to_vec(), vec![10.0, 0.0, 20.0, 4.0]);
    assert_eq!(a.to_vec(), vec![10.0, 20.0, 3.0, 4.0]);
}

#[test]
fn owned_ops_reuse_buffers() {
    let a = Tensor::from_vec(vec![1.0; 8], &[8]);
    let p = a.as_slice().unwrap().as_ptr();
    let b = a + 1.0;
    assert_eq!(b.as_slice().unwrap().as_ptr(), p);
    let c = b * &Tensor::scalar(2.0);
    assert_eq!(c.as_slice().unwrap().as_ptr(), p);
    assert_eq!(c.to_vec(), vec![4.0; 8]);
    let d = &Tensor::scalar(1.0) - c;
    assert_eq!(d.as_slice().unwrap().as_ptr(), p);
    assert_eq!(d.to_vec(), vec![-3.0; 8]);
}

#[test]
fn random_views_round_trip() {
    let mut rng = Rng(31);
    for _ in 0..50 {
        let rank = 1 + rng.below(4);
        let shape: Vec<usize> = (0..rank).map(|_| 1 + rng.below(4)).collect();
        let x = rng.tensor(&shape);
        let mut perm: Vec<usize> = (0..rank).collect();
        for i in (1..rank).rev() {
            perm.swap(i, rng.below(i + 1));
        }
        let p = x.permute(&perm);
        let axis = rng.below(rank);
        let len = shape[perm[axis]];
        let start = rng.below(len);
        let v = p.narrow(axis, start, len - start);
        let c = v.contiguous();
        for idx in indices(v.shape()) {
            assert_eq!(c.get(&idx), v.get(&idx));
            let mut src = vec![0; rank];
            for (k, &a) in perm.iter().enumerate() {
                src[a] = idx[k] + if k == axis { start } else { 0 };
            }
            assert_eq!(v.get(&idx), x.get(&src));
        }
    }
}

#[test]
#[should_panic(expected = "narrow: 3 elements from 2 are out of bounds for axis 1 of shape [2, 4]")]
fn narrow_checks_bounds() {
    Tensor::zeros(&[2, 4]).narrow(1, 2, 3);
}
