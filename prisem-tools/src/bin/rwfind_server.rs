//! `rwfind_server`: the PRISEM rwfind server. See `rwfind_server --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use prisem_tools::cli::servers::{rwfind, RwfindServerArgs};

#[tokio::main]
async fn main() -> ExitCode {
    rwfind(RwfindServerArgs::parse()).await
}
