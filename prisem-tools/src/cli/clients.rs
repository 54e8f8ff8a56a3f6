//! The PRISEM clients: `anon_client`, `crosscor_client`, `cifbulk_client`, `rwfind_client`.
//! Each turns its options into the service's appdata and makes one call
//! ([`run_client`]).

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser};

use super::prisem::{run_client, CommonOpts, Output};
use super::when::WindowArgs;
use crate::identity::unix_now;
use crate::rpc::AppData;

/// Reads a file named on the command line (`-` for standard input).
pub fn read_input(path: &Path) -> Result<Vec<u8>, String> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("standard input: {e}"))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The data to send: the `-r` file, else standard input when it is not a terminal, else
/// nothing (the service then says it received no data).
fn read_data(path: Option<&Path>) -> Result<Vec<u8>, String> {
    match path {
        Some(p) => read_input(p),
        None if !std::io::stdin().is_terminal() => read_input(Path::new("-")),
        None => Ok(Vec::new()),
    }
}

fn read_optional(path: Option<&Path>) -> Result<Vec<u8>, String> {
    path.map_or(Ok(Vec::new()), read_input)
}

/// The text and the map that anon and crosscor send.
#[derive(Debug, Clone, Args)]
pub struct TextArgs {
    /// The text (`-` or absent: standard input).
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Option<PathBuf>,
    /// The network map (`CIDR_or_.domain|SiteID|AnonString` lines) [default: the server's].
    #[arg(short = 'm', long = "netmap", value_name = "MAP")]
    pub netmap: Option<PathBuf>,
}

impl TextArgs {
    /// `data` and `netmap`, with the usage flag (which sends no data).
    fn appdata(&self, usage: bool) -> Result<AppData, String> {
        let data = if usage {
            Vec::new()
        } else {
            read_data(self.read.as_deref())?
        };
        Ok(AppData::new()
            .with_file("data", &data)
            .with_file("netmap", &read_optional(self.netmap.as_deref())?)
            .with_flag("usage", usage))
    }
}

/// `anon_client`: anonymise the addresses and names in a text.
#[derive(Debug, Parser)]
#[command(name = "anon_client", version)]
pub struct AnonClientArgs {
    /// Common PRISEM options.
    #[command(flatten)]
    pub common: CommonOpts,
    /// The text and the map.
    #[command(flatten)]
    pub text: TextArgs,
    /// Append the per-site counts of distinct hosts.
    #[arg(short = 's', long)]
    pub stats: bool,
    /// Print the matches as JSON instead of the rewritten text.
    #[arg(short = 'J', long)]
    pub json: bool,
    /// Ask the service for its usage text.
    #[arg(short = 'u', long)]
    pub usage: bool,
}

impl AnonClientArgs {
    /// The request's appdata.
    pub fn appdata(&self) -> Result<AppData, String> {
        Ok(self
            .text
            .appdata(self.usage)?
            .with_flag("stats", self.stats)
            .with_flag("json", self.json))
    }
}

/// `crosscor_client`: correlate the addresses in a text with the sites of a map.
#[derive(Debug, Parser)]
#[command(name = "crosscor_client", version)]
pub struct CrosscorClientArgs {
    /// Common PRISEM options.
    #[command(flatten)]
    pub common: CommonOpts,
    /// The text and the map.
    #[command(flatten)]
    pub text: TextArgs,
    /// Whether the addresses are of a friend or a foe.
    #[arg(
        short = 'I',
        long = "iff",
        value_name = "friend|foe",
        default_value = "foe"
    )]
    pub iff: String,
    /// Include the per-site statistics.
    #[arg(short = 's', long)]
    pub stats: bool,
    /// Ask the service for its usage text.
    #[arg(short = 'u', long)]
    pub usage: bool,
}

impl CrosscorClientArgs {
    /// The request's appdata.
    pub fn appdata(&self) -> Result<AppData, String> {
        Ok(self
            .text
            .appdata(self.usage)?
            .with("iff", self.iff.as_str())
            .with_flag("stats", self.stats))
    }
}

/// The options cifbulk and rwfind share: a search file and a time window.
#[derive(Debug, Clone, Args)]
pub struct SearchArgs {
    /// The items to search for, one per line (`-` or absent: standard input).
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Option<PathBuf>,
    /// Search the last DAYS days.
    #[arg(short = 'D', long = "days", value_name = "DAYS")]
    pub days: Option<u32>,
    /// Start date (2014-01-03, 2014/01/03:13, 2014-01-03T13:00:00Z or Unix seconds; UTC).
    #[arg(short = 'S', long = "start-date", value_name = "DATE")]
    pub start_date: Option<String>,
    /// End date (a bare date means the end of that day).
    #[arg(short = 'E', long = "end-date", value_name = "DATE")]
    pub end_date: Option<String>,
    /// Start, in Unix seconds.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub stime: Option<i64>,
    /// End, in Unix seconds.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub etime: Option<i64>,
    /// Leave out the header.
    #[arg(short = 'H', long = "noheader")]
    pub noheader: bool,
    /// Ask the service for its usage text.
    #[arg(short = 'u', long)]
    pub usage: bool,
}

