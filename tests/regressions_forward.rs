//! Forward-mode and Hessian bugs found by the random-program check
//! (fuzzgen), one module each, with the program that found it minimised.
//! Every expected value is worked out by hand in the module's comment.

#![allow(unused, clippy::all)]

mod fwd_01_hessian_bare_literal_in_tuple_array_return {
    use tapeless::differentiable;

    // Bug (found by fuzzgen forward checks, seed 1, programs 25/29): with
    // `#[differentiable(hessian)]`, a bare float literal whose tangent is a zero
    // -- an element of a tuple, array or `vec!` literal next to active values, or
    // a `return 1.5;` in a function whose result is active -- does not compile.
    // `forward` alone compiles. The pushforward writes `fwd::zero(&1.5)` for the
    // literal's tangent, and the reverse mode run over the pushforward (what
    // `hessian` does) drops the `&` of a reference to a literal call argument:
    // plain reverse mode has the same bug, see `rv1` (`ext(&1.5)` -> `ext(1.5)`).
    // A negative literal `(-1.5)` and a literal in a value `if` compile.
    // Expected: compiles; r1_hvp(2.0, 1.0) == (1.5, 0.0, 0.0), r3_hvp(0.5, 1.0) == (0.25, 1.0, 2.0)
    // Actual:
    //   error[E0308]: mismatched types  (at the literal)
    //     expected `&_`, found floating-point number
    //     note: function defined here: runtime/src/forward.rs `pub fn zero<X>(x: &X)`
    //   rv1: expected `&f64`, found floating-point number

    // (gen::HESSIAN_KNOWN_BUGS, "fwd-01").

    #[differentiable(forward, hessian)]
    fn r1(a: f64) -> f64 {
        if a > 1.0 {
            return 1.5;
        }
        a * a
    }

    #[differentiable(forward, hessian)]
    fn r2(a: f64) -> f64 {
        let (v4, v5): (f64, f64) = (1.5, a * a);
        v4 * v5
    }

    #[differentiable(forward, hessian)]
    fn r3(a: f64) -> f64 {
        let w = [1.5, a];
        w[1] * w[1]
    }

    #[differentiable(forward, hessian)]
    fn r4(a: f64) -> f64 {
        let w = vec![1.5, a];
        w[0] * w[1]
    }

    // the root cause, in plain reverse mode
    fn ext(x: &f64) -> f64 {
        *x * 0.0
    }

    #[differentiable]
    fn rv1(a: f64) -> f64 {
        let z = ext(&1.5);
        a * z + a
    }

    #[test]
    fn regression() {
        assert_eq!(r1_hvp(2.0, 1.0), (1.5, 0.0, 0.0));
        assert_eq!(r3_hvp(0.5, 1.0), (0.25, 1.0, 2.0));
        assert_eq!(rv1_grad(2.0), (2.0, 1.0));
    }
}

mod fwd_02_hessian_tuple_let_unused_inactive_element {
    use tapeless::differentiable;

    // Bug (found by fuzzgen forward checks, seed 1, program 25; seed 3, program
    // 201): with `#[differentiable(hessian)]`, a tuple `let` one of whose bindings
    // is inactive (a constant expression, or computed from `#[no_grad]` or integer
    // values) and never read -- or read only by a binding that is itself never
    // read, `d1` -- does not compile: `cannot satisfy _: Tangent` in
    // `tapeless::__private::zero` -- the reverse pass over the pushforward makes a
    // zero of the unused element's tangent whose type nothing fixes (compare
    // wip/fuzz-bugs/03, the same shape in plain reverse mode, fixed there).
    // `forward` alone compiles; reading the binding (`v4 * v5`) compiles.
    // (A bare literal element hits 01 instead.)
    // Expected: compiles; t2_hvp(1.5, 0.0, 1.0) == (2.25, 3.0, 2.0)
    // Actual:
    //   error[E0283]: type annotations needed  (at #[differentiable(forward, hessian)])
    //     cannot satisfy `_: Tangent`
    //     note: required by a bound in `tapeless::__private::zero`

