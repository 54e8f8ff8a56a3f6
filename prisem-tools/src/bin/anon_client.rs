//! `anon_client`: the PRISEM anon client. See `anon_client --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use prisem_tools::cli::clients::{anon, AnonClientArgs};

#[tokio::main]
async fn main() -> ExitCode {
    anon(AnonClientArgs::parse()).await
}
