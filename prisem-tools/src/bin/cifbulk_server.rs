//! `cifbulk_server`: the PRISEM cifbulk server. See `cifbulk_server --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use prisem_tools::cli::servers::{cifbulk, CifbulkServerArgs};

#[tokio::main]
async fn main() -> ExitCode {
    cifbulk(CifbulkServerArgs::parse()).await
}
