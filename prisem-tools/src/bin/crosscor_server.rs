//! `crosscor_server`: the PRISEM crosscor server. See `crosscor_server --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use prisem_tools::cli::servers::{crosscor, CrosscorServerArgs};

#[tokio::main]
async fn main() -> ExitCode {
    crosscor(CrosscorServerArgs::parse()).await
}
