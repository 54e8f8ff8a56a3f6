//! The `amqp` command line: its options (clap derive; the `///` comments are the help text) and
//! the code that runs each subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit::{Failure, EXIT_STATUS_HELP};

mod admin;
pub mod clients;
pub mod conn;
mod consume;
mod dump_cmd;
mod get;
pub mod logmon;
mod output;
pub mod prisem;
mod progress;
mod publish;
pub mod servers;
mod session;
pub mod umbrella;
pub mod when;

pub use conn::ConnOpts;

/// Publish, consume, inspect and administer an AMQP 0-9-1 broker (RabbitMQ) from the shell.
///
/// Every subcommand takes the connection options; `--url` defaults to $AMQP_URL, then to
/// amqp://guest:guest@localhost:5672/. Messages are printed one JSON object per line:
/// {"exchange","routing_key","redelivered","delivery_tag","properties":{…},"body":"…"}
/// ("body_base64" instead of "body" when the body is not UTF-8).
#[derive(Debug, Parser)]
#[command(name = "amqp", version, after_help = EXIT_STATUS_HELP, propagate_version = true)]
pub struct Cli {
    /// Connection options.
    #[command(flatten)]
    pub conn: ConnOpts,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish a message (the body from --body, or standard input; with -l, one message per line).
    #[command(after_help = EXIT_STATUS_HELP)]
    Publish(Box<PublishArgs>),
    /// Consume messages and print them, or run a command for each one.
    ///
    /// Runs until --count messages were handled, standard output is closed, Ctrl-C (exit
    /// status 0), or the broker cancels the consumer, e.g. because the queue was deleted (2).
    #[command(after_help = EXIT_STATUS_HELP)]
    Consume(Box<ConsumeArgs>),
    /// Fetch one message from a queue (exit status 2 when the queue is empty).
    #[command(after_help = EXIT_STATUS_HELP)]
    Get(GetArgs),
    /// Declare a queue or an exchange.
    #[command(subcommand)]
    Declare(DeclareCommand),
    /// Bind a queue or an exchange to an exchange.
    #[command(subcommand)]
    Bind(BindCommand),
    /// Remove a binding.
    #[command(subcommand)]
    Unbind(BindCommand),
    /// Delete a queue or an exchange.
    #[command(subcommand)]
    Delete(DeleteCommand),
    /// Remove every ready message from a queue; prints how many were removed.
    #[command(after_help = EXIT_STATUS_HELP)]
    Purge(PurgeArgs),
    /// Decode a raw AMQP byte stream (one direction of a connection, as captured) and print one
    /// JSON line per frame. Needs no broker.
    #[command(after_help = DUMP_HELP)]
    Dump(DumpArgs),
}