    // (gen::HESSIAN_KNOWN_BUGS, "fwd-02"; the generator does not track activity).

    #[differentiable(forward, hessian)]
    fn t1(a: f64) -> f64 {
        let (v4, v5): (f64, f64) = ((-1.064) / (-1.399), a * a);
        v5
    }

    #[differentiable(forward, hessian)]
    fn t2(a: f64, #[no_grad] q: f64) -> f64 {
        let (v4, v5) = (q * 2.0, a * a);
        v5
    }

    #[differentiable(forward, hessian)]
    fn t3(a: f64) -> f64 {
        let (v4, v5) = (f64::min(0.13, 0.5), a * a);
        v5
    }

    #[differentiable(forward, hessian)]
    fn d1(n: usize, a: f64) -> f64 {
        let (v7, v8) = (a * a, (n as f64) * 2.0);
        let v10 = v8 * 3.0;
        v7
    }

    #[test]
    fn regression() {
        assert_eq!(t2_hvp(1.5, 0.0, 1.0), (2.25, 3.0, 2.0));
        assert_eq!(d1_hvp(1, 1.5, 1.0), (2.25, 3.0, 2.0));
    }
}

mod fwd_03_f32_forward_bare_literal_return {
    use tapeless::differentiable;

    // Bug (found by fuzzgen forward checks, seed 1, program 29's f32 twin): in
    // an `f32` function with `#[differentiable(forward)]`, a bare unsuffixed
    // literal whose tangent is a zero (`return 1.054;`, `(1.5, a)`) does not
    // compile: the pushforward's `fwd::zero(&1.054)` types the literal on its
    // own, and an unsuffixed float literal behind `&` defaults to `f64`.
    // (f64 code compiles; with `hessian` it hits 01 as well.)
    // Expected: compiles; r_tangent(2.0f32, 1.0) == (1.054, 0.0)
    // Actual:
    //   error[E0271]: type mismatch resolving `<f64 as Differentiable>::Tangent == f32`
    //     (at #[differentiable(forward)])

    // every program with a bare literal there) are written without `forward`.

    #[differentiable(forward)]
    fn r(a: f32) -> f32 {
        if a > 1.0 {
            return 1.054;
        }
        a * a
    }

    #[differentiable(forward)]
    fn r2(a: f32) -> f32 {
        let t = (1.5, a);
        t.0 * t.1
    }

    #[test]
    fn regression() {
        assert_eq!(r_tangent(2.0f32, 1.0), (1.054, 0.0));
    }
}

mod fwd_04_hessian_let_mut_from_call_then_assigned {
    use tapeless::differentiable;

    // Bug (found by fuzzgen forward checks, seed 1, program 30): with
    // `#[differentiable(hessian)]`, `let mut s = helper(..); s += ..;` (a mutable
    // binding initialised by a call of another differentiable function, then
    // assigned) does not compile: E0384 "cannot assign twice to immutable
    // variable `s`". `forward` alone compiles. The pushforward binds the call as
    // a tuple, `let (mut s, mut __tan_s) = h_pushforward(..)`, and the reverse
    // mode drops `mut` inside tuple patterns: plain reverse mode has the same bug,
    // see `rv` (`let (mut s, t) = (a * a, a); s += t;`).
    // Expected: compiles; mh_hvp(2.0, 1.0) == (6.0, 5.0, 2.0); rv_grad(2.0) == (6.0, 5.0)
    // Actual:
    //   error[E0384]: cannot assign twice to immutable variable `s3`
    //     (at #[differentiable(forward, hessian)]; first assignment at `let mut s3`)

    // with `forward` only (gen::HESSIAN_KNOWN_BUGS, "fwd-04").

    #[differentiable(forward, hessian)]
    fn h(x: f64, y: f64) -> f64 {
        x * y
    }

