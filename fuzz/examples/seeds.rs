//! Writes the seed corpus: `corpus/<target>/seed-<name>` for every seed of
//! `amqp_wire_fuzz::seeds`, after running each through its target's checks.
//!
//! ```text
//! cargo run --example seeds            # (re)write the seed files
//! cargo run --example seeds -- --check # fail if a checked-in seed differs from the encoder's
//! ```
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;

use amqp_wire_fuzz::{check, seeds};

fn main() -> ExitCode {
    let check_only = std::env::args().any(|a| a == "--check");
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut stale = 0;
    for seed in seeds::seeds() {
        if !check(seed.target, &seed.bytes) {
            eprintln!("seed {} names an unknown target {}", seed.name, seed.target);
            return ExitCode::FAILURE;
        }
        let dir = corpus.join(seed.target);
        let path = dir.join(format!("seed-{}", seed.name));
        let current = std::fs::read(&path).ok();
        if current.as_deref() == Some(&seed.bytes[..]) {
            continue;
        }
        if check_only {
            eprintln!("stale: {}", path.display());
            stale += 1;
            continue;
        }
        if let Err(e) =
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &seed.bytes))
        {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {} ({} octets)", path.display(), seed.bytes.len());
    }
    if stale > 0 {
        eprintln!("{stale} seed file(s) differ from the encoder's output; run `cargo run --example seeds`");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
