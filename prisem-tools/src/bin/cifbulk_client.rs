//! `cifbulk_client`: the PRISEM cifbulk client. See `cifbulk_client --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use prisem_tools::cli::clients::{cifbulk, CifbulkClientArgs};

#[tokio::main]
async fn main() -> ExitCode {
    cifbulk(CifbulkClientArgs::parse()).await
}
