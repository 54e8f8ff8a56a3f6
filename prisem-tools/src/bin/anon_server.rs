//! `anon_server`: the PRISEM anon server. See `anon_server --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use prisem_tools::cli::servers::{anon, AnonServerArgs};

#[tokio::main]
async fn main() -> ExitCode {
    anon(AnonServerArgs::parse()).await
}
