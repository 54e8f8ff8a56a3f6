//! `logmon`: monitor the PRISEM log exchange or send lines to it. See `logmon --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use prisem_tools::cli::logmon::{run, LogmonArgs};

#[tokio::main]
async fn main() -> ExitCode {
    run(LogmonArgs::parse()).await
}
