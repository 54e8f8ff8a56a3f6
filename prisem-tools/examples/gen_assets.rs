//! Writes the man pages and shell completions of every binary, from their clap definitions, for
//! the Debian package (`scripts/package` runs it before `cargo deb`):
//!
//! ```text
//! cargo run -p prisem-tools --example gen_assets -- OUT_DIR
//! ```
//!
//! writes `OUT_DIR/man/<bin>.1`, `OUT_DIR/completions/bash/<bin>`, `…/zsh/_<bin>` and
//! `…/fish/<bin>.fish`. It first checks that [`BINARIES`] names exactly the `[[bin]]` targets of
//! prisem-tools/Cargo.toml, and fails naming the difference otherwise: a new binary is one line
//! in that table.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Command, CommandFactory};
use clap_complete::Shell;

// The binaries whose command line is defined next to their `main`.
#[allow(dead_code)]
#[path = "../src/bin/backbone.rs"]
mod backbone;
#[allow(dead_code)]
#[path = "../src/bin/blockd.rs"]
mod blockd;
#[allow(dead_code)]
#[path = "../src/bin/cumdist.rs"]
mod cumdist;
#[allow(dead_code)]
#[path = "../src/bin/prisem_dashboard.rs"]
mod prisem_dashboard;
#[allow(dead_code)]
#[path = "../src/bin/sshwatch.rs"]
mod sshwatch;
#[allow(dead_code)]
#[path = "../src/bin/syslog_bridge.rs"]
mod syslog_bridge;

fn cmd<T: CommandFactory>() -> Command {
    T::command()
}

/// A binary's `[[bin]]` name and its command line.
type Binary = (&'static str, fn() -> Command);

/// Every binary of the package.
const BINARIES: &[Binary] = &[
    ("amqp", cmd::<prisem_tools::cli::Cli>),
    ("backbone", cmd::<backbone::Cli>),
    ("logmon", cmd::<prisem_tools::cli::logmon::LogmonArgs>),
    ("prisem", cmd::<prisem_tools::cli::umbrella::PrisemArgs>),
    ("rpcserver", cmd::<prisem_tools::cli::umbrella::ServeArgs>),
    (
        "anon_client",
        cmd::<prisem_tools::cli::clients::AnonClientArgs>,
    ),
    (
        "crosscor_client",
        cmd::<prisem_tools::cli::clients::CrosscorClientArgs>,
    ),
    (
        "cifbulk_client",
        cmd::<prisem_tools::cli::clients::CifbulkClientArgs>,
    ),
    (
        "rwfind_client",
        cmd::<prisem_tools::cli::clients::RwfindClientArgs>,
    ),
    (
        "anon_server",
        cmd::<prisem_tools::cli::servers::AnonServerArgs>,
    ),
    (
        "crosscor_server",
        cmd::<prisem_tools::cli::servers::CrosscorServerArgs>,
    ),
    (
        "cifbulk_server",
        cmd::<prisem_tools::cli::servers::CifbulkServerArgs>,
    ),
    (
        "rwfind_server",
        cmd::<prisem_tools::cli::servers::RwfindServerArgs>,
    ),
    ("cumdist", cmd::<cumdist::Args>),
    ("syslog-bridge", cmd::<syslog_bridge::Args>),
    ("sshwatch", cmd::<sshwatch::Args>),
    ("blockd", cmd::<blockd::Args>),
    ("prisem-dashboard", cmd::<prisem_dashboard::Args>),
];

/// The `[[bin]]` names of prisem-tools/Cargo.toml.
fn cargo_bins() -> Result<Vec<String>, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let manifest: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let bins = manifest
        .get("bin")
        .and_then(toml::Value::as_array)
        .ok_or_else(|| format!("{}: no [[bin]] targets", path.display()))?;
    bins.iter()
        .map(|b| {
            b.get("name")
                .and_then(toml::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("{}: a [[bin]] without a name", path.display()))
        })
        .collect()
}

/// The table and Cargo.toml name the same binaries.
fn check_table(bins: &[String]) -> Result<(), String> {
    let missing: Vec<&str> = bins
        .iter()
        .map(String::as_str)
        .filter(|b| !BINARIES.iter().any(|(n, _)| n == b))
        .collect();
    let extra: Vec<&str> = BINARIES
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !bins.iter().any(|b| b == n))
        .collect();
    if missing.is_empty() && extra.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "BINARIES in {} and the [[bin]] list disagree: no man page or completion for {missing:?}; \
             no [[bin]] for {extra:?}",
            file!()
        ))
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn generate(out: &Path) -> Result<(), String> {
    check_table(&cargo_bins()?)?;
    for (name, command) in BINARIES {
        let mut command = command()
            .name(*name)
            .bin_name(*name)
            .version(env!("CARGO_PKG_VERSION"));
        let mut page = Vec::new();
        clap_mangen::Man::new(command.clone())
            .render(&mut page)
            .map_err(|e| format!("{name}: cannot render the man page: {e}"))?;
        write(&out.join("man").join(format!("{name}.1")), &page)?;
        for (shell, dir, file) in [
            (Shell::Bash, "bash", (*name).to_owned()),
            (Shell::Zsh, "zsh", format!("_{name}")),
            (Shell::Fish, "fish", format!("{name}.fish")),
        ] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, *name, &mut script);
            write(&out.join("completions").join(dir).join(file), &script)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: gen_assets OUT_DIR");
        return ExitCode::from(2);
    };
    match generate(&PathBuf::from(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_assets: {e}");
            ExitCode::FAILURE
        }
    }
}
