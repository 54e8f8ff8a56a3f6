//! `prisem`: call any PRISEM service, or serve a program from a service file. See
//! `prisem --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use prisem_tools::cli::umbrella::{run, PrisemArgs};

#[tokio::main]
async fn main() -> ExitCode {
    run(PrisemArgs::parse()).await
}
