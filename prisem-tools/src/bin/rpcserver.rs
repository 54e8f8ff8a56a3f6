//! `rpcserver`: serve a program described by a service file. See `rpcserver --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use prisem_tools::cli::umbrella::{serve, ServeArgs};

#[tokio::main]
async fn main() -> ExitCode {
    serve(ServeArgs::parse()).await
}