const DUMP_HELP: &str = "\
Output, one object per line:
  {\"frame\":\"protocol-header\",\"version\":\"0-9-1\"}
  {\"frame\":\"method\",\"channel\":N,\"method\":\"basic.publish\",\"fields\":{…}}
  {\"frame\":\"header\",\"channel\":N,\"class\":60,\"body_size\":N,\"properties\":{…}}
  {\"frame\":\"body\",\"channel\":N,\"size\":N}
  {\"frame\":\"heartbeat\"}
  {\"error\":\"…\",\"offset\":N}   (then exit status 1)

Exit status: 0 the whole input decoded; 1 bad usage, unreadable file, or malformed input.";

/// How messages are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// One JSON object per message (the stable format).
    #[default]
    Json,
    /// The body only, followed by a newline.
    Body,
    /// The body exactly as it is, nothing added (binary-safe; what amqp-get prints).
    Raw,
}

/// `amqp publish`.
#[derive(Debug, Clone, Default, Args)]
pub struct PublishArgs {
    /// Exchange to publish to ("" is the default exchange, which routes by queue name).
    #[arg(short, long, default_value = "")]
    pub exchange: String,
    /// Routing key (for the default exchange: the queue name).
    #[arg(short, long, default_value = "")]
    pub routing_key: String,
    /// The message body; without it the body is read from standard input.
    #[arg(short, long)]
    pub body: Option<String>,
    /// Publish each line of standard input as its own message (without the newline).
    #[arg(short, long, conflicts_with = "body")]
    pub line_buffered: bool,
    /// content-type property, e.g. application/json.
    #[arg(short = 'C', long)]
    pub content_type: Option<String>,
    /// content-encoding property, e.g. gzip.
    #[arg(short = 'E', long)]
    pub content_encoding: Option<String>,
    /// Mark the message persistent (delivery-mode 2).
    #[arg(short, long)]
    pub persistent: bool,
    /// delivery-mode property, 1 (transient) or 2 (persistent).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2), conflicts_with = "persistent")]
    pub delivery_mode: Option<u8>,
    /// priority property, 0 to 255 (queues honour 0 to their x-max-priority).
    #[arg(long)]
    pub priority: Option<u8>,
    /// correlation-id property.
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// reply-to property.
    #[arg(short = 't', long)]
    pub reply_to: Option<String>,
    /// expiration property: per-message TTL in milliseconds, as text.
    #[arg(long)]
    pub expiration: Option<String>,
    /// message-id property.
    #[arg(long)]
    pub message_id: Option<String>,
    /// timestamp property: Unix seconds, or `now`.
    #[arg(long, value_name = "SECONDS|now")]
    pub timestamp: Option<String>,
    /// type property (the message type name).
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// user-id property (RabbitMQ checks it equals the connection's user).
    #[arg(long)]
    pub user_id: Option<String>,
    /// app-id property.
    #[arg(long)]
    pub app_id: Option<String>,
    /// A header, repeatable: KEY=VALUE (a string) or KEY:TYPE=VALUE with TYPE one of str, int,
    /// i8, i16, i32, i64, u8, u16, u32, float, f32, f64, bool, timestamp, decimal, bytes (base64),
    /// void. rabbitmq-c's "KEY: VALUE" form is accepted too.
    #[arg(short = 'H', long = "header", value_name = "KEY[:TYPE]=VALUE")]
    pub headers: Vec<String>,
    /// Ask the broker to return the message if no queue gets it (exit status 5 when returned;
    /// waits for confirms, as --confirm does, to know for sure).
    #[arg(long)]
    pub mandatory: bool,
    /// Wait for publisher confirms; exit status 5 if the broker nacks or returns a message.
    /// With confirms, a lost connection is recovered and unconfirmed messages are published
    /// again (at least once) unless --no-recovery is given.
    #[arg(long)]
    pub confirm: bool,
    /// Fail at once when the connection is lost instead of reconnecting (with --confirm or
    /// --mandatory; without them there is nothing to recover).
    #[arg(long)]
    pub no_recovery: bool,
    /// No progress bar (with -l, one is drawn on standard error when it is a terminal).
    #[arg(long)]
    pub quiet: bool,
}

/// `amqp consume`.
#[derive(Debug, Clone, Default, Args)]
pub struct ConsumeArgs {
    /// Queue to consume from; without it a server-named exclusive queue is declared (its name
    /// goes to standard error) and bound to --exchange.
    #[arg(short, long)]
    pub queue: Option<String>,
    /// Bind the queue to this exchange before consuming.
    #[arg(short, long)]
    pub exchange: Option<String>,
    /// Routing key for the binding; repeat for several bindings [default: ""].
    #[arg(short, long, requires = "exchange")]
    pub routing_key: Vec<String>,
    /// Declare the --queue (not durable) before consuming.
    #[arg(short, long)]
    pub declare: bool,
    /// Declare the queue exclusive to this connection (implies --declare).
    #[arg(short = 'x', long)]
    pub exclusive: bool,
    /// Consume in no-ack mode: the broker forgets each message once sent.
    #[arg(short = 'A', long)]
    pub no_ack: bool,
    /// How many unacknowledged messages the broker may send ahead (basic.qos).
    #[arg(short, long, visible_alias = "prefetch-count", value_name = "N")]
    pub prefetch: Option<u16>,
    /// Fail at once when the connection is lost instead of reconnecting and consuming on
    /// (messages not yet acknowledged are then redelivered by the broker).
    #[arg(long)]
    pub no_recovery: bool,
    /// Stop after this many messages.
    #[arg(short, long, value_name = "N")]
    pub count: Option<u64>,
    /// No progress bar (with --count, one is drawn on standard error when it is a terminal).
    #[arg(long)]
    pub quiet: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Run this command for each message, with the body on its standard input (no shell
    /// involved); ack when it exits 0, reject and requeue otherwise. The command sees the
    /// message in AMQP_EXCHANGE, AMQP_ROUTING_KEY, AMQP_DELIVERY_TAG, AMQP_REDELIVERED and
    /// AMQP_PROPERTIES (JSON) environment variables.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `amqp get`.
#[derive(Debug, Clone, Default, Args)]
pub struct GetArgs {
    /// Queue to fetch from.
    #[arg(short, long)]
    pub queue: String,
    /// Fetch in no-ack mode (the broker forgets the message at once).
    #[arg(short = 'A', long, conflicts_with = "requeue")]
    pub no_ack: bool,
    /// Put the message back after printing it (reject with requeue): a peek.
    #[arg(long)]
    pub requeue: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `amqp declare`.
#[derive(Debug, Subcommand)]
pub enum DeclareCommand {
    /// Declare a queue; prints its name (without a name, the broker makes one up).
    #[command(after_help = EXIT_STATUS_HELP)]
    Queue(DeclareQueueArgs),
    /// Declare an exchange.
    #[command(after_help = EXIT_STATUS_HELP)]
    Exchange(DeclareExchangeArgs),
}

/// A name given as an argument or with `-q` (rabbitmq-c style).
#[derive(Debug, Clone, Default, Args)]
pub struct QueueName {
    /// Queue name.
    #[arg(value_name = "QUEUE")]
    pub name: Option<String>,
    /// Queue name (the same as the argument).
    #[arg(
        short = 'q',
        long = "queue",
        conflicts_with = "name",
        value_name = "QUEUE"
    )]
    pub queue: Option<String>,
}

impl QueueName {
    /// The name given either way.
    pub fn get(&self) -> Option<&str> {
        self.name.as_deref().or(self.queue.as_deref())
    }

    fn required(&self) -> Result<&str, Failure> {
        self.get()
            .ok_or_else(|| Failure::usage("a queue name is required (QUEUE or -q QUEUE)"))
    }
}

/// `amqp declare queue`.
#[derive(Debug, Clone, Default, Args)]
pub struct DeclareQueueArgs {
    /// The queue; empty or absent: the broker makes up a name.
    #[command(flatten)]
    pub name: QueueName,
    /// Survive a broker restart.
    #[arg(short, long)]
    pub durable: bool,
    /// Only this connection may use it; deleted when the connection closes.
    #[arg(short = 'x', long)]
    pub exclusive: bool,
    /// Delete it when its last consumer goes away.
    #[arg(long)]
    pub auto_delete: bool,
    /// Only check that it exists (exit status 2 if not).
    #[arg(long)]
    pub passive: bool,
    /// A queue argument, repeatable: x-KEY=VALUE (integers and true/false are typed
    /// automatically) or x-KEY:TYPE=VALUE, e.g. --arg x-max-length=10.
    #[arg(long = "arg", value_name = "KEY[:TYPE]=VALUE")]
    pub args: Vec<String>,
    /// The queue type (x-queue-type): quorum and stream queues are replicated over a
    /// cluster's nodes and must be durable.
    #[arg(long, value_enum)]
    pub queue_type: Option<QueueTypeArg>,
    /// Print {"queue","message_count","consumer_count"} as JSON instead of the name.
    #[arg(long)]
    pub json: bool,
}

/// Queue types, as `--queue-type` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueueTypeArg {
    /// A classic queue, on one node.
    Classic,
    /// A quorum queue, replicated with Raft.
    Quorum,
    /// A stream, a replicated append-only log.
    Stream,
}

impl From<QueueTypeArg> for amqp_client::options::QueueType {
    fn from(t: QueueTypeArg) -> Self {
        match t {
            QueueTypeArg::Classic => Self::Classic,
            QueueTypeArg::Quorum => Self::Quorum,
            QueueTypeArg::Stream => Self::Stream,
        }
    }
}

/// Exchange types.
#[derive(Debug, Clone, Default, Args)]
pub struct DeclareExchangeArgs {
    /// The exchange.
    #[arg(value_name = "EXCHANGE")]
    pub name: String,
    /// Exchange type: direct, fanout, topic, headers, or a plugin's (x-…).
    #[arg(
        short = 't',
        long = "type",
        default_value = "direct",
        value_name = "TYPE"
    )]
    pub kind: String,
    /// Survive a broker restart.
    #[arg(short, long)]
    pub durable: bool,
    /// Delete it when its last binding goes away.
    #[arg(long)]
    pub auto_delete: bool,
    /// Clients cannot publish to it directly (only other exchanges can).
    #[arg(long)]
    pub internal: bool,
    /// Only check that it exists (exit status 2 if not).
    #[arg(long)]
    pub passive: bool,
    /// An exchange argument, repeatable: KEY=VALUE or KEY:TYPE=VALUE, e.g. --arg alternate-exchange=ae.
    #[arg(long = "arg", value_name = "KEY[:TYPE]=VALUE")]
    pub args: Vec<String>,
}

/// `amqp bind` / `amqp unbind`.
#[derive(Debug, Subcommand)]
pub enum BindCommand {
    /// A queue to (or from) an exchange.
    #[command(after_help = EXIT_STATUS_HELP)]
    Queue(BindArgs),
    /// An exchange (the destination) to (or from) another exchange (--exchange, the source).
    #[command(after_help = EXIT_STATUS_HELP)]
    Exchange(BindArgs),
}

/// What a binding connects.
#[derive(Debug, Clone, Default, Args)]
pub struct BindArgs {
    /// The destination: the queue, or for `exchange` the exchange that receives.
    #[arg(value_name = "DESTINATION")]
    pub destination: String,
    /// The source exchange.
    #[arg(short, long)]
    pub exchange: String,
    /// The binding key.
    #[arg(short, long, default_value = "")]
    pub routing_key: String,
    /// A binding argument, repeatable (e.g. for headers exchanges: x-match=all).
    #[arg(long = "arg", value_name = "KEY[:TYPE]=VALUE")]
    pub args: Vec<String>,
}

/// `amqp delete`.
#[derive(Debug, Subcommand)]
pub enum DeleteCommand {
    /// Delete a queue; prints how many messages it held.
    #[command(after_help = EXIT_STATUS_HELP)]
    Queue(DeleteQueueArgs),
    /// Delete an exchange.
    #[command(after_help = EXIT_STATUS_HELP)]
    Exchange(DeleteExchangeArgs),
}

/// `amqp delete queue`.
#[derive(Debug, Clone, Default, Args)]
pub struct DeleteQueueArgs {
    /// The queue.
    #[command(flatten)]
    pub name: QueueName,
    /// Only if it has no consumers (exit status 4 otherwise).
    #[arg(long)]
    pub if_unused: bool,
    /// Only if it holds no messages (exit status 4 otherwise).
    #[arg(long)]
    pub if_empty: bool,
}

/// `amqp delete exchange`.
#[derive(Debug, Clone, Default, Args)]
pub struct DeleteExchangeArgs {
    /// The exchange.
    #[arg(value_name = "EXCHANGE")]
    pub name: String,
    /// Only if it has no bindings (exit status 4 otherwise).
    #[arg(long)]
    pub if_unused: bool,
}

/// `amqp purge`.
#[derive(Debug, Clone, Default, Args)]
pub struct PurgeArgs {
    /// The queue.
    #[command(flatten)]
    pub name: QueueName,
}

/// `amqp dump`.
#[derive(Debug, Clone, Args)]
pub struct DumpArgs {
    /// The captured bytes; `-` or absent: standard input.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Largest frame accepted, in octets, framing included.
    #[arg(long, default_value_t = crate::dump::DEFAULT_FRAME_MAX,
          value_parser = clap::value_parser!(u32).range(8..=i64::from(crate::dump::MAX_FRAME_MAX)))]
    pub frame_max: u32,
    /// Also print each body frame's content ("body", or "body_base64" when not UTF-8).
    #[arg(long)]
    pub show_body: bool,
    /// Show SASL responses (which hold the password) instead of their length.
    #[arg(long)]
    pub show_secrets: bool,
}

impl Command {
    /// The subcommand's name, as typed (`publish`, `declare queue`…).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Publish(_) => "publish",
            Self::Consume(_) => "consume",
            Self::Get(_) => "get",
            Self::Declare(DeclareCommand::Queue(_)) => "declare queue",
            Self::Declare(DeclareCommand::Exchange(_)) => "declare exchange",
            Self::Bind(BindCommand::Queue(_)) => "bind queue",
            Self::Bind(BindCommand::Exchange(_)) => "bind exchange",
            Self::Unbind(BindCommand::Queue(_)) => "unbind queue",
            Self::Unbind(BindCommand::Exchange(_)) => "unbind exchange",
            Self::Delete(DeleteCommand::Queue(_)) => "delete queue",
            Self::Delete(DeleteCommand::Exchange(_)) => "delete exchange",
            Self::Purge(_) => "purge",
            Self::Dump(_) => "dump",
        }
    }
}

