//! `rwfind_client`: the PRISEM rwfind client. See `rwfind_client --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use prisem_tools::cli::clients::{rwfind, RwfindClientArgs};

#[tokio::main]
async fn main() -> ExitCode {
    rwfind(RwfindClientArgs::parse()).await
}
