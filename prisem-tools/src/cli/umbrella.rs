//! `prisem`: call any PRISEM service, or serve a command described by a service file.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use super::prisem::{run_client, run_server, CommonOpts, Output, ServerOpts};
use crate::command::{CommandService, ServiceSpec};
use crate::rpc::AppData;

/// Call any PRISEM service, or serve a program described by a service file.
#[derive(Debug, Parser)]
#[command(name = "prisem", version)]
pub struct PrisemArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PrisemCommand,
}

/// The subcommands of `prisem`.
#[derive(Debug, Subcommand)]
pub enum PrisemCommand {
    /// Call SERVICE (queue `<SERVICE>_0.5.5`, or `-q BASE`) with an appdata object; print the
    /// reply's stdout and stderr and exit with its retcode.
    Call(CallArgs),
    /// Serve the program a service file describes (the same as `rpcserver FILE`).
    Serve(ServeArgs),
}

/// `rpcserver`: serve a program described by a service file on `<queue_base>_0.5.5`, every
/// request field checked against its declared type, the program run with a fixed argv (never a
/// shell), a scrubbed environment, a private working directory and time and output limits.
#[derive(Debug, Parser)]
#[command(name = "rpcserver", version)]
pub struct ServeArgs {
    /// The service file (YAML, or TOML for a .toml file).
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,

    /// Common PRISEM options (-q overrides the file's queue_base).
    #[command(flatten)]
    pub common: CommonOpts,

    /// Server options.
    #[command(flatten)]
    pub server: ServerOpts,
}

/// Runs `rpcserver` / `prisem serve`.
pub async fn serve(args: ServeArgs) -> ExitCode {
    let service = ServiceSpec::load(&args.file)
        .map_err(|e| e.to_string())
        .and_then(|spec| CommandService::new(spec).map_err(|e| e.to_string()));
    match service {
        Ok(service) => {
            let base = service.spec().queue_base.clone();
            let hook = |_, _| async {};
            run_server(&base, &args.common, &args.server, service, hook).await
        }
        Err(e) => {
            crate::daemon::fatal("rpcserver", e);
            ExitCode::from(2)
        }
    }
}

/// Arguments of `prisem call`.
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The service name (the queue base unless -q says otherwise).
    #[arg(value_name = "SERVICE")]
    pub service: String,

    /// The request's appdata, a JSON object (`{"data": "<base64>", "stats": "true"}`).
    #[arg(long, value_name = "JSON", default_value = "{}", value_parser = parse_appdata)]
    pub appdata: AppData,

    /// How to print the reply: `both` streams always, or stdout only when retcode is 0 and
    /// stderr otherwise.
    #[arg(long, value_enum, default_value_t = Print::Both)]
    pub print: Print,

    /// Common PRISEM options.
    #[command(flatten)]
    pub common: CommonOpts,
}

/// How `prisem call` prints a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Print {
    /// Standard output and standard error, always.
    Both,
    /// Standard output when retcode is 0, else standard error.
    ByRetcode,
}

/// Parses an appdata JSON object.
pub fn parse_appdata(s: &str) -> Result<AppData, String> {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(serde_json::Value::Object(map)) => Ok(AppData(map)),
        Ok(_) => Err("appdata must be a JSON object".into()),
        Err(e) => Err(format!("not valid JSON: {e}")),
    }
}

/// Runs `prisem`.
pub async fn run(args: PrisemArgs) -> ExitCode {
    match args.command {
        PrisemCommand::Call(call) => {
            let mut common = call.common;
            common
                .queue_base
                .get_or_insert_with(|| call.service.clone());
            let output = match call.print {
                Print::Both => Output::Both,
                Print::ByRetcode => Output::ByRetcode,
            };
            run_client(&call.service, &common, call.appdata, output).await
        }
        PrisemCommand::Serve(args) => serve(args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appdata_must_be_a_json_object() {
        assert!(parse_appdata(r#"{"a":"b"}"#).is_ok());
        assert!(parse_appdata("[1]").unwrap_err().contains("object"));
        assert!(parse_appdata("{").unwrap_err().contains("not valid JSON"));
    }
}
