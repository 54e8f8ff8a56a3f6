//! `crosscor_client`: the PRISEM crosscor client. See `crosscor_client --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use prisem_tools::cli::clients::{crosscor, CrosscorClientArgs};

#[tokio::main]
async fn main() -> ExitCode {
    crosscor(CrosscorClientArgs::parse()).await
}
