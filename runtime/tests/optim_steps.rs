//! Each optimizer against a hand-computed 3-step trajectory on the
//! 2-parameter model `(p0, p1) = (1, -2)` with the fixed gradients
//!
//! ```text
//! step 1: g = ( 1.0,  2.0)
//! step 2: g = ( 0.5, -1.0)
//! step 3: g = (-1.0,  0.0)
//! ```
//!
//! SGD's arithmetic is written out in full; the adaptive methods' expected
//! values come from the textbook formulas (stated in each test) evaluated in
//! `f64`, with the first step worked by hand.

use tapeless_runtime::optim::{Adam, AdamW, Optimizer, RmsProp, Sgd};
use tapeless_runtime::tensor::Tensor;

const GRADS: [(f64, f64); 3] = [(1.0, 2.0), (0.5, -1.0), (-1.0, 0.0)];

/// Runs `opt` for the three steps on an `(f64, f64)` model and returns the
/// parameters after each.
fn run(mut opt: impl Optimizer) -> Vec<(f64, f64)> {
    let mut p = (1.0f64, -2.0f64);
    GRADS
        .iter()
        .map(|g| {
            opt.step(&mut p, g);
            p
        })
        .collect()
}

/// The same on an `f32` tensor model `[p0, p1]`.
fn run_tensor(mut opt: impl Optimizer) -> Vec<(f64, f64)> {
    let mut p = Tensor::from_vec(vec![1.0, -2.0], &[2]);
    GRADS
        .iter()
        .map(|&(a, b)| {
            opt.step(&mut p, &Tensor::from_vec(vec![a as f32, b as f32], &[2]));
            let v = p.to_vec();
            (f64::from(v[0]), f64::from(v[1]))
        })
        .collect()
}

#[track_caller]
fn assert_close(got: &[(f64, f64)], want: &[(f64, f64)], tol: f64) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g.0 - w.0).abs() <= tol && (g.1 - w.1).abs() <= tol,
            "step {}: got {g:?}, want {w:?}",
            i + 1
        );
    }
}

/// Checks the `f64` trajectory to `1e-12` and the `f32` tensor one to `1e-6`.
#[track_caller]
fn check(make: impl Fn() -> Box<dyn FnOnce(bool) -> Vec<(f64, f64)>>, want: &[(f64, f64)]) {
    assert_close(&make()(false), want, 1e-12);
    assert_close(&make()(true), want, 1e-6);
}

macro_rules! both {
    ($opt:expr) => {
        || -> Box<dyn FnOnce(bool) -> Vec<(f64, f64)>> {
            Box::new(|tensor| if tensor { run_tensor($opt) } else { run($opt) })
        }
    };
}

#[test]
fn sgd_plain() {
    // p -= 0.1 g
    // (1, -2) -> (0.9, -2.2) -> (0.85, -2.1) -> (0.95, -2.1)
    check(
        both!(Sgd::new(0.1)),
        &[(0.9, -2.2), (0.85, -2.1), (0.95, -2.1)],
    );
}

#[test]
fn sgd_momentum() {
    // lr 0.1, mu 0.9; b = g on the first step, then b = 0.9 b + g; p -= 0.1 b
    // 1: b = (1, 2)                                 p = (0.9, -2.2)
    // 2: b = (0.9 + 0.5, 1.8 - 1) = (1.4, 0.8)      p = (0.9 - 0.14, -2.2 - 0.08) = (0.76, -2.28)
    // 3: b = (1.26 - 1, 0.72 + 0) = (0.26, 0.72)    p = (0.76 - 0.026, -2.28 - 0.072) = (0.734, -2.352)
    check(
        both!(Sgd::new(0.1).momentum(0.9)),
        &[(0.9, -2.2), (0.76, -2.28), (0.734, -2.352)],
    );
}

#[test]
fn sgd_nesterov() {
    // as above, but the step is d = g + 0.9 b
    // 1: b = (1, 2),      d = (1.9, 3.8)        p = (1 - 0.19, -2 - 0.38)        = (0.81, -2.38)
    // 2: b = (1.4, 0.8),  d = (1.76, -0.28)     p = (0.81 - 0.176, -2.38 + 0.028) = (0.634, -2.352)
    // 3: b = (0.26, 0.72), d = (-0.766, 0.648)  p = (0.634 + 0.0766, -2.352 - 0.0648) = (0.7106, -2.4168)
    check(
        both!(Sgd::new(0.1).momentum(0.9).nesterov(true)),
        &[(0.81, -2.38), (0.634, -2.352), (0.7106, -2.4168)],
    );
}

