//! `tapeless-gradbench`: a GradBench tool. Reads the eval's messages on
//! stdin, answers on stdout.

use std::io::{stdin, stdout};

fn main() {
    let stdin = stdin().lock();
    let stdout = stdout().lock();
    if let Err(e) = tapeless_gradbench::protocol::serve(&tapeless_gradbench::Tapeless, stdin, stdout) {
        eprintln!("tapeless-gradbench: {e}");
        std::process::exit(1);
    }
}
