//! `tapeless-gradbench`: a GradBench tool.
//!
//! Without arguments it speaks the GradBench protocol: the eval's messages on
//! stdin, responses on stdout. With `MODULE FUNCTION INPUT.json` it evaluates
//! one function on one input file the way GradBench's C++ tools do: the
//! output on the first line, then one `{"name": "evaluate", ...}` timing per
//! line.

use std::io::{stdin, stdout, Write};
use tapeless_gradbench::{protocol, Tapeless};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [] => {
            protocol::serve(&Tapeless, stdin().lock(), stdout().lock()).map_err(|e| e.to_string())
        }
        [module, function, file] => evaluate_file(module, function, file),
        _ => Err("usage: tapeless-gradbench [MODULE FUNCTION INPUT.json]".to_string()),
    };
    if let Err(e) = result {
        eprintln!("tapeless-gradbench: {e}");
        std::process::exit(1);
    }
}

fn evaluate_file(module: &str, function: &str, file: &str) -> Result<(), String> {
    use protocol::Tool;
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let input = serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
    let evaluated = Tapeless.evaluate(module, function, input)?;
    let mut out = stdout().lock();
    let mut lines = vec![evaluated.output.to_string()];
    for t in &evaluated.timings {
        lines.push(serde_json::to_string(t).map_err(|e| e.to_string())?);
    }
    writeln!(out, "{}", lines.join("\n")).map_err(|e| e.to_string())
}