#[test]
fn sgd_dampening() {
    // mu 0.9, tau 0.5: b = g first, then b = 0.9 b + 0.5 g
    // 1: b = (1, 2)                               p = (0.9, -2.2)
    // 2: b = (0.9 + 0.25, 1.8 - 0.5) = (1.15, 1.3) p = (0.785, -2.33)
    // 3: b = (1.035 - 0.5, 1.17) = (0.535, 1.17)   p = (0.7315, -2.447)
    check(
        both!(Sgd::new(0.1).momentum(0.9).dampening(0.5)),
        &[(0.9, -2.2), (0.785, -2.33), (0.7315, -2.447)],
    );
}

#[test]
fn sgd_weight_decay() {
    // d = g + 0.1 p; p -= 0.1 d
    // 1: d = (1.1, 1.8)               p = (0.89, -2.18)
    // 2: d = (0.589, -1.218)          p = (0.8311, -2.0582)
    // 3: d = (-0.91689, -0.20582)     p = (0.922789, -2.037618)
    check(
        both!(Sgd::new(0.1).weight_decay(0.1)),
        &[(0.89, -2.18), (0.8311, -2.0582), (0.922789, -2.037618)],
    );
}

#[test]
#[should_panic(expected = "Nesterov momentum needs momentum > 0")]
fn sgd_nesterov_without_momentum_is_refused() {
    run(Sgd::new(0.1).nesterov(true));
}

// Adam: m = 0.9 m + 0.1 g, v = 0.999 v + 0.001 g^2,
//       p -= lr * (m / (1 - 0.9^t)) / (sqrt(v / (1 - 0.999^t)) + 1e-8)
// Step 1 by hand (p0): m = 0.1, v = 0.001, m_hat = 1, v_hat = 1,
//       p0 = 1 - 0.1 * 1 / (1 + 1e-8) = 0.900000001 (to 1e-16).

#[test]
fn adam() {
    check(
        both!(Adam::new(0.1)),
        &[
            (0.900000001, -2.0999999995),
            (0.8067820382981611, -2.1266337032975686),
            (0.7957037312938717, -2.1472216334965584),
        ],
    );
}

#[test]
fn adam_l2_weight_decay() {
    // g += 0.1 p before the moments; step 1 (p0): g = 1.1, m_hat = 1.1,
    // v_hat = 1.21, p0 = 1 - 0.1 * 1.1 / (1.1 + 1e-8).
    check(
        both!(Adam::new(0.1).weight_decay(0.1)),
        &[
            (0.9000000009090909, -2.0999999994444445),
            (0.8057717968921709, -2.1140717455756697),
            (0.7850508045178748, -2.1186953682698935),
        ],
    );
}

#[test]
fn adamw_decoupled_weight_decay() {
    // p -= 0.1 * 0.1 * p first, then Adam with the raw gradient;
    // step 1 (p0): 1 * 0.99 - 0.1 * 1 / (1 + 1e-8) = 0.890000001.
    check(
        both!(AdamW::new(0.1).weight_decay(0.1)),
        &[
            (0.890000001, -2.0799999995),
            (0.7878820382881611, -2.0858337033025687),
            (0.7689249109009901, -2.085563296468533),
        ],
    );
}

#[test]
fn adam_custom_betas_and_eps() {
    // betas (0.5, 0.5), eps 0.1, lr 1; p0 step 1: m = 0.5, v = 0.5,
    // m_hat = 1, v_hat = 1, p0 = 1 - 1 / 1.1
    let got = run(Adam::new(1.0).betas(0.5, 0.5).eps(0.1));
    assert!((got[0].0 - (1.0 - 1.0 / 1.1)).abs() < 1e-15);
    // p1 step 2: m = 0.5 * 1 + 0.5 * -1 = 0, so p1 does not move.
    assert_eq!(got[1].1, got[0].1);
}

// RMSprop: s = alpha s + (1 - alpha) g^2; p -= lr g / (sqrt(s) + eps)
// Step 1 by hand (p0, lr 0.01, alpha 0.99): s = 0.01, sqrt(s) = 0.1,
//       p0 = 1 - 0.01 * 1 / (0.1 + 1e-8) = 0.90000001 (to 1e-15).

#[test]
fn rmsprop() {
    check(
        both!(RmsProp::new(0.01)),
        &[
            (0.9000000099999991, -2.099999995),
            (0.855098688525563, -2.0550986715094353),
            (0.9220997011195861, -2.0550986715094353),
        ],
    );
}

#[test]
fn rmsprop_momentum() {
    // b = 0.9 b + g / (sqrt(s) + eps); p -= lr b
    check(
        both!(RmsProp::new(0.01).momentum(0.9)),
        &[
            (0.9000000099999991, -2.099999995),
            (0.7650986975255621, -2.1450986670094356),
            (0.7106885288925919, -2.1856874718179276),
        ],
    );
}

