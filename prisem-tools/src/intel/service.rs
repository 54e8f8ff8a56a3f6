//! The cifbulk service: looks each line of `searchfile` up in the store (or in a real `cif`).
//!
//! Request appdata: `searchfile` (base64, one indicator per line; blank lines and `#` comments
//! skipped), `stime`, `etime` (Unix seconds, a number or a numeric string), `noheader` (accepted
//! for the originals' clients; the output is JSON, which has no header), `usage`.
//!
//! Standard output: `{"program":"cifbulk","time":<int>,"iff":"foe","results":[{"searchitem":
//! ITEM,"results":[RECORD…]}]}` with one entry per search item in input order. A record is
//! `{"address","type","confidence","detecttime","reporttime","source","description"}` (the
//! CIF v1 names; `detecttime` and `reporttime` are the first and last time seen, RFC 3339, or
//! `null` when the feed gave none). An item that is no indicator gets `"error"` instead of
//! `"results"`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use super::{Item, Record, SharedStore};
use crate::rpc::{AppData, Reply, Service, ServiceError};

/// The usage text (`usage: "true"`).
pub fn usage() -> &'static str {
    "cifbulk service: looks indicators up in the threat-intelligence store\n\
     \n\
     appdata fields:\n\
     \x20 searchfile  base64 text, one indicator per line (IPv4, IPv6, CIDR, domain, URL, hash)\n\
     \x20 stime       start of the window, Unix seconds (number or numeric string)\n\
     \x20 etime       end of the window, Unix seconds\n\
     \x20 noheader    \"true\": accepted; the output is JSON and has no header\n\
     \x20 usage       \"true\": print this help and do nothing else\n\
     \n\
     output: {\"program\":\"cifbulk\",\"time\":T,\"iff\":\"foe\",\"results\":[{\"searchitem\":ITEM,\"results\":[…]}]}\n"
}

/// Where the answers come from.
#[derive(Debug, Clone)]
enum Source {
    Store(Arc<SharedStore>),
    Command(PathBuf),
}

/// The cifbulk service.
#[derive(Debug, Clone)]
pub struct CifBulk {
    source: Source,
    /// The time limit of one `cif` run.
    pub command_timeout: Duration,
}

/// Most octets of one `cif` run's output that are read.
const CIF_OUTPUT_LIMIT: usize = 16 << 20;

impl CifBulk {
    /// Answers from `store`.
    pub fn with_store(store: Arc<SharedStore>) -> Self {
        Self {
            source: Source::Store(store),
            command_timeout: Duration::from_secs(30),
        }
    }

    /// Answers by running `PATH -n -q ITEM -p json` per item (a fixed argv, no shell).
    pub fn with_command(path: PathBuf) -> Self {
        Self {
            source: Source::Command(path),
            command_timeout: Duration::from_secs(30),
        }
    }

    /// The store, when answering from one.
    pub fn store(&self) -> Option<&Arc<SharedStore>> {
        match &self.source {
            Source::Store(s) => Some(s),
            Source::Command(_) => None,
        }
    }

    async fn results(&self, item: &str, stime: Option<i64>, etime: Option<i64>) -> Value {
        let Some(parsed) = Item::classify(item) else {
            return json!({"searchitem": item, "error": "not an IP address, network, domain, URL or hash"});
        };
        match &self.source {
            Source::Store(store) => {
                let store = store.get();
                let hits: Vec<Value> = store
                    .lookup(&parsed, stime, etime)
                    .into_iter()
                    .map(cif_record)
                    .collect();
                json!({"searchitem": item, "results": hits})
            }
            Source::Command(path) => match self.run_cif(path, item).await {
                Ok(results) => json!({"searchitem": item, "results": results}),
                Err(e) => json!({"searchitem": item, "error": e}),
            },
        }
    }

    /// Runs the real `cif` for one (already classified, so option-free) item.
    async fn run_cif(&self, path: &PathBuf, item: &str) -> Result<Vec<Value>, String> {
        let mut child = tokio::process::Command::new(path)
            .args(["-n", "-q", item, "-p", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
        let mut out = Vec::new();
        let stdout = child.stdout.take().ok_or("no output pipe")?;
        let read = async {
            let mut limited = stdout.take(CIF_OUTPUT_LIMIT as u64);
            let _ = limited.read_to_end(&mut out).await;
            child.wait().await
        };
        let status = tokio::time::timeout(self.command_timeout, read)
            .await
            .map_err(|_| format!("cif ran longer than {} s", self.command_timeout.as_secs()))?
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("cif exited with {status}"));
        }
        // cif -p json prints an array, an object, or one object per line.
        let text = String::from_utf8_lossy(&out);
        match serde_json::from_str::<Value>(text.trim()) {
            Ok(Value::Array(v)) => Ok(v),
            Ok(Value::Null) => Ok(Vec::new()),
            Ok(other) => Ok(vec![other]),
            Err(_) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    serde_json::from_str(l).map_err(|e| format!("cif output is not JSON: {e}"))
                })
                .collect(),
        }
    }
}

