//! The PRISEM servers: `anon_server`, `crosscor_server`, `cifbulk_server`, `rwfind_server`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use super::prisem::{run_server, CommonOpts, ServerOpts};
use std::sync::Arc;

use crate::addr::Pseudonymizer;
use crate::daemon::Reload;
use crate::dimslog::Logger;
use crate::flows::service::RwFind;
use crate::intel::service::CifBulk;
use crate::reload::{LoadDir, SharedStore};
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
    /// (added) The network map used when a request brings none.
    #[arg(long, value_name = "MAP")]
    pub netmap: Option<PathBuf>,
    /// (added) Replace addresses outside the map by keyed, prefix-preserving pseudonyms; the key
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
    /// (added) The network map used when a request brings none.
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
    crate::daemon::fatal(program, e);
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

/// `cifbulk_server`: serve the cifbulk service (default queue base `cifbulk_v1`).
#[derive(Debug, Parser)]
#[command(name = "cifbulk_server", version)]
pub struct CifbulkServerArgs {
    /// Common PRISEM options.
    #[command(flatten)]
    pub common: CommonOpts,
    /// Server options.
    #[command(flatten)]
    pub server: ServerOpts,
    /// (added) The threat-intelligence store: a directory of CSV and JSON-lines feeds, reloaded
    /// on SIGHUP.
    #[arg(long, value_name = "DIR", required_unless_present = "cif_command")]
    pub store: Option<PathBuf>,
    /// (added) Front a real `cif` instead: run `PATH -n -q ITEM -p json` per item (no shell).
    #[arg(long, value_name = "PATH", conflicts_with = "store")]
    pub cif_command: Option<PathBuf>,
}

/// `rwfind_server`: serve the rwfind service.
#[derive(Debug, Parser)]
#[command(name = "rwfind_server", version)]
pub struct RwfindServerArgs {
    /// Common PRISEM options.
    #[command(flatten)]
    pub common: CommonOpts,
    /// Server options.
    #[command(flatten)]
    pub server: ServerOpts,
    /// (added) The flow store: a directory of rwcut pipe text and nfdump CSV files, reloaded on
    /// SIGHUP.
    #[arg(long, value_name = "DIR", required_unless_present = "rwfind_command")]
    pub flows: Option<PathBuf>,
    /// (added) Front a real SiLK-based `rwfind` instead (`PATH -r FILE [-S D] [-E D] [-J] [-T N]
    /// [-H]`, no shell).
    #[arg(long, value_name = "PATH", conflicts_with = "flows")]
    pub rwfind_command: Option<PathBuf>,
    /// (added) A user name the service accepts (repeat for several) [default: lancepanel, the
    /// original's one name].
    #[arg(long = "allow-user", value_name = "NAME")]
    pub allow_user: Vec<String>,
}

/// Opens a store, printing what its loading skipped.
fn open_store<T: LoadDir>(program: &str, dir: &Path) -> Result<Arc<SharedStore<T>>, String> {
    let store = SharedStore::<T>::open(dir)?;
    for w in store.get().warnings() {
        crate::daemon::warning(program, w);
    }
    Ok(Arc::new(store))
}

/// Reloads `store` on every SIGHUP, logging the outcome; a failed reload keeps the old store.
async fn reload_on_sighup<T: LoadDir>(store: Option<Arc<SharedStore<T>>>, logger: Arc<Logger>) {
    let Some(store) = store else {
        return;
    };
    let mut hup = match Reload::on_sighup() {
        Ok(h) => h,
        Err(e) => {
            logger.warning(&format!("cannot watch SIGHUP, no reloads: {e}"));
            return;
        }
    };
    loop {
        let reloading = hup.next().await;
        match store.reload() {
            Ok(fresh) => {
                for w in fresh.warnings() {
                    logger.warning(w);
                }
                logger.info(&format!(
                    "SIGHUP: store reloaded, {} entries",
                    fresh.entries()
                ));
            }
            Err(e) => logger.error(&format!(
                "SIGHUP: store not reloaded, keeping the old one: {e}"
            )),
        }
        drop(reloading);
    }
}

/// Runs `cifbulk_server`.
pub async fn cifbulk(mut args: CifbulkServerArgs) -> ExitCode {
    args.common
        .queue_base
        .get_or_insert_with(|| super::clients::default_queue_base("cifbulk", "cifbulk_v1"));
    let service = match (&args.store, &args.cif_command) {
        (_, Some(cmd)) => CifBulk::with_command(cmd.clone()),
        (Some(dir), None) => match open_store("cifbulk_server", dir) {
            Ok(store) => CifBulk::with_store(store),
            Err(e) => return fail("cifbulk_server", e),
        },
        (None, None) => return fail("cifbulk_server", "give --store DIR or --cif-command PATH"),
    };
    let hook = |svc: Arc<CifBulk>, logger| reload_on_sighup(svc.store().cloned(), logger);
    run_server("cifbulk", &args.common, &args.server, service, hook).await
}

/// Runs `rwfind_server`.
pub async fn rwfind(args: RwfindServerArgs) -> ExitCode {
    let service = match (&args.flows, &args.rwfind_command) {
        (_, Some(cmd)) => RwFind::with_command(cmd.clone()),
        (Some(dir), None) => match open_store("rwfind_server", dir) {
            Ok(store) => RwFind::with_store(store),
            Err(e) => return fail("rwfind_server", e),
        },
        (None, None) => return fail("rwfind_server", "give --flows DIR or --rwfind-command PATH"),
    };
    let service = if args.allow_user.is_empty() {
        service
    } else {
        service.with_users(args.allow_user.clone())
    };
    let hook = |svc: Arc<RwFind>, logger| reload_on_sighup(svc.store().cloned(), logger);
    run_server("rwfind", &args.common, &args.server, service, hook).await
}
