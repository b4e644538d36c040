//! `hello`: `square(x) = x²` and its derivative `double(x) = 2x`. Inputs and
//! outputs are bare numbers, evaluated once.

use crate::protocol::{parse, timed, Evaluated};
use serde_json::Value;
use tapeless::differentiable;

/// x².
#[differentiable]
pub fn square(x: f64) -> f64 {
    x * x
}

/// Evaluates `square` or `double` (the gradient of `square`).
pub fn evaluate(function: &str, input: Value) -> Result<Evaluated, String> {
    let x: f64 = parse(input.clone())?;
    match function {
        "square" => timed(&input, x, |&x| square(x)),
        "double" => timed(&input, x, |&x| square_grad(x).1),
        _ => Err(super::unknown("hello", function)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_is_the_derivative_of_square() {
        for x in [-3.0, 0.0, 0.5, 7.0] {
            assert_eq!(square_grad(x), (x * x, 2.0 * x));
        }
    }
}
