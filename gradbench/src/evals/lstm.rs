//! `lstm`: the loss of ADBench's character-level LSTM (diagonal weight
//! matrices) over a one-hot-ish bit sequence, and its gradient with respect
//! to the main and extra parameters.
//!
//! Layout (rows of the input matrices, flattened): `main_params` has two rows
//! of `4b` per layer, weights then biases, each `[forget, ingate, outgate,
//! change]`; `extra_params` is `[in_weight, out_weight, out_bias]`; `state`
//! has two rows per layer, hidden then cell.

use crate::protocol::{parse, timed, Evaluated};
use serde::Deserialize;
use serde_json::Value;
use tapeless::{differentiable, Activation};

#[derive(Deserialize)]
struct Input {
    main_params: Vec<Vec<f64>>,
    extra_params: Vec<Vec<f64>>,
    state: Vec<Vec<f64>>,
    sequence: Vec<Vec<f64>>,
}

/// The input, flattened.
pub struct Lstm {
    /// Hidden size (bits per character).
    pub b: usize,
    /// `2 × layers × 4b`.
    pub main_params: Vec<f64>,
    /// `3 × b`.
    pub extra_params: Vec<f64>,
    /// `2 × layers × b`.
    pub state: Vec<f64>,
    /// `characters × b`.
    pub sequence: Vec<f64>,
}

impl From<Input> for Lstm {
    fn from(i: Input) -> Lstm {
        Lstm {
            b: i.sequence.first().map_or(0, Vec::len),
            main_params: i.main_params.concat(),
            extra_params: i.extra_params.concat(),
            state: i.state.concat(),
            sequence: i.sequence.concat(),
        }
    }
}

/// Mean negative log-likelihood of each next character under the LSTM's
/// prediction from the characters before it.
#[differentiable(wrt(main_params, extra_params))]
pub fn objective(
    main_params: &[f64],
    extra_params: &[f64],
    state: &[f64],
    sequence: &[f64],
) -> f64 {
    let b = extra_params.len() / 3;
    let layers = main_params.len() / (8 * b);
    let chars = sequence.len() / b;
    let mut s = state.to_vec();
    let mut input = vec![0.0; b];
    let mut ypred = vec![0.0; b];
    let mut total = 0.0;
    for t in 0..chars - 1 {
        for i in 0..b {
            input[i] = sequence[t * b + i] * extra_params[i];
        }
        for layer in 0..layers {
            let w = 8 * b * layer; // weights at w, biases at w + 4b
            let hidden = 2 * b * layer; // cells at hidden + b
            for i in 0..b {
                // `sigmoid` is `tapeless::Activation`'s: one operation whose
                // rule reads its output. Each binding is saved once per cell
                // for the reverse sweep, however many operations read it.
                let x = input[i];
                let h = s[hidden + i];
                let forget = (x * main_params[w + i] + main_params[w + 4 * b + i]).sigmoid();
                let ingate = (h * main_params[w + b + i] + main_params[w + 5 * b + i]).sigmoid();
                let outgate =
                    (x * main_params[w + 2 * b + i] + main_params[w + 6 * b + i]).sigmoid();
                let change = (h * main_params[w + 3 * b + i] + main_params[w + 7 * b + i]).tanh();
                s[hidden + b + i] = s[hidden + b + i] * forget + ingate * change;
                s[hidden + i] = outgate * s[hidden + b + i].tanh();
            }
            // this layer's hidden state is the next layer's input
            for i in 0..b {
                input[i] = s[hidden + i];
            }
        }
        for i in 0..b {
            ypred[i] = input[i] * extra_params[b + i] + extra_params[2 * b + i];
        }
        // log of the normaliser Σ exp(ypred) + 2, then the target's log-probabilities
        let mut sum = 2.0;
        for i in 0..b {
            sum += ypred[i].exp();
        }
        let lse = sum.ln();
        for i in 0..b {
            total += sequence[(t + 1) * b + i] * (ypred[i] - lse);
        }
    }
    -total / ((chars - 1) * b) as f64
}

impl Lstm {
    /// The loss.
    pub fn objective(&self) -> f64 {
        objective(
            &self.main_params,
            &self.extra_params,
            &self.state,
            &self.sequence,
        )
    }

    /// The gradient, main parameters then extra parameters.
    pub fn gradient(&self) -> Vec<f64> {
        let (_, (mut main, extra)) = objective_grad(
            &self.main_params,
            &self.extra_params,
            &self.state,
            &self.sequence,
        );
        main.extend(extra);
        main
    }
}

/// Evaluates `objective` or `jacobian`.
pub fn evaluate(function: &str, input: Value) -> Result<Evaluated, String> {
    let lstm: Lstm = parse::<Input>(input.clone())?.into();
    match function {
        "objective" => timed(&input, lstm, Lstm::objective),
        "jacobian" => timed(&input, lstm, Lstm::gradient),
        _ => Err(super::unknown("lstm", function)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, rand_vec};

    #[test]
    fn gradient_matches_finite_differences() {
        let (b, layers, chars) = (3, 2, 5);
        let bits: Vec<f64> = rand_vec(4, chars * b, 1.0)
            .iter()
            .map(|v| (*v > 0.0) as u8 as f64)
            .collect();
        let lstm = Lstm {
            b,
            main_params: rand_vec(1, 8 * b * layers, 1.0),
            extra_params: rand_vec(2, 3 * b, 1.0),
            state: rand_vec(3, 2 * b * layers, 1.0),
            sequence: bits,
        };
        let g = lstm.gradient();
        let n = lstm.main_params.len();
        let fm = |v: &[f64]| objective(v, &lstm.extra_params, &lstm.state, &lstm.sequence);
        let fe = |v: &[f64]| objective(&lstm.main_params, v, &lstm.state, &lstm.sequence);
        assert_close(
            &g[..n],
            &fd_gradient(fm, &lstm.main_params),
            "d/dmain_params",
        );
        assert_close(
            &g[n..],
            &fd_gradient(fe, &lstm.extra_params),
            "d/dextra_params",
        );
    }
}
