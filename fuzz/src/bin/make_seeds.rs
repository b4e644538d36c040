//! Writes valid checkpoints to the folder given (default `seeds/`), to start
//! the fuzz corpus from: `cargo run --bin make_seeds`.

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "seeds".into());
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in tapeless_fuzz::seeds(dir) {
        std::fs::write(dir.join(format!("{name}.safetensors")), bytes).unwrap();
    }
}
