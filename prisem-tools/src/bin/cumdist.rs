//! `cumdist`: the cumulative distribution per site of crosscor's output (a file, or standard
//! input). See `cumdist --help`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use prisem_tools::cli::clients::read_input;

/// Print the cumulative distribution per site of crosscor's JSON output (or of the old
/// `{"matchingstats": {SITE: n, "ALLSITES": n}}` form): `SITE count pct_of_total cum_pct` per
/// site by descending count, then `ALLSITES total 100.00`.
#[derive(Debug, Parser)]
#[command(name = "cumdist", version)]
pub(crate) struct Args {
    /// crosscor's output [default: standard input].
    #[arg(value_name = "FILE", default_value = "-")]
    input: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = read_input(&args.input)
        .and_then(|input| prisem_tools::cumdist::render(&input).map_err(|e| e.to_string()));
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cumdist: {e}");
            ExitCode::from(1)
        }
    }
}
