//! Prints generated programs: `fuzzgen SEED [INDEX]` (the whole batch of
//! `TAPELESS_FUZZ_N` or 300 programs, or one program), to read or minimise a
//! failure the test reported.

use fuzzgen::gen;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: fuzzgen SEED [INDEX]";
    let seed: u64 = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{usage}"));
    let hunt = std::env::var("TAPELESS_FUZZ_HUNT").is_ok_and(|v| v == "1");
    match args.get(1) {
        Some(i) => {
            let i: usize = i.parse().unwrap_or_else(|_| panic!("{usage}"));
            let p = gen::program(seed, i, hunt);
            println!(
                "// seed {seed}, program {i}: parameters {:?}, output {:?}",
                p.params, p.out
            );
            print!("{}", p.source);
        }
        None => {
            let n = std::env::var("TAPELESS_FUZZ_N")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(300);
            print!("{}", gen::batch(seed, n, hunt));
        }
    }
}
