//! Generates `$OUT_DIR/amqp091.rs` with `amqp-codegen` from the definition it ships
//! (`amqp_codegen::AMQP_0_9_1_XML`, a copy of the workspace's `spec/amqp0-9-1.xml`), or from
//! the file named by `$AMQP_SPEC`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    println!("cargo::rerun-if-env-changed=AMQP_SPEC");
    let fail = |msg: String| {
        eprintln!("error: {msg}");
        ExitCode::FAILURE
    };
    let (path, xml) = match std::env::var_os("AMQP_SPEC") {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo::rerun-if-changed={}", path.display());
            match std::fs::read_to_string(&path) {
                Ok(xml) => (path, xml),
                Err(e) => {
                    return fail(format!(
                        "cannot read the AMQP protocol definition {} (from AMQP_SPEC): {e}",
                        path.display()
                    ))
                }
            }
        }
        None => (
            PathBuf::from("amqp-codegen's amqp0-9-1.xml"),
            amqp_codegen::AMQP_0_9_1_XML.to_owned(),
        ),
    };
    println!("cargo::rerun-if-changed=build.rs");
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