    #[differentiable(forward, hessian)]
    fn mh(a: f64) -> f64 {
        let mut s3 = h(a, a);
        s3 += a;
        s3
    }

    // the root cause, in plain reverse mode
    #[differentiable]
    fn rv(a: f64) -> f64 {
        let (mut s, t) = (a * a, a);
        s += t;
        s
    }

    #[test]
    fn regression() {
        assert_eq!(mh_hvp(2.0, 1.0), (6.0, 5.0, 2.0));
        assert_eq!(rv_grad(2.0), (6.0, 5.0));
    }
}

mod fwd_05_hessian_bare_literal_call_argument {
    use tapeless::differentiable;

    // Bug (found by fuzzgen forward checks, seed 1, program 46): with
    // `#[differentiable(hessian)]`, a bare float literal as an argument of a call
    // of another differentiable function (`h(1.7, a)`) does not compile: the
    // pushforward passes `fwd::zero_arg(&1.7)` as its tangent, and the reverse
    // mode over the pushforward drops the `&` (same root cause as 01).
    // `forward` alone compiles.
    // Expected: compiles; c_hvp(2.0, 1.0) == (6.8, 3.4, 0.0)
    // Actual:
    //   error[E0308]: mismatched types  (at the literal `1.7`)
    //     expected `&_`, found floating-point number
    //     note: function defined here: runtime/src/fwd_args.rs `pub fn zero_arg<X, T>(x: &X)`
    // In `f32` code with `forward` alone the literal defaults to `f64`:
    //   error[E0277]: the trait bound `f64: IntoArg<f32>` is not satisfied (compare 03)

    #[differentiable(forward, hessian)]
    fn h(x: f64, y: f64) -> f64 {
        x * y
    }

    #[differentiable(forward, hessian)]
    fn c(a: f64) -> f64 {
        h(1.7, a) * 2.0
    }

    #[test]
    fn regression() {
        assert_eq!(c_hvp(2.0, 1.0), (6.8, 3.4, 0.0));
    }
}

mod fwd_06_forward_inactive_local_vec_returned {
    use tapeless::differentiable;

    // Bug (found by fuzzgen forward checks, seed 1, program 57; seed 3, program
    // 252): with `#[differentiable(forward)]`, a `Vec` output that holds no
    // active value (`let w = vec![0.0; n + 1]; w`, or `vec![..]` of inactive
    // values, `v2`) does not compile: E0382 "borrow of
    // moved value" -- the pushforward returns the value and then makes its zero
    // tangent from it (`(w, fwd::zero(&w))`, the move before the borrow).
    // Expected: compiles; v_tangent(2.0, 1, 1.0) == (vec![0.0, 0.0], vec![0.0, 0.0])
    // Actual:
    //   error[E0382]: borrow of moved value  (at #[differentiable(forward)])
    //     move occurs because value has type `Vec<f64>` ... value moved here: `let mut w = ...`

    // (gen::FORWARD_KNOWN_BUGS, "fwd-06"; the generator does not track activity).

    #[differentiable(forward)]
    fn v(a: f64, n: usize) -> Vec<f64> {
        let mut w = vec![0.0f64; n + 1];
        let t = a * a;
        w
    }

    #[differentiable(forward)]
    fn v2(a: f64, #[no_grad] q: f64) -> Vec<f64> {
        let t = a * a;
        vec![q, q * 2.0]
    }

    #[test]
    fn regression() {
        assert_eq!(v_tangent(2.0, 1, 1.0), (vec![0.0, 0.0], vec![0.0, 0.0]));
    }
}

mod fwd_07_hvp_wrong_through_call_with_nonlinear_argument {
    use tapeless::differentiable;

