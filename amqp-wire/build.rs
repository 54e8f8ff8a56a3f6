//! Generates `$OUT_DIR/amqp091.rs` from `../spec/amqp0-9-1.xml`, or from the file named by
//! `$AMQP_SPEC`, with `amqp-codegen`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    println!("cargo::rerun-if-env-changed=AMQP_SPEC");
    let path = match std::env::var_os("AMQP_SPEC") {
        Some(path) => PathBuf::from(path),
        None => {
            let manifest = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default();
            PathBuf::from(manifest).join("../spec/amqp0-9-1.xml")
        }
    };
    println!("cargo::rerun-if-changed={}", path.display());
    let fail = |msg: String| {
        eprintln!("error: {msg}");
        ExitCode::FAILURE
    };
    let xml = match std::fs::read_to_string(&path) {
        Ok(xml) => xml,
        Err(e) => {
            return fail(format!(
                "cannot read the AMQP protocol definition {}: {e} (set AMQP_SPEC to use another \
                 file)",
                path.display()
            ))
        }
    };
    let spec = match amqp_codegen::parse(&xml) {
        Ok(spec) => spec,
        Err(e) => return fail(format!("{}: {e}", path.display())),
    };
    let rust = match amqp_codegen::generate(&spec) {
        Ok(rust) => rust,
        Err(e) => return fail(format!("{}: {e}", path.display())),
    };
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        return fail("OUT_DIR is not set; run this through cargo".to_owned());
    };
    let out = PathBuf::from(out_dir).join("amqp091.rs");
    if let Err(e) = std::fs::write(&out, rust) {
        return fail(format!("cannot write {}: {e}", out.display()));
    }
    ExitCode::SUCCESS
}
