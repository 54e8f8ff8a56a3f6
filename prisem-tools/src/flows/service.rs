//! The rwfind service: the flows to and from the searched addresses in a time window.
//!
//! Request appdata: `user` (checked against the server's allow-list, by default the one name the
//! original accepted, `lancepanel`), `searchfile` (base64, one IP address or CIDR per line;
//! blank lines and `#` comments skipped), `stime`, `etime` (Unix seconds, number or numeric
//! string; when absent, the store's first and last flow), `json` (`"true"` unless given
//! otherwise — the original's default), `noheader` (leaves out the text form's `rwfind -- date`
//! header and blank line), `topn` (0 by default; at most 10 000).
//!
//! JSON output (flow values and `flows_found` are strings, times and `topn` numbers):
//! `{"program":"rwfind","date":…,"sdate":"2014/01/03:00","edate":"2014/01/04:00","stime":…,
//! "etime":…,"flows_found":"N","flows":[{"sIP","dIP","sPort","dPort","pro","packets","bytes",
//! "flags","sTime","dur"}],"topn":N,"flow_stats":[{"sIP","dIP","Bytes","%_of_total","cumul_%"}]}`.
//! `flow_stats` holds the `topn` address pairs with the most bytes (percentages with six
//! decimals), empty when `topn` is 0. The text form is a header, `Found N flows for ITEMS`,
//! and an rwcut pipe table (then the top pairs when `topn` > 0).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use super::{Flow, SharedStore};
use crate::rpc::{AppData, Reply, Service, ServiceError};

/// The largest `topn` served.
pub const MAX_TOPN: i64 = 10_000;
/// The user names the original server accepted.
pub const DEFAULT_USERS: [&str; 1] = ["lancepanel"];

/// The usage text.
pub fn usage() -> &'static str {
    "rwfind service: finds the flows to and from addresses in the flow store\n\
     \n\
     appdata fields:\n\
     \x20 user        a user name the server accepts\n\
     \x20 searchfile  base64 text, one IP address or CIDR per line\n\
     \x20 stime       start of the window, Unix seconds (number or numeric string)\n\
     \x20 etime       end of the window, Unix seconds\n\
     \x20 json        \"true\" (default): JSON; \"false\": an rwcut text table\n\
     \x20 noheader    \"true\": no header line in the text table\n\
     \x20 topn        add the N address pairs with the most bytes (0 to 10000)\n\
     \x20 usage       \"true\": print this help and do nothing else\n"
}

#[derive(Debug, Clone)]
enum Source {
    Store(Arc<SharedStore>),
    Command(PathBuf),
}

/// The rwfind service.
#[derive(Debug, Clone)]
pub struct RwFind {
    source: Source,
    users: Vec<String>,
    /// Time limit of a fronted `rwfind` run.
    pub command_timeout: Duration,
}

/// A checked request.
struct Query {
    nets: Vec<IpNet>,
    items: Vec<String>,
    stime: Option<i64>,
    etime: Option<i64>,
    json: bool,
    noheader: bool,
    topn: usize,
}

fn silk_hour(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y/%m/%d:%H").to_string())
        .unwrap_or_default()
}

impl RwFind {
    /// Answers from `store`, for the original's one user.
    pub fn with_store(store: Arc<SharedStore>) -> Self {
        Self {
            source: Source::Store(store),
            users: DEFAULT_USERS.iter().map(|u| (*u).to_owned()).collect(),
            command_timeout: Duration::from_secs(300),
        }
    }

    /// Fronts a real SiLK-based `rwfind` at `path`, run as
    /// `PATH -r FILE [-S SDATE] [-E EDATE] [-J] [-T N] [-H]`: the client's own options, FILE a
    /// temporary file holding the checked search items; a fixed argv, never a shell.
    pub fn with_command(path: PathBuf) -> Self {
        Self {
            source: Source::Command(path),
            users: DEFAULT_USERS.iter().map(|u| (*u).to_owned()).collect(),
            command_timeout: Duration::from_secs(300),
        }
    }