    // Bug (found by fuzzgen HVP checks, seed 1, programs 26, 88, 90, 110, 128,
    // 136, ...; tangents and gradients are right): `_hvp` (and `_hessian`) is
    // WRONG (silently) when the function calls another differentiable function
    // with an argument that is a nonlinear function of the inputs. `c3(a) =
    // h3(a, a * a) = 2 a^2` has H = 4, `_hvp` returns 0. The callee's hidden
    // `_pushforward` gets `#[differentiable(wrt(<primal params>))]`, so its
    // pullback has no cotangent for the *tangent* arguments; in the caller's
    // reverse pass over its pushforward the path a -> tangent of `a * a` (= 2 a
    // da) -> callee tangent input is dropped. (With identity arguments, `h2(a, a)`,
    // the tangent arguments are constants and the result is right.) Presumably
    // `hessian` needs the callee's `_pushforward` differentiated with respect to
    // its tangent parameters as well.
    // Expected: c3_hvp(0.3, 1.0).2 == 4.0; c2_hvp(x, 1.0).2 == d/dx c2_grad(x).1
    // Actual:   c3_hvp(0.3, 1.0).2 == 0.0; c2 at 0.3: hvp 1.146.., FD of the gradient 1.7108..
    //           c6 (nested h2(h2(a, a), a) = a^3) at 0.3: hvp 1.2, expected 1.8

    // (gen::HESSIAN_KNOWN_BUGS, "fwd-07") -- this leaves HVPs checked on programs
    // without calls only.

    #[differentiable(forward, hessian)]
    fn h2(x: f64, y: f64) -> f64 {
        x * y
    }

    #[differentiable(forward, hessian)]
    fn h3(x: f64, y: f64) -> f64 {
        y + y
    }

    #[differentiable(forward, hessian)]
    fn c2(a: f64) -> f64 {
        h2(a.sin(), a * a)
    }

    #[differentiable(forward, hessian)]
    fn c3(a: f64) -> f64 {
        h3(a, a * a)
    }

    #[differentiable(forward, hessian)]
    fn c6(a: f64) -> f64 {
        h2(h2(a, a), a)
    }

    #[test]
    fn regression() {
        let (v, g, hv) = c3_hvp(0.3, 1.0);
        assert_eq!((v, g), (2.0 * 0.09, 1.2));
        assert!((hv - 4.0).abs() < 1e-12, "c3: H v = {hv}, expected 4");
        let x = 0.7;
        let h = 1e-5;
        let fd = (c2_grad(x + h).1 - c2_grad(x - h).1) / (2.0 * h);
        let (_, _, hv) = c2_hvp(x, 1.0);
        assert!((hv - fd).abs() < 1e-6, "c2: H v = {hv}, FD {fd}");
        let (_, _, hv) = c6_hvp(0.3, 1.0);
        assert!(
            (hv - 1.8).abs() < 1e-12,
            "c6: H v = {hv}, expected 6 a = 1.8"
        );
    }
}

mod fwd_08_hessian_array_to_slice_param {
    use tapeless::differentiable;

    // Bug (found by fuzzgen forward checks with TAPELESS_FUZZ_HUNT=1, seed 3,
    // program 27; seed 1, several): with `#[differentiable(hessian)]`, passing a
    // local array (or an array parameter) to another differentiable function's
    // `&[f64]` parameter (`h(a, &a1)` with `a1: [f64; 2]`) does not compile
    // (after b2951d5). `forward` alone compiles, and plain reverse mode does (fuzz bug 05).
    // The tangent/cotangent conversions between `[f64; N]` and `Vec<f64>` are
    // ambiguous in the reverse pass over the pushforward.
    // Expected: compiles; c_hvp(2.0, 1.0) == (8.0, 12.0, 12.0)   (c = a^3: c' = 3a², c'' = 6a)
    // Actual:
    //   error[E0283]: type annotations needed  (at #[differentiable(forward, hessian)] of `c`)
    //     cannot satisfy `_: Tangent`                      (tapeless::__private::zero)
    //     multiple impls satisfying `_: AccFrom<Vec<f64>>` (tapeless::__private::acc_from:
    //       AccFrom<Vec<T>> for [T; N], AccFrom<T> for T)
    //     multiple impls satisfying `[f64; 2]: IntoArg<_>` (fwd_args::arg_pullback:
    //       IntoArg<Vec<T>> for [T; N], IntoArg<T> for T)
    // A constant slice argument (`h(a, &[0.5, -1.0, 1.5])`) compiles.

