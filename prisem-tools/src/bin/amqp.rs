//! `amqp`: publish, consume, get, declare, bind, unbind, delete, purge and dump from the shell.
//! See `amqp --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use prisem_tools::cli::{run, Cli};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AMQP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 1.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                prisem_tools::exit::USAGE
            } else {
                0
            });
        }
    };
    ExitCode::from(run(cli))
}
