//! Runs one implementation's training step (or forward + gradient) in a loop,
//! for profilers: `perf record`, `valgrind --tool=callgrind`.
//!
//! ```text
//! cargo run --release --example profile -- WHAT IMPL [STEPS]
//!   WHAT: mlp-step | mlp-grad | cnn-step | cnn-grad
//!   IMPL: tapeless | fused | candle | hand-gemm | hand-mm   (fused, hand-*: MLP only)
//! ```
//!
//! Steps from a snapshot taken after 3 warm-up steps and keeps training on
//! the same batch (a few hundred steps stay far from the subnormal regime
//! the benches avoid, which starts after ~800 steps). Prints the median
//! time per step: wall time, or CPU time with `BENCH_CLOCK=cpu`.

use bench_candle::{batch, clock, cpu_clock, hand, ours, taped, BATCH, INPUTS, LR, SIDE};
use std::hint::black_box;
use tapeless::optim::Adam;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: profile mlp-step|mlp-grad|cnn-step|cnn-grad tapeless|fused|candle|hand-gemm|hand-mm [STEPS]";
    let (what, imp) = match (args.first(), args.get(1)) {
        (Some(w), Some(i)) => (w.as_str(), i.as_str()),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let steps: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
        .clamp(1, 500);
    let mut times = Vec::with_capacity(steps);
    let mut time = |f: &mut dyn FnMut() -> f32| {
        for _ in 0..steps {
            let t = clock();
            black_box(f());
            times.push((clock() - t).as_secs_f64());
        }
    };
    if what.starts_with("mlp") {
        let model = ours::Mlp::new(1);
        let (x, labels) = batch(2, &[BATCH, INPUTS]);
        let (xc, lc) = (taped::tensor(&x), taped::labels(&labels));
        let xv = x.to_vec();
        let (mut m0, mut opt0) = (model.clone(), Adam::new(LR));
        for _ in 0..3 {
            ours::mlp_step(&mut m0, &mut opt0, &x, &labels);
        }
        let step = what == "mlp-step";
        match imp {
            "tapeless" | "fused" => {
                let fused = imp == "fused";
                let (mut m, mut opt) = (m0.clone(), opt0.clone());
                time(&mut || match (step, fused) {
                    (true, false) => ours::mlp_step(&mut m, &mut opt, &x, &labels),
                    (true, true) => ours::mlp_step_fused(&mut m, &mut opt, &x, &labels),
                    (false, false) => m.loss_grad(&x, &labels).0,
                    (false, true) => m.loss_fused_grad(&x, &labels).0,
                })
            }
            "candle" => {
                let mut m = taped::Mlp::from(&m0, LR);
                time(&mut || {
                    if step {
                        m.step(&xc, &lc).expect("candle step")
                    } else {
                        m.loss_grad(&xc, &lc).expect("candle grad").0
                    }
                })
            }
            "hand-gemm" | "hand-mm" => {
                let which = if imp == "hand-gemm" {
                    hand::Gemm::Gemm
                } else {
                    hand::Gemm::MatrixMultiply
                };
                let mut h = hand::Mlp::from(&m0, which, LR);
                time(&mut || {
                    if step {
                        h.step(&xv, &labels)
                    } else {
                        h.loss_grad(&xv, &labels)
                    }
                })
            }
            _ => {
                eprintln!("{usage}");
                std::process::exit(2);
            }
        }
    } else {
        let model = ours::Cnn::new(3);
        let (x, labels) = batch(4, &[BATCH, 1, SIDE, SIDE]);
        let (xc, lc) = (taped::tensor(&x), taped::labels(&labels));
        let (mut m0, mut opt0) = (model.clone(), Adam::new(LR));
        for _ in 0..3 {
            ours::cnn_step(&mut m0, &mut opt0, &x, &labels);
        }
        let step = what == "cnn-step";
        match imp {
            "tapeless" => {
                let (mut m, mut opt) = (m0.clone(), opt0.clone());
                time(&mut || {
                    if step {
                        ours::cnn_step(&mut m, &mut opt, &x, &labels)
                    } else {
                        m.loss_grad(&x, &labels).0
                    }
                })
            }
            "candle" => {
                let mut m = taped::Cnn::from(&m0, LR);
                time(&mut || {
                    if step {
                        m.step(&xc, &lc).expect("candle step")
                    } else {
                        m.loss_grad(&xc, &lc).expect("candle grad").0
                    }
                })
            }
            _ => {
                eprintln!("{usage}");
                std::process::exit(2);
            }
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{what} {imp}: median {:.3} ms {} over {steps} steps (min {:.3} ms)",
        times[steps / 2] * 1e3,
        if cpu_clock() { "CPU" } else { "wall" },
        times[0] * 1e3
    );
}
