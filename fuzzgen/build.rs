//! Writes a batch of random `#[differentiable]` programs to
//! `$OUT_DIR/programs.rs` for `tests/programs.rs`.
//!
//! `TAPELESS_FUZZ_SEED` picks the batch (default: days since 1970-01-01 UTC,
//! so a fresh CI build checks a new batch every day) and `TAPELESS_FUZZ_N` its
//! size (default 300); `TAPELESS_FUZZ_HUNT=1` also writes the constructs of
//! `gen::KNOWN_BUGS` (open bugs).

#[allow(dead_code)]
#[path = "src/gen.rs"]
mod gen;
#[allow(dead_code)]
#[path = "src/rng.rs"]
mod rng;

use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/gen.rs");
    println!("cargo:rerun-if-changed=src/rng.rs");
    println!("cargo:rerun-if-env-changed=TAPELESS_FUZZ_SEED");
    println!("cargo:rerun-if-env-changed=TAPELESS_FUZZ_N");
    println!("cargo:rerun-if-env-changed=TAPELESS_FUZZ_HUNT");
    let seed = match std::env::var("TAPELESS_FUZZ_SEED") {
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .unwrap_or_else(|e| panic!("TAPELESS_FUZZ_SEED=`{s}`: {e}")),
        Err(_) => {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
                / 86_400
        }
    };
    let n = match std::env::var("TAPELESS_FUZZ_N") {
        Ok(s) => s
            .trim()
            .parse::<usize>()
            .unwrap_or_else(|e| panic!("TAPELESS_FUZZ_N=`{s}`: {e}")),
        Err(_) => 300,
    };
    let hunt = std::env::var("TAPELESS_FUZZ_HUNT").is_ok_and(|v| v == "1");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("programs.rs"), gen::batch(seed, n, hunt)).expect("write programs.rs");
}
