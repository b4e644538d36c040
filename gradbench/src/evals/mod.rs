//! One module per GradBench eval, each with an `evaluate(function, input)`.

pub mod ba;
pub mod det;
pub mod gd;
pub mod gmm;
pub mod hello;
pub mod ht;
pub mod kmeans;
pub mod llsq;
pub mod lse;
pub mod lstm;
pub mod ode;
pub mod particle;
pub mod saddle;

use crate::protocol::Evaluated;
use serde_json::Value;

/// How an eval's functions are evaluated.
pub type Evaluate = fn(&str, Value) -> Result<Evaluated, String>;

/// The implemented modules, by GradBench name.
pub const MODULES: &[(&str, Evaluate)] = &[
    ("hello", hello::evaluate),
    ("lse", lse::evaluate),
    ("gmm", gmm::evaluate),
    ("ba", ba::evaluate),
    ("lstm", lstm::evaluate),
    ("llsq", llsq::evaluate),
    ("ode", ode::evaluate),
    ("det", det::evaluate),
    ("ht", ht::evaluate),
    ("kmeans", kmeans::evaluate),
    ("particle", particle::evaluate),
    ("saddle", saddle::evaluate),
];

/// The error for a function the eval does not define.
pub(crate) fn unknown(module: &str, function: &str) -> String {
    format!("module {module:?} has no function {function:?}")
}