    #[differentiable(forward, hessian)]
    fn h(x: f64, zs: &[f64]) -> f64 {
        x * zs[0]
    }

    #[differentiable(forward, hessian)]
    fn c(a: f64) -> f64 {
        let a1 = [a * a, a];
        h(a, &a1)
    }

    #[test]
    fn regression() {
        assert_eq!(c_hvp(2.0, 1.0), (8.0, 12.0, 12.0));
    }
}

#[allow(unused_parens, unreachable_code)]
mod fwd_09_hessian_by_ref_loop_variable_passed_dereferenced {
    use tapeless::differentiable;

    // Cause: `*e3` passed by value to a rule function saved the reference `e3`
    // (into a stack outliving the array), not the value behind it.
    // Bug (found by fuzzgen forward checks, seed 6, program 80; NOT fully
    // minimised -- the statement-level bisection below is as far as it went, and
    // smaller shapes (by-ref loop over a local array with an inner loop, a
    // `return`, index reads of the same array) compile): with
    // `#[differentiable(hessian)]` this does not compile (against HEAD b2951d5):
    //   error[E0716]: temporary value dropped while borrowed
    //     (at #[differentiable(forward, hessian)] of `p80`: "creates a temporary
    //      value which is freed while still in use ... borrow later used here")
    // `forward` alone: not checked. Suspects: `for e3 in &a1` (by-ref loop over a
    // local array) with an empty block `{ }` and a `for .. in (0..7).step_by(2)`
    // inside, reading `a1[..]` and returning from inside.

    #[differentiable(forward, hessian)]
    fn p80_h0(x: f64, d: usize) -> f64 {
        if d == 0 {
            ((1.219 - x).abs() + 1.0).ln()
        } else {
            f64::asinh(x)
        }
    }

    #[differentiable(forward, hessian)]
    fn p80(a: f64) -> f64 {
        let mut a1 = [
            ((((-1.808) + (-1.345)) + (a.tanh() * 0.899).atanh()).atan() * 0.636),
            (((2.0 + a.tanh()).recip() * 0.9).asin() * 0.893),
        ];
        for e3 in &a1 {
            {}
            for i4 in (0..7).step_by(2) {
                let v5 = ((*e3) - (a.clamp((-0.968), 1.185) * (i4 as f64).asinh()));
                if ((*e3) * 1.805) >= (-0.945) {
                    return (((f64::atan(f64::recip((a1[(i4 + 3) % 2] * 0.255).exp())) * 1.854)
                        * (f64::atan(f64::recip((a1[(i4 + 3) % 2] * 0.255).exp())) * 1.854)
                        + 1.5)
                        .powi(-2)
                        + ((*e3) / (-0.725)));
                }
            }
        }
        let v9 = ((((a / a.exp()).tanh() * 9.74).abs() + 0.25).sqrt()
            * (((-1.48) * a) / (f64::abs(a) * f64::abs(a) + 0.25)));
        let v11 = v9.tanh();
        f64::acos((v9.atan() * 0.572))
            + (f64::cbrt((f64::abs((-1.9)) + 0.25)).max((-0.432)) * v11.exp().log10().cos())
    }

    #[test]
    fn regression() {
        let (v, g, hv) = p80_hvp(0.3, 1.0);
        let h = 1e-5;
        let fd = (p80_grad(0.3 + h).1 - p80_grad(0.3 - h).1) / (2.0 * h);
        assert!(
            (hv - fd).abs() < 1e-6 * (1.0 + fd.abs()),
            "H v {hv}, FD {fd}"
        );
    }
}
