//! Learning-rate schedules at chosen steps, gradient clipping by global
//! norm, and exporting/restoring optimizer state.

use std::collections::BTreeMap;
use tapeless_runtime::optim::{
    clip_grad_norm, global_norm, Adam, AdamW, BufferData, Constant, CosineWarmup, OptimState,
    Optimizer, RmsProp, Schedule, Sgd, StateError, StepDecay,
};
use tapeless_runtime::tensor::Tensor;

#[test]
fn step_decay_at_chosen_steps() {
    // lr = 0.1 * 0.5^floor(t / 3)
    let s = StepDecay {
        base_lr: 0.1,
        step_size: 3,
        gamma: 0.5,
    };
    let want = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025];
    for (t, w) in want.iter().enumerate() {
        assert!((s.lr_at(t as u64) - w).abs() < 1e-15, "t = {t}");
    }
    assert!((s.lr_at(30) - 0.1 * 0.5f64.powi(10)).abs() < 1e-18);
}

#[test]
fn cosine_with_warmup_at_chosen_steps() {
    // warm-up 4 steps to 1.0, cosine to 0.1 at step 14 (10 steps of decay)
    let s = CosineWarmup::new(1.0, 4, 14).min_lr(0.1);
    // t < 4: t / 4
    assert_eq!(s.lr_at(0), 0.0);
    assert_eq!(s.lr_at(1), 0.25);
    assert_eq!(s.lr_at(3), 0.75);
    // t = 4: the peak; p = (t - 4) / 10
    assert!((s.lr_at(4) - 1.0).abs() < 1e-15);
    // t = 9: p = 0.5, cos(pi/2) = 0: 0.1 + 0.9 * 0.5
    assert!((s.lr_at(9) - 0.55).abs() < 1e-15);
    // t = 6: p = 0.2: 0.1 + 0.9 * (1 + cos(0.2 pi)) / 2
    let want = 0.1 + 0.9 * (1.0 + (0.2 * std::f64::consts::PI).cos()) / 2.0;
    assert!((s.lr_at(6) - want).abs() < 1e-15);
    // t >= 14: the floor
    assert!((s.lr_at(14) - 0.1).abs() < 1e-15);
    assert!((s.lr_at(1000) - 0.1).abs() < 1e-15);
    // no warm-up: starts at the peak
    assert_eq!(CosineWarmup::new(2.0, 0, 10).lr_at(0), 2.0);
}

#[test]
fn apply_sets_the_rate_for_the_next_step() {
    let s = StepDecay {
        base_lr: 1.0,
        step_size: 2,
        gamma: 0.1,
    };
    let mut opt = Sgd::new(123.0);
    let mut p = 0.0f64;
    let mut moves = Vec::new();
    for _ in 0..4 {
        s.apply(&mut opt);
        let before = p;
        opt.step(&mut p, &1.0);
        moves.push(before - p);
    }
    let want = [1.0, 1.0, 0.1, 0.1];
    for (m, w) in moves.iter().zip(want) {
        assert!((m - w).abs() < 1e-12, "{moves:?}");
    }
    // through a trait object too
    let dynamic: &dyn Schedule = &Constant(0.25);
    dynamic.apply(&mut opt);
    assert_eq!(opt.lr(), 0.25);
}

#[test]
fn clipping_scales_to_the_max_norm() {
    // |(3, 4) , [12]| = sqrt(9 + 16 + 144) = 13
    let mut g = (3.0f64, Tensor::from_vec(vec![4.0, 12.0], &[2]));
    assert_eq!(global_norm(&g), 13.0);
    let n = clip_grad_norm(&mut g, 6.5);
    assert_eq!(n, 13.0);
    // scaled by 6.5 / (13 + 1e-6)
    let c = 6.5 / (13.0 + 1e-6);
    assert!((g.0 - 3.0 * c).abs() < 1e-12);
    let v = g.1.to_vec();
    assert!((f64::from(v[0]) - 4.0 * c).abs() < 1e-6);
    assert!((f64::from(v[1]) - 12.0 * c).abs() < 1e-6);
    assert!((global_norm(&g) - 6.5).abs() < 1e-5);
}

#[test]
fn clipping_leaves_small_gradients_alone() {
    let mut g = vec![0.3f64, 0.4];
    assert_eq!(clip_grad_norm(&mut g, 1.0), 0.5);
    assert_eq!(g, [0.3, 0.4]);
    // exactly at the limit: the coefficient max / (norm + 1e-6) is below 1,
    // so PyTorch scales (by a hair); so do we
    let mut g = vec![3.0f64, 4.0];
    clip_grad_norm(&mut g, 5.0);
    assert!(g[0] < 3.0 && (g[0] - 3.0).abs() < 1e-6);
}

#[test]
fn clipping_a_non_finite_gradient_changes_nothing() {
    let mut g = vec![f64::NAN, 1.0];
    assert!(clip_grad_norm(&mut g, 1.0).is_nan());
    assert_eq!(g[1], 1.0);
    let mut g = (f32::INFINITY, 1.0f32);
    assert_eq!(clip_grad_norm(&mut g, 1.0), f64::INFINITY);
    assert_eq!(g.1, 1.0);
}

fn trained<O: Optimizer>(mut opt: O, steps: usize) -> (O, (Tensor, f64)) {
    let mut p = (Tensor::from_vec(vec![1.0, -1.0, 0.5], &[3]), 2.0f64);
    for i in 0..steps {
        let g = (
            Tensor::from_vec(vec![0.1 * i as f32, -0.2, 0.3], &[3]),
            0.5 - i as f64,
        );
        opt.step(&mut p, &g);
    }
    (opt, p)
}