impl SearchArgs {
    /// The search file, window and flags as appdata.
    pub fn appdata(&self) -> Result<AppData, String> {
        let window = WindowArgs {
            days: self.days,
            start_date: self.start_date.clone(),
            end_date: self.end_date.clone(),
            stime: self.stime,
            etime: self.etime,
        }
        .window(unix_now())?;
        let search = if self.usage {
            Vec::new()
        } else {
            read_data(self.read.as_deref())?
        };
        let mut appdata = AppData::new()
            .with_file("searchfile", &search)
            .with_flag("noheader", self.noheader)
            .with_flag("usage", self.usage);
        if let Some(s) = window.stime {
            appdata = appdata.with("stime", s);
        }
        if let Some(e) = window.etime {
            appdata = appdata.with("etime", e);
        }
        Ok(appdata)
    }
}

/// `cifbulk_client`: look indicators up in the threat-intelligence store.
#[derive(Debug, Parser)]
#[command(name = "cifbulk_client", version)]
pub struct CifbulkClientArgs {
    /// Common PRISEM options.
    #[command(flatten)]
    pub common: CommonOpts,
    /// Search options.
    #[command(flatten)]
    pub search: SearchArgs,
}

/// `rwfind_client`: find the flows to and from addresses.
#[derive(Debug, Parser)]
#[command(name = "rwfind_client", version)]
pub struct RwfindClientArgs {
    /// Common PRISEM options.
    #[command(flatten)]
    pub common: CommonOpts,
    /// Search options.
    #[command(flatten)]
    pub search: SearchArgs,
    /// JSON output (otherwise the rwcut text table).
    #[arg(short = 'J', long)]
    pub json: bool,
    /// Add the top N address pairs by bytes.
    #[arg(short = 'T', long = "topn", value_name = "N", default_value_t = 0)]
    pub topn: u32,
    /// (added) The user name sent for the server's authorization check [default: the one
    /// name the original server accepted].
    #[arg(long, value_name = "NAME", default_value = "lancepanel")]
    pub user: String,
}

impl RwfindClientArgs {
    /// The request's appdata.
    pub fn appdata(&self) -> Result<AppData, String> {
        Ok(self
            .search
            .appdata()?
            .with("user", self.user.as_str())
            .with_flag("json", self.json)
            .with("topn", self.topn))
    }
}

async fn call(
    service: &str,
    common: &CommonOpts,
    appdata: Result<AppData, String>,
    output: Output,
) -> ExitCode {
    match appdata {
        Ok(a) => run_client(service, common, a, output).await,
        Err(e) => {
            eprintln!("{service}_client: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs `anon_client`.
pub async fn anon(args: AnonClientArgs) -> ExitCode {
    call("anon", &args.common, args.appdata(), Output::Both).await
}

/// Runs `crosscor_client`.
pub async fn crosscor(args: CrosscorClientArgs) -> ExitCode {
    call("crosscor", &args.common, args.appdata(), Output::Both).await
}

/// Runs `cifbulk_client` (default queue base `cifbulk_v1`, as deployed).
pub async fn cifbulk(mut args: CifbulkClientArgs) -> ExitCode {
    args.common
        .queue_base
        .get_or_insert_with(|| default_queue_base("cifbulk", "cifbulk_v1"));
    call(
        "cifbulk",
        &args.common,
        args.search.appdata(),
        Output::ByRetcode,
    )
    .await
}

/// Runs `rwfind_client`.
pub async fn rwfind(args: RwfindClientArgs) -> ExitCode {
    call("rwfind", &args.common, args.appdata(), Output::ByRetcode).await
}

/// The queue base when neither the command line nor the configuration names one: `fallback`,
/// unless `RPC_QUEUEBASE` or the configuration file sets it.
pub(crate) fn default_queue_base(program: &str, fallback: &str) -> String {
    let (cfg, _) = crate::config::RpcConfig::load(program);
    if cfg.queue_base == program {
        fallback.to_owned()
    } else {
        cfg.queue_base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rwfind_appdata_follows_the_contract() {
        let args = RwfindClientArgs::try_parse_from([
            "rwfind_client",
            "-r",
            "/dev/null",
            "--stime",
            "1388707200",
            "--etime",
            "1388793600",
            "-J",
            "-T",
            "5",
        ])
        .unwrap();
        let a = args.appdata().unwrap();
        assert_eq!(a.string("user").unwrap(), Some("lancepanel"));
        assert_eq!(a.string("json").unwrap(), Some("true"));
        assert_eq!(a.integer("topn").unwrap(), Some(5));
        assert_eq!(a.time("stime").unwrap(), Some(1_388_707_200));
        assert_eq!(a.string("noheader").unwrap(), Some("false"));
        assert_eq!(a.file("searchfile").unwrap(), b"");
    }

    #[test]
    fn backwards_dates_never_reach_the_server() {
        let args = CifbulkClientArgs::try_parse_from([
            "cifbulk_client",
            "-r",
            "/dev/null",
            "-S",
            "2014-01-04",
            "-E",
            "2014-01-03",
        ])
        .unwrap();
        assert!(args.search.appdata().unwrap_err().contains("after the end"));
    }

    #[test]
    fn anon_flags_are_strings() {
        let args =
            AnonClientArgs::try_parse_from(["anon_client", "-r", "/dev/null", "-s", "-J"]).unwrap();
        let a = args.appdata().unwrap();
        assert_eq!(a.string("stats").unwrap(), Some("true"));
        assert_eq!(a.string("json").unwrap(), Some("true"));
        assert_eq!(a.string("usage").unwrap(), Some("false"));
        assert_eq!(a.string("netmap").unwrap(), Some(""));
        let missing = AnonClientArgs::try_parse_from(["anon_client", "-r", "/no/such/file"])
            .unwrap()
            .appdata()
            .unwrap_err();
        assert!(missing.contains("/no/such/file"), "{missing}");
    }
}