/// Runs a parsed command line to completion and returns the exit status.
///
/// Errors are printed to standard error as `amqp <command>: <message>`.
pub fn run(cli: Cli) -> u8 {
    let name = cli.command.name();
    let result = match cli.command {
        Command::Dump(args) => dump_cmd::run(&args),
        command => runtime().and_then(|rt| rt.block_on(run_async(&cli.conn, command))),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("amqp {name}: {failure}");
            failure.code
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::new(
                crate::exit::CONNECTION,
                format!("cannot start the runtime: {e}"),
            )
        })
}

async fn run_async(conn: &ConnOpts, command: Command) -> Result<u8, Failure> {
    let label = format!("amqp {}", command.name());
    let config = conn.config(&label)?;
    match command {
        Command::Publish(args) => publish::run(config, &args).await,
        Command::Consume(args) => consume::run(config, &args).await,
        Command::Get(args) => get::run(config, &args).await,
        Command::Declare(DeclareCommand::Queue(args)) => admin::declare_queue(config, &args).await,
        Command::Declare(DeclareCommand::Exchange(args)) => {
            admin::declare_exchange(config, &args).await
        }
        Command::Bind(BindCommand::Queue(args)) => admin::bind(config, &args, false, true).await,
        Command::Bind(BindCommand::Exchange(args)) => admin::bind(config, &args, true, true).await,
        Command::Unbind(BindCommand::Queue(args)) => admin::bind(config, &args, false, false).await,
        Command::Unbind(BindCommand::Exchange(args)) => {
            admin::bind(config, &args, true, false).await
        }
        Command::Delete(DeleteCommand::Queue(args)) => admin::delete_queue(config, &args).await,
        Command::Delete(DeleteCommand::Exchange(args)) => {
            admin::delete_exchange(config, &args).await
        }
        Command::Purge(args) => admin::purge(config, &args).await,
        Command::Dump(_) => Ok(crate::exit::OK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("amqp").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn publish_short_flags_match_rabbitmq_c() {
        let cli = parse(&[
            "publish",
            "-e",
            "ex",
            "-r",
            "rk",
            "-p",
            "-C",
            "text/plain",
            "-E",
            "gzip",
            "-t",
            "rq",
            "-H",
            "a: b",
            "-H",
            "n:int=1",
            "-b",
            "hi",
        ])
        .unwrap();
        let Command::Publish(p) = cli.command else {
            panic!("not publish")
        };
        assert_eq!((p.exchange.as_str(), p.routing_key.as_str()), ("ex", "rk"));
        assert!(p.persistent);
        assert_eq!(p.content_type.as_deref(), Some("text/plain"));
        assert_eq!(p.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(p.reply_to.as_deref(), Some("rq"));
        assert_eq!(p.headers, vec!["a: b", "n:int=1"]);
        assert_eq!(p.body.as_deref(), Some("hi"));
    }

    #[test]
    fn connection_options_go_before_or_after_the_subcommand() {
        let cli = parse(&["-s", "h1", "get", "-q", "q", "--vhost", "v", "--port", "1"]).unwrap();
        assert_eq!(cli.conn.server.as_deref(), Some("h1"));
        assert_eq!(cli.conn.vhost.as_deref(), Some("v"));
        assert_eq!(cli.conn.port, Some(1));
    }

    #[test]
    fn consume_command_after_double_dash() {
        let cli = parse(&[
            "consume", "-q", "q", "-A", "-c", "3", "-p", "5", "--", "wc", "-c",
        ])
        .unwrap();
        let Command::Consume(c) = cli.command else {
            panic!("not consume")
        };
        assert_eq!(c.command, vec!["wc", "-c"]);
        assert!(c.no_ack);
        assert_eq!((c.count, c.prefetch), (Some(3), Some(5)));
        assert!(parse(&["consume", "--prefetch-count", "2"]).is_ok());
        assert!(parse(&["consume", "-r", "k"]).is_err(), "-r needs -e");
    }

    #[test]
    fn usage_errors() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["publish", "-b", "x", "-l"]).is_err());
        assert!(parse(&["publish", "--delivery-mode", "3"]).is_err());
        assert!(parse(&["publish", "--priority", "256"]).is_err());
        assert!(parse(&["get"]).is_err());
        assert!(parse(&["declare", "queue", "a", "-q", "b"]).is_err());
        assert!(parse(&["--username", "u", "--authfile", "f", "get", "-q", "q"]).is_err());
        assert!(parse(&["dump", "--frame-max", "7"]).is_err());
        assert!(parse(&["dump", "--frame-max", "4294967295"]).is_err());
    }

    #[test]
    fn help_documents_exit_statuses() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit status"), "{help}");
        assert!(help.contains("5  a published message was nacked"), "{help}");
        let mut cmd = Cli::command();
        let get = cmd
            .find_subcommand_mut("get")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(get.contains("2  empty or not found"), "{get}");
    }

    #[test]
    fn queue_name_either_way() {
        let cli = parse(&["purge", "-q", "a"]).unwrap();
        let Command::Purge(p) = cli.command else {
            panic!()
        };
        assert_eq!(p.name.get(), Some("a"));
        let cli = parse(&["delete", "queue", "b", "--if-empty"]).unwrap();
        let Command::Delete(DeleteCommand::Queue(d)) = cli.command else {
            panic!()
        };
        assert_eq!(d.name.get(), Some("b"));
        assert!(d.if_empty);
    }
}
