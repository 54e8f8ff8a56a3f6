//! `backbone`: the Communications Backbone's HTTP API and bus, and `backbone client …` for
//! operators.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use prisem_tools::backbone::store::Store;
use prisem_tools::backbone::{Backbone, Settings};
use prisem_tools::cli::prisem::{connect, CommonOpts};
use prisem_tools::daemon::Shutdown;

/// The Communications Backbone: an HTTP API and a topic/broadcast bus over RabbitMQ.
#[derive(Debug, Parser)]
#[command(name = "backbone", version)]
pub(crate) struct Cli {
    #[command(flatten)]
    common: CommonOpts,

    /// Address the API listens on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8087")]
    listen: std::net::SocketAddr,

    /// The client database [default: $STATE_DIRECTORY/backbone.db or ./backbone.db].
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,

    #[command(flatten)]
    metrics: prisem_tools::metrics::MetricsOpts,

    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Manage clients in the database (the running service picks changes up within seconds).
    #[command(subcommand)]
    Client(ClientCmd),
}

#[derive(Debug, Subcommand)]
enum ClientCmd {
    /// Create a client and write its credentials file.
    Create {
        /// Client id (also its queues' prefix).
        client_id: String,
        /// Human-readable name.
        #[arg(long)]
        name: String,
        /// Subscription pattern (`*` one word, `#` zero or more).
        #[arg(long)]
        subscription: String,
        /// Credentials file to write [default: soar-config.json].
        #[arg(long, default_value = "soar-config.json")]
        output: PathBuf,
    },
    /// List clients as JSON.
    List,
    /// Delete a client.
    Delete {
        /// Client id.
        client_id: String,
    },
}

fn db_path(cli: &Cli) -> PathBuf {
    cli.db.clone().unwrap_or_else(|| {
        std::env::var_os("STATE_DIRECTORY")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join("backbone.db")
    })
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn client_cmd(store: &Store, cmd: ClientCmd, listen: std::net::SocketAddr) -> Result<(), String> {
    match cmd {
        ClientCmd::Create {
            client_id,
            name,
            subscription,
            output,
        } => {
            let (rec, secret) = store
                .create(&client_id, &name, &subscription)
                .map_err(|e| e.to_string())?;
            let creds = serde_json::json!({
                "api_url": format!("http://{listen}"),
                "client_id": rec.client_id,
                "client_name": rec.client_name,
                "subscription": rec.subscription,
                "secret": secret,
            });
            let dir = output.parent().filter(|p| !p.as_os_str().is_empty());
            let mut tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(std::path::Path::new(".")))
                .map_err(|e| format!("{}: {e}", output.display()))?;
            serde_json::to_writer_pretty(&mut tmp, &creds).map_err(|e| e.to_string())?;
            tmp.persist(&output)
                .map_err(|e| format!("{}: {e}", output.display()))?;
            println!("created {client_id:?}; credentials in {}", output.display());
        }
        ClientCmd::List => {
            let list = store.list().map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?
            );
        }
        ClientCmd::Delete { client_id } => {
            store
                .delete(&client_id)
                .map_err(|e| format!("{client_id:?}: {e}"))?;
            println!("deleted {client_id:?}");
        }
    }
    Ok(())
}

async fn serve(cli: Cli, store: Store) -> Result<(), String> {
    cli.metrics.start("backbone").await?;
    let cfg = cli.common.config("backbone");
    let conn = connect(&cfg, "backbone", &cli.common).await?;
    let hours: f64 = match env_nonempty("SOAR_TOKEN_LIFETIME") {
        Some(v) => v
            .parse()
            .ok()
            .filter(|h: &f64| h.is_finite() && *h > 0.0 && *h <= 24.0 * 365.0)
            .ok_or_else(|| {
                format!("SOAR_TOKEN_LIFETIME {v:?} is not a positive number of hours")
            })?,
        None => 1.0,
    };
    let settings = Settings {
        token_lifetime: Duration::from_secs_f64(hours * 3600.0),
        token_secret: env_nonempty("SOAR_TOKEN_SECRET"),
        admin_token: env_nonempty("BACKBONE_ADMIN_TOKEN"),
    };
    let bb = Backbone::start(store, conn, settings)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(t) = &bb.new_admin_token {
        // Shown once: only its hash is stored.
        println!("admin token (shown once, store it now): {t}");
    }
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?;
    // The address bound, so `--listen 127.0.0.1:0` says which port it got.
    let bound = listener.local_addr().unwrap_or(cli.listen);
    tracing::info!("listening on http://{bound}");
    let shutdown = Shutdown::on_signals().map_err(|e| e.to_string())?;
    prisem_tools::daemon::notify_ready();
    bb.serve(listener, shutdown)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut cli = Cli::parse();
    cli.common.init_tracing();
    let store = match Store::open(&db_path(&cli), argon2::Params::default()) {
        Ok(s) => s,
        Err(e) => {
            prisem_tools::daemon::fatal(
                "backbone",
                format_args!("{}: {e}", db_path(&cli).display()),
            );
            return ExitCode::FAILURE;
        }
    };
    let r = match cli.command.take() {
        Some(Cmd::Client(cmd)) => client_cmd(&store, cmd, cli.listen),
        None => serve(cli, store).await,
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            prisem_tools::daemon::fatal("backbone", e);
            ExitCode::FAILURE
        }
    }
}
