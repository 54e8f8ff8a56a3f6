//! The PRISEM servers: `anon_server`, `crosscor_server`, `cifbulk_server`, `rwfind_server`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use super::prisem::{run_server, CommonOpts, ServerOpts};
use crate::addr::Pseudonymizer;
use crate::services::anon::Anon;
use crate::services::crosscor::Crosscor;
use crate::services::Blocking;

/// `anon_server`: serve the anon service.
#[derive(Debug, Parser)]
#[command(name = "anon_server", version)]
pub struct AnonServerArgs {
    /// Common PRISEM options.
    #[command(flatten)]
    pub common: CommonOpts,
    /// Server options.
    #[command(flatten)]
    pub server: ServerOpts,
    /// [added] The network map used when a request brings none.
    #[arg(long, value_name = "MAP")]
    pub netmap: Option<PathBuf>,
    /// [added] Replace addresses outside the map by keyed, prefix-preserving pseudonyms; the key
    /// file holds 32 bytes, raw or as 64 hex digits. Off by default.
    #[arg(long, value_name = "KEYFILE")]
    pub pseudonymize: Option<PathBuf>,
}

/// `crosscor_server`: serve the crosscor service.
#[derive(Debug, Parser)]
#[command(name = "crosscor_server", version)]
pub struct CrosscorServerArgs {
    /// Common PRISEM options.
    #[command(flatten)]
    pub common: CommonOpts,
    /// Server options.
    #[command(flatten)]
    pub server: ServerOpts,
    /// [added] The network map used when a request brings none.
    #[arg(long, value_name = "MAP")]
    pub netmap: Option<PathBuf>,
}

fn with_map<S: crate::services::Process>(
    service: S,
    map: Option<&PathBuf>,
) -> Result<Blocking<S>, String> {
    let blocking = Blocking::new(service);
    match map {
        None => Ok(blocking),
        Some(p) => std::fs::read(p)
            .map(|m| blocking.with_default_netmap(&m))
            .map_err(|e| format!("{}: {e}", p.display())),
    }
}

fn fail(program: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("{program}: {e}");
    ExitCode::from(2)
}

async fn no_hook<S, L>(_: S, _: L) {}

/// Runs `anon_server`.
pub async fn anon(args: AnonServerArgs) -> ExitCode {
    let anon = match &args.pseudonymize {
        None => Anon::new(),
        Some(path) => match Pseudonymizer::load(path) {
            Ok(p) => Anon::with_pseudonymizer(p),
            Err(e) => return fail("anon_server", e),
        },
    };
    match with_map(anon, args.netmap.as_ref()) {
        Ok(service) => run_server("anon", &args.common, &args.server, service, no_hook).await,
        Err(e) => fail("anon_server", e),
    }
}

/// Runs `crosscor_server`.
pub async fn crosscor(args: CrosscorServerArgs) -> ExitCode {
    match with_map(Crosscor::new(), args.netmap.as_ref()) {
        Ok(service) => run_server("crosscor", &args.common, &args.server, service, no_hook).await,
        Err(e) => fail("crosscor_server", e),
    }
}