#[test]
fn exported_state_names_buffers_and_counters() {
    let (opt, _) = trained(Adam::new(0.01), 3);
    let st = opt.state();
    assert_eq!(st.kind, "adam");
    assert_eq!(st.scalars["lr"], 0.01);
    assert_eq!(st.scalars["steps"], 3.0);
    assert_eq!(st.scalars["beta2"], 0.999);
    let names: Vec<&str> = st.params.keys().map(String::as_str).collect();
    assert_eq!(names, ["0", "1"]);
    let p0 = &st.params["0"];
    assert_eq!((p0.step, p0.shape.as_slice()), (3, &[3][..]));
    assert!(matches!(&p0.buffers["m"], BufferData::F32(v) if v.len() == 3));
    assert!(matches!(&st.params["1"].buffers["v"], BufferData::F64(v) if v.len() == 1));

    let (opt, _) = trained(Sgd::new(0.1).momentum(0.9), 1);
    assert!(opt.state().params["0"].buffers.contains_key("momentum"));
    let (opt, _) = trained(Sgd::new(0.1), 1);
    assert!(opt.state().params["0"].buffers.is_empty());
    let (opt, _) = trained(RmsProp::new(0.1).centered(true), 1);
    let keys: Vec<String> = opt.state().params["0"].buffers.keys().cloned().collect();
    assert_eq!(keys, ["grad_avg", "square_avg"]);
}

/// Continuing from restored state is bit-identical to not stopping.
fn resumes_exactly<O: Optimizer + Clone>(fresh: O) {
    let (_, straight) = trained(fresh.clone(), 6);
    let (first, mut p) = trained(fresh.clone(), 3);
    let mut second = fresh;
    second.load_state(&first.state()).unwrap();
    for i in 3..6 {
        let g = (
            Tensor::from_vec(vec![0.1 * i as f32, -0.2, 0.3], &[3]),
            0.5 - i as f64,
        );
        second.step(&mut p, &g);
    }
    let bits = |t: &Tensor| t.to_vec().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&p.0), bits(&straight.0));
    assert_eq!(p.1.to_bits(), straight.1.to_bits());
}

#[test]
fn restored_state_resumes_bit_identically() {
    resumes_exactly(Sgd::new(0.1).momentum(0.9).nesterov(true));
    resumes_exactly(Adam::new(0.01).weight_decay(0.01));
    resumes_exactly(AdamW::new(0.01));
    resumes_exactly(RmsProp::new(0.01).centered(true).momentum(0.5));
}

#[test]
fn load_state_restores_hyper_parameters() {
    let mut a = Adam::new(0.5).betas(0.8, 0.9);
    a.load_state(&Adam::new(0.01).state()).unwrap();
    assert_eq!(a.lr(), 0.01);
    assert_eq!(a.state().scalars["beta1"], 0.9);
}

#[test]
fn load_state_refuses_bad_state_and_keeps_its_own() {
    let (mut adam, _) = trained(Adam::new(0.01), 2);
    let before = adam.state();

    let (sgd, _) = trained(Sgd::new(0.1).momentum(0.9), 1);
    let e = adam.load_state(&sgd.state()).unwrap_err();
    assert_eq!(
        e,
        StateError::WrongKind {
            expected: "adam".into(),
            found: "sgd".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "optimizer state is for `sgd`, cannot load it into `adam`"
    );

    let mut bad = before.clone();
    bad.params
        .get_mut("0")
        .unwrap()
        .buffers
        .insert("momentum".into(), BufferData::F32(vec![0.0; 3]));
    assert!(matches!(
        adam.load_state(&bad),
        Err(StateError::UnknownBuffer { .. })
    ));

    let mut bad = before.clone();
    bad.params
        .get_mut("0")
        .unwrap()
        .buffers
        .insert("m".into(), BufferData::F32(vec![0.0; 2]));
    let e = adam.load_state(&bad).unwrap_err();
    assert!(
        e.to_string()
            .contains("has 2 elements, the shape [3] needs 3"),
        "{e}"
    );

    let mut bad = before.clone();
    bad.params
        .get_mut("0")
        .unwrap()
        .buffers
        .insert("m".into(), BufferData::F64(vec![0.0; 3]));
    assert!(matches!(
        adam.load_state(&bad),
        Err(StateError::MixedTypes { .. })
    ));

    assert_eq!(adam.state(), before);
    let empty = OptimState {
        kind: "adam".into(),
        scalars: BTreeMap::new(),
        params: BTreeMap::new(),
    };
    adam.load_state(&empty).unwrap();
    assert!(adam.state().params.is_empty());
    assert_eq!(adam.lr(), 0.01); // absent scalars keep their values
}

#[test]
fn optimizers_are_usable_as_trait_objects() {
    let opts: Vec<Box<dyn Optimizer>> = vec![
        Box::new(Sgd::new(0.1)),
        Box::new(Adam::new(0.1)),
        Box::new(AdamW::new(0.1)),
        Box::new(RmsProp::new(0.1)),
    ];
    let kinds: Vec<&str> = opts.iter().map(|o| o.kind()).collect();
    assert_eq!(kinds, ["sgd", "adam", "adamw", "rmsprop"]);
}