#[test]
fn rmsprop_centered() {
    // a = 0.99 a + 0.01 g; r = sqrt(s - a^2) + eps. Step 1 (p0): s = 0.01,
    // a = 0.01, r = sqrt(0.0099), p0 = 1 - 0.01 / sqrt(0.0099).
    check(
        both!(RmsProp::new(0.01).centered(true)),
        &[
            (0.8994962285750879, -2.100503776475416),
            (0.8541874704774369, -2.055558918756342),
            (0.9212224545458112, -2.055558918756342),
        ],
    );
}

#[test]
fn rmsprop_centered_momentum_weight_decay() {
    check(
        both!(RmsProp::new(0.01)
            .centered(true)
            .momentum(0.5)
            .weight_decay(0.1)),
        &[
            (0.8994962276568145, -2.100503775914249),
            (0.8013576857075598, -2.094752521807391),
            (0.8120258833635566, -2.0821811599136293),
        ],
    );
}

#[test]
fn rmsprop_alpha_and_eps() {
    // alpha 0.75, eps 1: s = 0.25 g^2 = 0.25, p0 = 1 - 0.01 * 1 / (0.5 + 1)
    let got = run(RmsProp::new(0.01).alpha(0.75).eps(1.0));
    assert!((got[0].0 - (1.0 - 0.01 / 1.5)).abs() < 1e-15);
}

#[test]
fn set_lr_changes_the_next_steps_only() {
    let mut p = (1.0f64, 1.0f64);
    let mut opt = Sgd::new(0.1);
    opt.step(&mut p, &(1.0, 1.0));
    opt.set_lr(0.5);
    assert_eq!(opt.lr(), 0.5);
    opt.step(&mut p, &(1.0, 1.0));
    assert!((p.0 - (1.0 - 0.1 - 0.5)).abs() < 1e-15);
    assert_eq!(opt.steps(), 2);
}

#[test]
fn state_is_kept_per_parameter_name_and_allocated_lazily() {
    // A model that grows: the new parameter starts its own step count
    // (Adam's bias correction uses t = 1 for it).
    let mut opt = Adam::new(0.1);
    let mut small = vec![1.0f64];
    opt.step(&mut small, &vec![1.0]);
    opt.step(&mut small, &vec![1.0]);
    let st = opt.state();
    assert_eq!(st.params.len(), 1);
    assert_eq!(st.params[""].step, 2);

    let mut pair = (1.0f64, 1.0f64);
    let mut opt = Adam::new(0.1);
    opt.step(&mut pair, &(1.0, 1.0));
    let mut triple = (pair.0, pair.1, 1.0f64);
    let mut opt2 = Adam::new(0.1);
    opt2.load_state(&opt.state()).unwrap();
    opt2.step(&mut triple, &(1.0, 1.0, 1.0));
    let st = opt2.state();
    assert_eq!(st.params["0"].step, 2);
    assert_eq!(st.params["2"].step, 1);
    // The fresh parameter moved by a full first Adam step (lr * g/|g|).
    assert!((triple.2 - 0.9).abs() < 1e-7);
}

#[test]
#[should_panic(expected = "parameter `` has shape [3], but its state has shape [2]")]
fn a_parameter_changing_shape_is_reported() {
    let mut opt = Adam::new(0.1);
    opt.step(&mut vec![1.0f64, 2.0], &vec![1.0, 1.0]);
    opt.step(&mut vec![1.0f64, 2.0, 3.0], &vec![1.0, 1.0, 1.0]);
}

#[test]
fn f32_updates_run_in_f32() {
    // PyTorch's arithmetic for an f32 parameter: coefficients converted to
    // f32, element-wise operations in f32.
    let mut p = 1.0f32;
    let mut opt = Sgd::new(0.1).momentum(0.9);
    opt.step(&mut p, &1.0f32);
    opt.step(&mut p, &1.0f32);
    let lr = -(0.1f64 as f32);
    let b1 = 1.0f32;
    let p1 = 1.0f32 + lr * b1;
    let b2 = b1 * 0.9f32 + 1.0f32 * 1.0f32;
    assert_eq!(p.to_bits(), (p1 + lr * b2).to_bits());
}

#[test]
fn reset_forgets_state() {
    let mut p = 1.0f64;
    let mut opt = Sgd::new(0.1).momentum(0.9);
    opt.step(&mut p, &1.0);
    opt.reset();
    assert_eq!(opt.steps(), 0);
    assert!(opt.state().params.is_empty());
    assert_eq!(opt.lr(), 0.1);
}
