//! The GradBench protocol: one JSON message per line on stdin, one JSON
//! response per line on stdout (see GradBench's `CONTRIBUTING.md`, "Protocol").
//!
//! The eval drives the session: `start`, then `define` of one module, then
//! `evaluate` messages, each followed by an `analysis` of its output. A tool
//! answers every message with its `id`; `define` and `evaluate` carry more.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

/// One named duration, as the protocol reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timing {
    /// `"evaluate"` for one run of the function; other names for other work.
    pub name: &'static str,
    /// The duration.
    pub nanoseconds: u64,
}

/// What a successful `evaluate` returns: the function's output and the
/// timing of every run.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// The output of the last run, in the eval's JSON shape.
    pub output: Value,
    /// One `"evaluate"` timing per run.
    pub timings: Vec<Timing>,
}

/// The `min_runs`/`min_seconds` fields many inputs carry: run the function
/// at least `min_runs` times and until the runs add up to `min_seconds`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Runs {
    /// Evaluate the function at least this many times.
    #[serde(default = "one")]
    pub min_runs: usize,
    /// Evaluate the function until the total time exceeds this many seconds.
    #[serde(default)]
    pub min_seconds: f64,
}

fn one() -> usize {
    1
}

impl Default for Runs {
    fn default() -> Self {
        Runs {
            min_runs: 1,
            min_seconds: 0.0,
        }
    }
}

impl Runs {
    /// Reads the fields from an input object (absent fields: one run).
    pub fn of(input: &Value) -> Runs {
        Runs::deserialize(input).unwrap_or_default()
    }

    /// Runs `f` as these fields ask, timing each run; returns the last
    /// result and the timings. Only `f` is timed: preparing its input and
    /// encoding its output are not.
    pub fn time<T>(self, mut f: impl FnMut() -> T) -> (T, Vec<Timing>) {
        let min_total = Duration::from_secs_f64(self.min_seconds.max(0.0));
        let mut timings = Vec::new();
        let mut total = Duration::ZERO;
        loop {
            let start = Instant::now();
            let out = std::hint::black_box(f());
            let elapsed = start.elapsed();
            total += elapsed;
            timings.push(Timing {
                name: "evaluate",
                nanoseconds: elapsed.as_nanos() as u64,
            });
            if timings.len() >= self.min_runs.max(1) && total >= min_total {
                return (out, timings);
            }
            drop(out);
        }
    }
}

/// Deserialises an eval's input, naming the module on failure.
pub fn parse<T: serde::de::DeserializeOwned>(input: Value) -> Result<T, String> {
    serde_json::from_value(input).map_err(|e| format!("invalid input: {e}"))
}

/// Times `f` on `input` as its `Runs` fields ask and encodes the last output.
pub fn timed<I, O: Serialize>(
    input: &Value,
    prepared: I,
    mut f: impl FnMut(&I) -> O,
) -> Result<Evaluated, String> {
    let (out, timings) = Runs::of(input).time(|| f(&prepared));
    let output = serde_json::to_value(out).map_err(|e| format!("cannot encode output: {e}"))?;
    Ok(Evaluated { output, timings })
}

/// A tool: which modules it defines and how it evaluates their functions.
pub trait Tool {
    /// Whether `module` is implemented.
    fn defines(&self, module: &str) -> bool;
    /// Evaluates `module::function` at `input`.
    fn evaluate(&self, module: &str, function: &str, input: Value) -> Result<Evaluated, String>;
}

/// The response to one message.
pub fn respond(tool: &impl Tool, message: &Value) -> Value {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let kind = message.get("kind").and_then(Value::as_str).unwrap_or("");
    let module = message.get("module").and_then(Value::as_str).unwrap_or("");
    match kind {
        "start" => json!({ "id": id, "tool": "tapeless" }),
        "define" => {
            if tool.defines(module) {
                json!({ "id": id, "success": true })
            } else {
                json!({ "id": id, "success": false, "error": format!("module {module:?} is not implemented") })
            }
        }
        "evaluate" => {
            let function = message
                .get("function")
                .and_then(Value::as_str)
                .unwrap_or("");
            let input = message.get("input").cloned().unwrap_or(Value::Null);
            match tool.evaluate(module, function, input) {
                Ok(e) => {
                    json!({ "id": id, "success": true, "output": e.output, "timings": e.timings })
                }
                Err(error) => json!({ "id": id, "success": false, "error": error }),
            }
        }
        _ => json!({ "id": id }),
    }
}

/// Answers messages from `input` on `output` until `input` ends.
pub fn serve(tool: &impl Tool, input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let response = match serde_json::from_str::<Value>(&line) {
            Ok(message) => respond(tool, &message),
            Err(e) => json!({ "id": Value::Null, "error": format!("invalid message: {e}") }),
        };
        serde_json::to_writer(&mut output, &response)?;
        output.write_all(b"\n")?;
        output.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tapeless;

    #[test]
    fn a_session() {
        let input = [
            r#"{"id": 0, "kind": "start", "eval": "hello"}"#,
            r#"{"id": 1, "kind": "define", "module": "hello"}"#,
            r#"{"id": 2, "kind": "evaluate", "module": "hello", "function": "double", "input": 3.0}"#,
            r#"{"id": 3, "kind": "analysis", "of": 2, "valid": true}"#,
            r#"{"id": 4, "kind": "define", "module": "nope"}"#,
            r#"{"id": 5, "kind": "evaluate", "module": "lse", "function": "gradient", "input": {"x": [0.0, 0.0], "min_runs": 3, "min_seconds": 0}}"#,
        ]
        .join("\n");
        let mut out = Vec::new();
        serve(&Tapeless, input.as_bytes(), &mut out).unwrap();
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0], json!({"id": 0, "tool": "tapeless"}));
        assert_eq!(lines[1], json!({"id": 1, "success": true}));
        assert_eq!(lines[2]["output"], json!(6.0));
        assert_eq!(lines[2]["timings"][0]["name"], json!("evaluate"));
        assert_eq!(lines[3], json!({"id": 3}));
        assert_eq!(lines[4]["success"], json!(false));
        assert_eq!(lines[5]["output"], json!([0.5, 0.5]));
        assert_eq!(lines[5]["timings"].as_array().unwrap().len(), 3);
    }
}
