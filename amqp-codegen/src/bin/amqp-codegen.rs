//! `amqp-codegen FILE.xml`: prints the Rust generated from an AMQP XML protocol definition.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(path), None) = (args.next(), args.next()) else {
        eprintln!("usage: amqp-codegen FILE.xml");
        return ExitCode::FAILURE;
    };
    let shown = path.to_string_lossy().into_owned();
    let xml = match std::fs::read_to_string(&path) {
        Ok(xml) => xml,
        Err(e) => {
            eprintln!("amqp-codegen: cannot read {shown}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let spec = match amqp_codegen::parse(&xml) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("amqp-codegen: {shown}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match amqp_codegen::generate(&spec) {
        Ok(rust) => {
            print!("{rust}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("amqp-codegen: {shown}: {e}");
            ExitCode::FAILURE
        }
    }
}
