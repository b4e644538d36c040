//! Arbitrary bytes as a checkpoint file: loading must return (an error or a
//! correct load), never panic, and a failed load must leave the model and
//! the optimizer as they were.
//!
//! The loaders read a path, so each input is written to one file (under
//! `/dev/shm` where there is one) first.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use tapeless_fuzz::{adam, bits, model, sgd};
use tapeless_runtime::checkpoint::{load, load_with_metadata, read_metadata};
use tapeless_runtime::optim::Optimizer;

thread_local! {
    static PATH: PathBuf = {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("tapeless-fuzz-{}.safetensors", std::process::id()))
    };
}

fuzz_target!(|data: &[u8]| {
    PATH.with(|path| {
        std::fs::write(path, data).unwrap();

        let mut m = model(9.0);
        let mut opt = adam();
        let (before, state) = (bits(&m), opt.state());
        if let Err(e) = load(path, &mut m, Some(&mut opt)) {
            assert_eq!(bits(&m), before, "failed load ({e}) changed the model");
            assert!(opt.state() == state, "failed load ({e}) changed Adam");
        }

        let mut m = model(9.0);
        let mut opt = sgd();
        let (before, state) = (bits(&m), opt.state());
        if let Err(e) = load(path, &mut m, Some(&mut opt)) {
            assert_eq!(bits(&m), before, "failed load ({e}) changed the model");
            assert!(opt.state() == state, "failed load ({e}) changed SGD");
        }

        let mut m = model(9.0);
        let before = bits(&m);
        if let Err(e) = load_with_metadata(path, &mut m, None) {
            assert_eq!(bits(&m), before, "failed load ({e}) changed the model");
        }

        let _ = read_metadata(path);
    });
});