fn iso(t: i64) -> Value {
    if t == i64::MIN || t == i64::MAX {
        return Value::Null;
    }
    chrono::DateTime::from_timestamp(t, 0).map_or(Value::Null, |d| {
        Value::String(d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    })
}

fn cif_record(r: &Record) -> Value {
    json!({
        "address": r.indicator,
        "type": r.kind,
        "confidence": r.confidence,
        "detecttime": iso(r.first_seen),
        "reporttime": iso(r.last_seen),
        "source": r.source,
        "description": r.description,
    })
}

impl Service for CifBulk {
    async fn handle(&self, appdata: AppData) -> Result<Reply, ServiceError> {
        if appdata.flag("usage") {
            return Ok(Reply::ok(usage()));
        }
        let search = appdata.file("searchfile")?;
        let stime = appdata.time("stime")?;
        let etime = appdata.time("etime")?;
        if let (Some(s), Some(e)) = (stime, etime) {
            if s > e {
                return Err(ServiceError::new(format!(
                    "Error: stime ({s}) is after etime ({e})"
                )));
            }
        }
        let text = String::from_utf8_lossy(&search);
        let items: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        if items.is_empty() {
            return Err(ServiceError::new("No searchfile specified"));
        }
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            results.push(self.results(item, stime, etime).await);
        }
        let out = json!({
            "program": "cifbulk",
            "time": crate::identity::unix_now(),
            "iff": "foe",
            "results": results,
        });
        let mut stdout = out.to_string().into_bytes();
        stdout.push(b'\n');
        Ok(Reply::ok(stdout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::encode_base64;

    fn shared(dir_name: &str, csv: &str) -> Arc<SharedStore> {
        let dir = std::env::temp_dir().join(format!("{dir_name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("feed.csv"), csv).unwrap();
        Arc::new(SharedStore::open(&dir).unwrap())
    }

    async fn call(s: &CifBulk, a: AppData) -> Reply {
        s.handle(a).await.unwrap_or_else(|e| e.to_reply())
    }

    #[tokio::test]
    async fn answers_in_the_contract_shape() {
        let s = CifBulk::with_store(shared(
            "cif-shape",
            "indicator,confidence,first_seen,last_seen,source,description\n\
             198.51.100.0/24,60,2014-01-01,2014-01-31,feed-a,hosting\n",
        ));
        let req = AppData::new()
            .with_file("searchfile", b"198.51.100.7\n\n# note\nexample.org\n-n\n")
            .with("stime", "1388707200")
            .with("etime", 1388793600);
        let r = call(&s, req).await;
        assert_eq!(r.retcode, 0, "{}", String::from_utf8_lossy(&r.stderr));
        let v: Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(v["program"], "cifbulk");
        assert_eq!(v["iff"], "foe");
        assert!(v["time"].is_i64());
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0]["searchitem"], "198.51.100.7");
        assert_eq!(results[0]["results"][0]["address"], "198.51.100.0/24");
        assert_eq!(
            results[0]["results"][0]["detecttime"],
            "2014-01-01T00:00:00Z"
        );
        assert_eq!(results[1]["results"], json!([]));
        assert!(
            results[2]["error"].is_string(),
            "an option-looking item is no indicator"
        );
        // Outside the window: no results.
        let late = AppData::new()
            .with_file("searchfile", b"198.51.100.7\n")
            .with("stime", 1393632000);
        let v: Value = serde_json::from_slice(&call(&s, late).await.stdout).unwrap();
        assert_eq!(v["results"][0]["results"], json!([]));
    }

    #[tokio::test]
    async fn error_replies() {
        let s = CifBulk::with_store(shared("cif-errors", "indicator\n192.0.2.1\n"));
        let r = call(&s, AppData::new()).await;
        assert_eq!(
            (r.retcode, r.stderr.as_slice()),
            (1, &b"No searchfile specified\n"[..])
        );
        let r = call(
            &s,
            AppData::new().with_file("searchfile", b"\n# only a comment\n"),
        )
        .await;
        assert_eq!(r.stderr, b"No searchfile specified\n");
        let back = AppData::new()
            .with_file("searchfile", b"192.0.2.1\n")
            .with("stime", 20)
            .with("etime", "10");
        let r = call(&s, back).await;
        assert!(String::from_utf8_lossy(&r.stderr).contains("stime (20) is after etime (10)"));
        let r = call(&s, AppData::new().with("searchfile", "%%%")).await;
        assert!(String::from_utf8_lossy(&r.stderr).contains("'searchfile': not valid base64"));
        let r = call(
            &s,
            AppData::new()
                .with_file("searchfile", b"x")
                .with("stime", "soon"),
        )
        .await;
        assert!(String::from_utf8_lossy(&r.stderr).contains("'stime'"));
        let r = call(
            &s,
            AppData::new().with_file("searchfile", &[0xff, 0xfe, 0x00, b'\n']),
        )
        .await;
        assert_eq!(
            r.retcode, 0,
            "binary garbage is an item that is no indicator"
        );
        let r = call(&s, AppData::new().with_flag("usage", true)).await;
        assert!(String::from_utf8_lossy(&r.stdout).starts_with("cifbulk service"));
    }

    #[tokio::test]
    async fn fronts_a_real_cif_with_a_fixed_argv() {
        // The fake cif prints its arguments as a JSON array of strings, one record.
        let fake = crate::reload::fake_program(
            "cif",
            "#!/usr/bin/python3\nimport json, sys\nprint(json.dumps([{\"argv\": sys.argv[1:]}]))\n",
        );
        let s = CifBulk::with_command(fake);
        let items = "evil.example\n$(id);rm -rf /\n203.0.113.5\n";
        let r = call(
            &s,
            AppData::new().with("searchfile", encode_base64(items.as_bytes())),
        )
        .await;
        let v: Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(
            v["results"][0]["results"][0]["argv"],
            json!(["-n", "-q", "evil.example", "-p", "json"])
        );
        assert!(v["results"][1]["error"].is_string(), "never handed to cif");
        assert_eq!(v["results"][2]["results"][0]["argv"][2], "203.0.113.5");
    }
}