    /// Accepts these user names instead of the default.
    pub fn with_users(mut self, users: Vec<String>) -> Self {
        self.users = users;
        self
    }

    /// The store, when answering from one.
    pub fn store(&self) -> Option<&Arc<SharedStore>> {
        match &self.source {
            Source::Store(s) => Some(s),
            Source::Command(_) => None,
        }
    }

    fn query(&self, appdata: &AppData) -> Result<Query, ServiceError> {
        let user = appdata.string("user")?.unwrap_or_default();
        if !self.users.iter().any(|u| u == user) {
            return Err(ServiceError::new(
                "Error: rwfind service user authorization failure",
            ));
        }
        let search = appdata.file("searchfile")?;
        let text = String::from_utf8_lossy(&search);
        let mut nets = Vec::new();
        let mut items = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let item = line.trim();
            if item.is_empty() || item.starts_with('#') {
                continue;
            }
            let net = item
                .parse::<IpNet>()
                .map(|n| n.trunc())
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    ServiceError::new(format!(
                        "Error: searchfile line {}: {:?} is not an IP address or CIDR",
                        n + 1,
                        item.chars().take(64).collect::<String>()
                    ))
                })?;
            nets.push(net);
            items.push(item.to_owned());
        }
        if nets.is_empty() {
            return Err(ServiceError::new(
                "Error: rwfind service received no search items",
            ));
        }
        let stime = appdata.time("stime")?;
        let etime = appdata.time("etime")?;
        if let (Some(s), Some(e)) = (stime, etime) {
            if s > e {
                return Err(ServiceError::new(format!(
                    "Error: stime ({s}) is after etime ({e})"
                )));
            }
        }
        let topn = appdata.integer("topn")?.unwrap_or(0);
        if !(0..=MAX_TOPN).contains(&topn) {
            return Err(ServiceError::new(format!(
                "Error: appdata field 'topn': {topn} is outside 0..={MAX_TOPN}"
            )));
        }
        let json = match appdata.get("json") {
            None | Some(Value::Null) => true,
            Some(_) => appdata.flag("json"),
        };
        Ok(Query {
            nets,
            items,
            stime,
            etime,
            json,
            noheader: appdata.flag("noheader"),
            topn: usize::try_from(topn).unwrap_or(0),
        })
    }

    fn answer(&self, store: &super::Store, q: &Query) -> Vec<u8> {
        let now = crate::identity::unix_now();
        let (first, last) = store.span().unwrap_or((now, now));
        let stime = q.stime.unwrap_or(first);
        let etime = q.etime.unwrap_or(last);
        let flows = store.search(&q.nets, stime, etime);
        let stats = top_pairs(&flows, q.topn);
        let date = crate::services::crosscor::rfc2822(now);
        if q.json {
            let flows_json: Vec<Value> = flows
                .iter()
                .map(|f| {
                    json!({
                        "sIP": f.sip.to_string(), "dIP": f.dip.to_string(),
                        "sPort": f.sport.to_string(), "dPort": f.dport.to_string(),
                        "pro": f.proto.to_string(), "packets": f.packets.to_string(),
                        "bytes": f.bytes.to_string(), "flags": f.flags,
                        "sTime": f.stime_text(), "dur": f.dur_text(),
                    })
                })
                .collect();
            let stats_json: Vec<Value> = stats
                .iter()
                .map(|s| {
                    json!({
                        "sIP": s.sip.to_string(), "dIP": s.dip.to_string(),
                        "Bytes": s.bytes.to_string(),
                        "%_of_total": format!("{:.6}", s.pct),
                        "cumul_%": format!("{:.6}", s.cumul),
                    })
                })
                .collect();
            let out = json!({
                "program": "rwfind",
                "date": date,
                "sdate": silk_hour(stime),
                "edate": silk_hour(etime),
                "stime": stime,
                "etime": etime,
                "flows_found": flows.len().to_string(),
                "flows": flows_json,
                "topn": q.topn,
                "flow_stats": stats_json,
            });
            let mut v = out.to_string().into_bytes();
            v.push(b'\n');
            return v;
        }
        let mut out = String::new();
        if !q.noheader {
            let _ = writeln!(out, "rwfind -- {date}\n");
        }
        let _ = writeln!(
            out,
            "Found {} flows for {} from {} to {}",
            flows.len(),
            q.items.join(", "),
            silk_hour(stime),
            silk_hour(etime)
        );
        out.push_str(&rwcut_table(&flows));
        if !stats.is_empty() {
            let _ = writeln!(out, "\nTop {} address pairs by bytes:", stats.len());
            let _ = writeln!(
                out,
                "{:>15}|{:>15}|{:>12}|{:>11}|{:>11}|",
                "sIP", "dIP", "Bytes", "%_of_total", "cumul_%"
            );
            for s in &stats {
                let _ = writeln!(
                    out,
                    "{:>15}|{:>15}|{:>12}|{:>11.6}|{:>11.6}|",
                    s.sip, s.dip, s.bytes, s.pct, s.cumul
                );
            }
        }
        out.into_bytes()
    }

    async fn run_command(&self, path: &PathBuf, q: &Query) -> Result<Reply, ServiceError> {
        let dir = tempfile::tempdir()
            .map_err(|e| ServiceError::new(format!("Error: no working directory: {e}")))?;
        let file = dir.path().join("searchfile");
        std::fs::write(&file, q.items.join("\n") + "\n")
            .map_err(|e| ServiceError::new(format!("Error: cannot write the search file: {e}")))?;
        let mut args: Vec<String> = vec!["-r".into(), file.display().to_string()];
        if let Some(s) = q.stime {
            args.extend(["-S".into(), silk_hour(s)]);
        }
        if let Some(e) = q.etime {
            args.extend(["-E".into(), silk_hour(e)]);
        }
        if q.json {
            args.push("-J".into());
        }
        if q.topn > 0 {
            args.extend(["-T".into(), q.topn.to_string()]);
        }
        if q.noheader {
            args.push("-H".into());
        }
        let mut child = tokio::process::Command::new(path)
            .args(&args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ServiceError::new(format!("Error: cannot run {}: {e}", path.display())))?;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let (Some(o), Some(e)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(ServiceError::new("Error: no output pipes"));
        };
        let work = async {
            let mut o = o.take(64 << 20);
            let mut e = e.take(1 << 20);
            let _ = tokio::join!(o.read_to_end(&mut out), e.read_to_end(&mut err));
            child.wait().await
        };
        let status = tokio::time::timeout(self.command_timeout, work)
            .await
            .map_err(|_| {
                ServiceError::with_retcode(124, "Error: rwfind ran too long and was stopped")
            })?
            .map_err(|e| ServiceError::new(format!("Error: {e}")))?;
        Ok(Reply {
            retcode: status.code().unwrap_or(1),
            stdout: out,
            stderr: err,
        })
    }
}

