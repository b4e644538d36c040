//! `Jacobian`, `Flat` and the helpers generated `_jacobian` code calls
//! (`__private::fwd::{flat_len, basis, zero, write_row, write_col}`).

use tapeless_runtime::__private::{fwd, NoGrad};
use tapeless_runtime::{Flat, Jacobian};

fn flat<T: Flat>(t: &T) -> Vec<f64> {
    let mut out = vec![f64::NAN; fwd::flat_len(t)];
    t.write_flat(&mut out);
    out
}

/// Coordinates are the scalars in element order: nested arrays and `Vec`s
/// row-major, tuples concatenated in order, `NoGrad` none; `f32` widened exactly.
#[test]
fn flattening_is_element_order_with_tuples_concatenated() {
    assert_eq!(flat(&2.5f64), [2.5]);
    assert_eq!(flat(&0.1f32), [f64::from(0.1f32)]);
    assert_eq!(flat(&[[1.0f64, 2.0], [3.0, 4.0]]), [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(
        flat(&vec![vec![1.0f32], vec![], vec![2.0, 3.0]]),
        [1.0, 2.0, 3.0]
    );
    let t = (1.0f64, NoGrad, vec![2.0f32, 3.0], ([4.0f64, 5.0],));
    assert_eq!(fwd::flat_len(&t), 5);
    assert_eq!(flat(&t), [1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(fwd::flat_len(&NoGrad), 0);
    assert_eq!(flat(&(NoGrad,)), Vec::<f64>::new());
}

/// `set_flat(k, v)` writes the coordinate that `write_flat` puts at `k`, for
/// every `k` of a nested tangent.
#[test]
fn set_flat_is_the_inverse_of_write_flat() {
    let zero = (
        0.0f32,
        vec![[0.0f64; 2]; 3],
        NoGrad,
        [vec![0.0f64], vec![0.0, 0.0]],
    );
    let n = fwd::flat_len(&zero);
    assert_eq!(n, 10);
    for k in 0..n {
        let mut t = zero.clone();
        t.set_flat(k, 7.0);
        let mut want = vec![0.0; n];
        want[k] = 7.0;
        assert_eq!(flat(&t), want, "k = {k}");
    }
}

#[test]
#[should_panic(expected = "coordinate 3 of a tangent with 3 coordinates")]
fn set_flat_out_of_range_panics() {
    let mut t = (1.0f64, [2.0f64, 3.0]);
    t.set_flat(3, 1.0);
}

/// `basis(x, k)` is the zero tangent of `x`'s shape with `1` at coordinate `k`;
/// `zero(x)` is the full-shape zero (a `Vec` as long as `x`, not the empty one).
#[test]
fn basis_and_zero_have_the_shape_of_the_value() {
    let x = (2.0f64, vec![1.0f32, 2.0, 3.0]);
    assert_eq!(fwd::zero(&x), (0.0, vec![0.0, 0.0, 0.0]));
    assert_eq!(fwd::basis(&x, 0), (1.0, vec![0.0, 0.0, 0.0]));
    assert_eq!(fwd::basis(&x, 2), (0.0, vec![0.0, 1.0, 0.0]));
    let s: &[f64] = &[4.0, 5.0];
    assert_eq!(fwd::basis(s, 1), vec![0.0, 1.0]);
    assert_eq!(fwd::basis(&[[9.0f64; 2]; 2], 3), [[0.0, 0.0], [0.0, 1.0]]);
}

/// `f(a, b) = (a b, [a + b, sin a])` at `(a, b) = (2, 3)` has the Jacobian
/// `[[b, a], [1, 1], [cos a, 0]]`. Built column by column from pushforwards of
/// the input basis (`write_col`) and row by row from pullbacks of the output
/// basis (`write_row`), both give it.
#[test]
fn jacobian_by_columns_and_by_rows_agree() {
    type In = (f64, f64);
    type Out = (f64, [f64; 2]);
    fn pushforward((a, b): In, (da, db): In) -> (Out, Out) {
        let y = (a * b, [a + b, a.sin()]);
        (y, (da * b + a * db, [da + db, fwd::sin_d_x(a, da)]))
    }
    fn pullback((a, b): In, (g0, [g1, g2]): Out) -> In {
        (g0 * b + g1 + a.cos() * g2, g0 * a + g1)
    }
    let x: In = (2.0, 3.0);
    let want = Jacobian::from_vec(3, 2, vec![3.0, 2.0, 1.0, 1.0, 2f64.cos(), 0.0]);

    let (y, _) = pushforward(x, fwd::zero(&x));
    let (rows, cols) = (fwd::flat_len(&fwd::zero(&y)), fwd::flat_len(&fwd::zero(&x)));
    let mut by_cols = Jacobian::new(rows, cols);
    for k in 0..cols {
        let (_, dy) = pushforward(x, fwd::basis(&x, k));
        fwd::write_col(&mut by_cols, k, &dy);
    }
    let mut by_rows = Jacobian::new(rows, cols);
    for i in 0..rows {
        let dx = pullback(x, fwd::basis(&y, i));
        fwd::write_row(&mut by_rows, i, &dx);
    }
    assert_eq!(by_cols, want);
    assert_eq!(by_rows, want);
}

/// A tangent with no coordinates (the shapeless zero `Vec::new()`) writes zeros;
/// one with the wrong number of coordinates is a bug and panics.
#[test]
fn shapeless_zero_writes_zeros() {
    let mut j = Jacobian::from_vec(2, 2, vec![1.0; 4]);
    fwd::write_row(&mut j, 1, &Vec::<f64>::new());
    fwd::write_col(&mut j, 0, &Vec::<f64>::new());
    assert_eq!(j.as_slice(), [0.0, 1.0, 0.0, 0.0]);
}

#[test]
#[should_panic(expected = "a tangent with 3 coordinates for a Jacobian row of 2")]
fn write_row_checks_the_length() {
    fwd::write_row(&mut Jacobian::new(2, 2), 0, &[1.0f64, 2.0, 3.0]);
}

#[test]
#[should_panic(expected = "column 2 of a Jacobian with 2 columns")]
fn write_col_checks_the_index() {
    fwd::write_col(&mut Jacobian::new(2, 2), 2, &[1.0f64, 2.0]);
}

/// Accessors: `get`, indexing, rows, the row-major slice and vector.
#[test]
fn accessors_are_row_major() {
    let j = Jacobian::from_vec(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!((j.rows(), j.cols()), (2, 3));
    assert_eq!((j.get(0, 2), j[(1, 0)]), (3.0, 4.0));
    assert_eq!(j.row(1), [4.0, 5.0, 6.0]);
    assert_eq!(j.clone().into_vec(), j.as_slice());
    assert_eq!(Jacobian::new(2, 0).as_slice(), [] as [f64; 0]);
}

#[test]
#[should_panic(expected = "entry (0, 3) of a 2x3 Jacobian")]
fn index_checks_the_column() {
    // Row-major storage would silently read (1, 0) without the check.
    let _ = Jacobian::new(2, 3)[(0, 3)];
}

/// One row per line, columns aligned, a precision applying to every entry.
#[test]
fn display_is_a_readable_matrix() {
    let j = Jacobian::from_vec(2, 2, vec![1.0, -0.25, 10.5, 0.0]);
    assert_eq!(j.to_string(), "[1    -0.25]\n[10.5 0    ]");
    assert_eq!(format!("{j:.2}"), "[1.00  -0.25]\n[10.50 0.00 ]");
    assert_eq!(Jacobian::new(0, 3).to_string(), "[0x3 Jacobian]");
}