struct PairStat {
    sip: IpAddr,
    dip: IpAddr,
    bytes: u64,
    pct: f64,
    cumul: f64,
}

/// The `n` (source, destination) pairs with the most bytes, with their share of all bytes of
/// `flows` and the running total.
fn top_pairs(flows: &[&Flow], n: usize) -> Vec<PairStat> {
    if n == 0 {
        return Vec::new();
    }
    let mut pairs: HashMap<(IpAddr, IpAddr), u64> = HashMap::new();
    let mut total: u64 = 0;
    for f in flows {
        *pairs.entry((f.sip, f.dip)).or_default() += f.bytes;
        total = total.saturating_add(f.bytes);
    }
    let mut sorted: Vec<((IpAddr, IpAddr), u64)> = pairs.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut cumul = 0.0;
    sorted
        .into_iter()
        .take(n)
        .map(|((sip, dip), bytes)| {
            let pct = if total == 0 {
                0.0
            } else {
                bytes as f64 * 100.0 / total as f64
            };
            cumul += pct;
            PairStat {
                sip,
                dip,
                bytes,
                pct,
                cumul,
            }
        })
        .collect()
}

/// An rwcut pipe table: right-aligned sIP 15, dIP 15, sPort 5, dPort 5, pro 3, packets 10,
/// bytes 10, sTime 23, dur 9, each followed by `|`.
pub fn rwcut_table(flows: &[&Flow]) -> String {
    let mut out = format!(
        "{:>15}|{:>15}|{:>5}|{:>5}|{:>3}|{:>10}|{:>10}|{:>23}|{:>9}|\n",
        "sIP", "dIP", "sPort", "dPort", "pro", "packets", "bytes", "sTime", "dur"
    );
    for f in flows {
        let _ = writeln!(
            out,
            "{:>15}|{:>15}|{:>5}|{:>5}|{:>3}|{:>10}|{:>10}|{:>23}|{:>9}|",
            f.sip,
            f.dip,
            f.sport,
            f.dport,
            f.proto,
            f.packets,
            f.bytes,
            f.stime_text(),
            f.dur_text()
        );
    }
    out
}

impl Service for RwFind {
    async fn handle(&self, appdata: AppData) -> Result<Reply, ServiceError> {
        if appdata.flag("usage") {
            return Ok(Reply::ok(usage()));
        }
        let q = self.query(&appdata)?;
        match &self.source {
            Source::Store(store) => {
                let store = store.get();
                // Searching and formatting a large store is CPU work: off the runtime's threads.
                let this = self.clone();
                tokio::task::spawn_blocking(move || Reply::ok(this.answer(&store, &q)))
                    .await
                    .map_err(|_| ServiceError::new("Error: internal error while searching"))
            }
            Source::Command(path) => self.run_command(path, &q).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> RwFind {
        let dir = std::env::temp_dir().join(format!("rwfind-svc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.rw.txt"), super::super::tests::RWCUT).unwrap();
        RwFind::with_store(Arc::new(SharedStore::open(&dir).unwrap()))
    }

    fn request(items: &str) -> AppData {
        AppData::new()
            .with("user", "lancepanel")
            .with_file("searchfile", items.as_bytes())
            .with("stime", 1_388_707_200)
            .with("etime", "1388793600")
    }

    async fn call(s: &RwFind, a: AppData) -> Reply {
        s.handle(a).await.unwrap_or_else(|e| e.to_reply())
    }

    #[tokio::test]
    async fn json_in_the_contract_shape() {
        let s = service();
        let r = call(&s, request("203.0.113.200\n").with("topn", 5)).await;
        assert_eq!(r.retcode, 0, "{}", String::from_utf8_lossy(&r.stderr));
        let v: Value = serde_json::from_slice(&r.stdout).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "program",
                "date",
                "sdate",
                "edate",
                "stime",
                "etime",
                "flows_found",
                "flows",
                "topn",
                "flow_stats"
            ]
        );
        assert_eq!(v["sdate"], "2014/01/03:00");
        assert_eq!(v["edate"], "2014/01/04:00");
        assert_eq!(v["stime"], 1_388_707_200);
        assert_eq!(v["flows_found"], "2");
        assert_eq!(v["topn"], 5);
        assert_eq!(
            v["flows"][0],
            json!({"sIP":"203.0.113.200","dIP":"192.0.2.15","sPort":"52144","dPort":"22","pro":"6",
                   "packets":"12","bytes":"1800","flags":"FSPA","sTime":"2014/01/03T23:22:13.994","dur":"2.500"})
        );
        assert_eq!(
            v["flow_stats"],
            json!([
                {"sIP":"192.0.2.15","dIP":"203.0.113.200","Bytes":"4000","%_of_total":"68.965517","cumul_%":"68.965517"},
                {"sIP":"203.0.113.200","dIP":"192.0.2.15","Bytes":"1800","%_of_total":"31.034483","cumul_%":"100.000000"}
            ])
        );
        let zero: Value =
            serde_json::from_slice(&call(&s, request("203.0.113.200")).await.stdout).unwrap();
        assert_eq!(zero["flow_stats"], json!([]));
    }

    #[tokio::test]
    async fn text_table_has_the_rwcut_columns() {
        let s = service();
        let r = call(&s, request("192.0.2.0/24\n").with_flag("json", false)).await;
        let text = String::from_utf8(r.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("rwfind -- "), "{text}");
        assert_eq!(lines[1], "");
        assert_eq!(
            lines[2],
            "Found 2 flows for 192.0.2.0/24 from 2014/01/03:00 to 2014/01/04:00"
        );
        assert_eq!(
            lines[3],
            "            sIP|            dIP|sPort|dPort|pro|   packets|     bytes|                  sTime|      dur|"
        );
        assert_eq!(
            lines[4],
            "  203.0.113.200|     192.0.2.15|52144|   22|  6|        12|      1800|2014/01/03T23:22:13.994|    2.500|"
        );
        let r = call(
            &s,
            request("192.0.2.0/24\n")
                .with_flag("json", false)
                .with_flag("noheader", true),
        )
        .await;
        assert!(String::from_utf8(r.stdout)
            .unwrap()
            .starts_with("Found 2 flows"));
    }

    #[tokio::test]
    async fn error_replies_and_the_user_check() {
        let s = service();
        let cases = [
            (
                request("192.0.2.1").with("user", "mallory"),
                "Error: rwfind service user authorization failure\n",
            ),
            (
                request("192.0.2.1").with("topn", -1),
                "Error: appdata field 'topn': -1 is outside 0..=10000\n",
            ),
            (
                request("192.0.2.1").with("topn", "1e9"),
                "Error: appdata field 'topn': 1000000000 is outside 0..=10000\n",
            ),
            (
                request("192.0.2.1").with("stime", 5).with("etime", 4),
                "Error: stime (5) is after etime (4)\n",
            ),
            (
                request("192.0.2.1\n; rm -rf /\n"),
                "Error: searchfile line 2: \"; rm -rf /\" is not an IP address or CIDR\n",
            ),
            (
                request(""),
                "Error: rwfind service received no search items\n",
            ),
        ];
        for (req, want) in cases {
            let r = call(&s, req).await;
            assert_eq!(r.retcode, 1);
            assert_eq!(String::from_utf8_lossy(&r.stderr), want);
        }
        let other = s.clone().with_users(vec!["analyst".into()]);
        assert_eq!(
            call(&other, request("192.0.2.1").with("user", "analyst"))
                .await
                .retcode,
            0
        );
        let bad = call(&s, request("192.0.2.1").with("topn", "many")).await;
        assert!(String::from_utf8_lossy(&bad.stderr).contains("'topn'"));
        // Binary garbage in the search file: an error naming the line.
        let garbage = AppData::new()
            .with("user", "lancepanel")
            .with_file("searchfile", &[0xff, 0x00, 0x1b]);
        assert!(String::from_utf8_lossy(&call(&s, garbage).await.stderr).contains("line 1"));
    }

    #[tokio::test]
    async fn fronts_a_real_rwfind_with_a_fixed_argv() {
        let fake = crate::reload::fake_program(
            "rwfind",
            "#!/usr/bin/python3\nimport json, sys\nitems = open(sys.argv[2]).read().split()\nprint(json.dumps({\"argv\": sys.argv[3:], \"items\": items}))\n",
        );
        let s = RwFind::with_command(fake);
        let r = call(&s, request("203.0.113.0/24\n2001:db8::1\n").with("topn", 3)).await;
        assert_eq!(r.retcode, 0, "{}", String::from_utf8_lossy(&r.stderr));
        let v: Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(
            v["argv"],
            json!([
                "-S",
                "2014/01/03:00",
                "-E",
                "2014/01/04:00",
                "-J",
                "-T",
                "3"
            ])
        );
        assert_eq!(v["items"], json!(["203.0.113.0/24", "2001:db8::1"]));
    }
}
