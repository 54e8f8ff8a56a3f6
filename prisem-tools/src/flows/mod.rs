//! A local flow store: the engine behind `rwfind`.
//!
//! A store is a directory of flow files, each in one of two formats told apart by its header:
//!
//! - SiLK `rwcut --delimited='|'` text: a header naming the columns (`sIP|dIP|sPort|dPort|
//!   protocol|packets|bytes|flags|sTime|duration|…`, padded or not, `pro` and `dur` accepted),
//!   times like `2014/01/03T23:22:13.994` (UTC);
//! - nfdump CSV (`nfdump -o csv`): a header `ts,te,td,sa,da,sp,dp,pr,flg,…,ipkt,ibyt,…`, times
//!   like `2014-01-03 23:22:13.994`; the `Summary` block at the end is skipped.
//!
//! Lines that cannot be read are reported (file and line) and skipped. Flows are kept sorted by
//! start time, so a window is two binary searches; the address filter (source or destination
//! inside one of the searched networks) runs on the window only.

use std::net::IpAddr;
use std::path::Path;

use chrono::NaiveDateTime;
use ipnet::IpNet;

pub mod service;

/// One flow record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// Source address.
    pub sip: IpAddr,
    /// Destination address.
    pub dip: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// IP protocol number.
    pub proto: u8,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// TCP flags as SiLK writes them (`FSRPAUEC` letters), empty when none.
    pub flags: String,
    /// Start, Unix milliseconds.
    pub stime_ms: i64,
    /// Duration, milliseconds.
    pub dur_ms: u64,
}

impl Flow {
    /// The start time as rwcut writes it: `2014/01/03T23:22:13.994`.
    pub fn stime_text(&self) -> String {
        chrono::DateTime::from_timestamp_millis(self.stime_ms)
            .map(|t| t.format("%Y/%m/%dT%H:%M:%S%.3f").to_string())
            .unwrap_or_default()
    }

    /// The duration as rwcut writes it: seconds with three decimals.
    pub fn dur_text(&self) -> String {
        format!("{}.{:03}", self.dur_ms / 1000, self.dur_ms % 1000)
    }
}

fn parse_silk_time(s: &str) -> Option<i64> {
    let t = s.trim();
    for fmt in [
        "%Y/%m/%dT%H:%M:%S%.f",
        "%Y/%m/%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(d.and_utc().timestamp_millis());
        }
    }
    None
}

fn parse_seconds_ms(s: &str) -> Option<u64> {
    let v: f64 = s.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * 1000.0).round() as u64)
}

fn parse_proto(s: &str) -> Option<u8> {
    let t = s.trim();
    t.parse().ok().or(match t.to_ascii_uppercase().as_str() {
        "ICMP" => Some(1),
        "TCP" => Some(6),
        "UDP" => Some(17),
        "GRE" => Some(47),
        "ESP" => Some(50),
        "ICMP6" | "IPV6-ICMP" => Some(58),
        _ => None,
    })
}

/// nfdump writes flags as `.AP.SF` positions (U A P R S F); SiLK as letters in `FSRPAUEC`
/// order. Both become SiLK's form.
fn silk_flags(s: &str) -> String {
    let t = s.trim();
    let has = |c: char| t.contains(c);
    "FSRPAUEC".chars().filter(|&c| has(c)).collect()
}

/// The columns a header names.
#[derive(Debug)]
struct Columns {
    nfdump: bool,
    sip: usize,
    dip: usize,
    sport: usize,
    dport: usize,
    proto: usize,
    packets: usize,
    bytes: usize,
    flags: Option<usize>,
    stime: usize,
    dur: Option<usize>,
}

impl Columns {
    fn from_header(line: &str) -> Result<Self, String> {
        let nfdump = !line.contains('|');
        let names: Vec<String> = line
            .split(if nfdump { ',' } else { '|' })
            .map(|n| n.trim().to_ascii_lowercase())
            .collect();
        let find = |alts: &[&str]| names.iter().position(|n| alts.contains(&n.as_str()));
        let need = |alts: &[&str]| {
            find(alts).ok_or_else(|| {
                format!(
                    "header has no {} column",
                    alts.first().copied().unwrap_or("?")
                )
            })
        };
        Ok(if nfdump {
            Self {
                nfdump,
                sip: need(&["sa"])?,
                dip: need(&["da"])?,
                sport: need(&["sp"])?,
                dport: need(&["dp"])?,
                proto: need(&["pr"])?,
                packets: need(&["ipkt", "pkt"])?,
                bytes: need(&["ibyt", "byt"])?,
                flags: find(&["flg"]),
                stime: need(&["ts"])?,
                dur: find(&["td"]),
            }
        } else {
            Self {
                nfdump,
                sip: need(&["sip"])?,
                dip: need(&["dip"])?,
                sport: need(&["sport"])?,
                dport: need(&["dport"])?,
                proto: need(&["protocol", "pro", "proto"])?,
                packets: need(&["packets", "pkts"])?,
                bytes: need(&["bytes"])?,
                flags: find(&["flags"]),
                stime: need(&["stime"])?,
                dur: find(&["duration", "dur"]),
            }
        })
    }

    fn flow(&self, line: &str) -> Result<Flow, String> {
        let cells: Vec<&str> = line
            .split(if self.nfdump { ',' } else { '|' })
            .map(str::trim)
            .collect();
        let cell = |i: usize, what: &str| {
            cells
                .get(i)
                .copied()
                .ok_or_else(|| format!("no {what} column"))
        };
        let num = |i: usize, what: &str| -> Result<u64, String> {
            let c = cell(i, what)?;
            // nfdump may write large counts as `1.2 M`; flows stores keep plain numbers.
            c.parse::<u64>()
                .or_else(|_| c.parse::<f64>().map(|f| f as u64))
                .map_err(|_| format!("{what} {c:?} is not a number"))
        };
        let ip = |i: usize, what: &str| -> Result<IpAddr, String> {
            let c = cell(i, what)?;
            c.parse()
                .map_err(|_| format!("{what} {c:?} is not an address"))
        };
        let port = |i: usize, what: &str| -> Result<u16, String> {
            let c = cell(i, what)?;
            c.parse::<f64>()
                .ok()
                .filter(|p| (0.0..=65535.0).contains(p))
                .map(|p| p as u16)
                .ok_or_else(|| format!("{what} {c:?} is not a port"))
        };
        let stime = cell(self.stime, "start time")?;
        Ok(Flow {
            sip: ip(self.sip, "source address")?,
            dip: ip(self.dip, "destination address")?,
            sport: port(self.sport, "source port")?,
            dport: port(self.dport, "destination port")?,
            proto: parse_proto(cell(self.proto, "protocol")?)
                .ok_or_else(|| format!("protocol {:?} is unknown", cells.get(self.proto)))?,
            packets: num(self.packets, "packets")?,
            bytes: num(self.bytes, "bytes")?,
            flags: self
                .flags
                .and_then(|i| cells.get(i))
                .map(|f| silk_flags(f))
                .unwrap_or_default(),
            stime_ms: parse_silk_time(stime)
                .ok_or_else(|| format!("start time {stime:?} is not a time"))?,
            dur_ms: match self.dur.and_then(|i| cells.get(i)) {
                None => 0,
                Some(d) => {
                    parse_seconds_ms(d).ok_or_else(|| format!("duration {d:?} is not seconds"))?
                }
            },
        })
    }
}

/// A loaded flow store, sorted by start time.
#[derive(Debug, Default)]
pub struct Store {
    flows: Vec<Flow>,
    /// What was skipped while loading (file:line: why).
    pub warnings: Vec<String>,
}

impl Store {
    /// Loads every file of `dir` (sorted by name; files that start with `.` and `README` files
    /// are left out).
    pub fn load(dir: &Path) -> Result<Self, String> {
        let mut store = Self::default();
        for file in crate::reload::sorted_files(dir)? {
            let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            store.add(&file, &bytes);
        }
        store.flows.sort_by_key(|f| f.stime_ms);
        Ok(store)
    }

    /// Adds the flows of one file (call [`Store::sort`] after the last).
    pub fn add(&mut self, file: &Path, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header)) = lines.next() else {
            return;
        };
        let columns = match Columns::from_header(header) {
            Ok(c) => c,
            Err(e) => {
                self.warnings
                    .push(format!("{}:1: {e}; file skipped", file.display()));
                return;
            }
        };
        for (n, line) in lines {
            if columns.nfdump && line.trim() == "Summary" {
                break;
            }
            match columns.flow(line) {
                Ok(f) => self.flows.push(f),
                Err(e) => self
                    .warnings
                    .push(format!("{}:{}: {e}; skipped", file.display(), n + 1)),
            }
        }
    }

    /// Sorts the flows by start time (after [`Store::add`]).
    pub fn sort(&mut self) {
        self.flows.sort_by_key(|f| f.stime_ms);
    }

    /// How many flows are loaded.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// The first and last start times (Unix seconds), if any flow is loaded.
    pub fn span(&self) -> Option<(i64, i64)> {
        Some((
            self.flows.first()?.stime_ms.div_euclid(1000),
            self.flows.last()?.stime_ms.div_euclid(1000),
        ))
    }

    /// The flows that started in `[stime, etime]` (Unix seconds, inclusive) with a source or a
    /// destination inside one of `nets`, in start order.
    pub fn search(&self, nets: &[IpNet], stime: i64, etime: i64) -> Vec<&Flow> {
        let from = stime.saturating_mul(1000);
        let to = etime.saturating_mul(1000).saturating_add(999);
        let lo = self.flows.partition_point(|f| f.stime_ms < from);
        let hi = self.flows.partition_point(|f| f.stime_ms <= to);
        self.flows
            .get(lo..hi.max(lo))
            .unwrap_or_default()
            .iter()
            .filter(|f| {
                nets.iter()
                    .any(|n| n.contains(&f.sip) || n.contains(&f.dip))
            })
            .collect()
    }
}

/// The flow store, reloadable.
pub type SharedStore = crate::reload::SharedStore<Store>;

impl crate::reload::LoadDir for Store {
    fn load_dir(dir: &Path) -> Result<Self, String> {
        Self::load(dir)
    }

    fn entries(&self) -> usize {
        self.len()
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const RWCUT: &str = "            sIP|            dIP|sPort|dPort|pro|   packets|     bytes|   flags|                  sTime|      dur|\n\
    203.0.113.200|   192.0.2.15|52144|   22|  6|        12|      1800|FS PA   |2014/01/03T23:22:13.994|    2.500|\n\
    192.0.2.15|203.0.113.200|   22|52144|  6|        10|      4000| S PA   |2014/01/03T23:22:14.100|    2.400|\n\
    198.51.100.7|   192.0.2.200|40000|  502|  6|         1|        60|S       |2014/01/04T01:00:00.000|    0.000|\n\
    not-an-ip|192.0.2.1|1|2|6|1|1||2014/01/03T00:00:00.000|0.000|\n";

    const NFDUMP: &str = "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt\n\
        2014-01-03 10:00:00.500,2014-01-03 10:00:01.000,0.500,2001:db8::1,203.0.113.200,443,51000,TCP,.AP.SF,0,0,5,900\n\
        2014-01-03 11:00:00,2014-01-03 11:00:00,0.000,192.0.2.16,8.8.8.8,53,53,UDP,........,0,0,1,70\n\
        Summary\n\
        flows,bytes,packets,avg_bps,avg_pps,avg_bpp\n\
        2,970,6,0,0,0\n";

    fn store() -> Store {
        let mut s = Store::default();
        s.add(Path::new("a.rw.txt"), RWCUT.as_bytes());
        s.add(Path::new("b.csv"), NFDUMP.as_bytes());
        s.sort();
        s
    }

    #[test]
    fn reads_both_formats_and_reports_broken_lines() {
        let s = store();
        assert_eq!(s.len(), 5);
        assert_eq!(
            s.warnings,
            ["a.rw.txt:5: source address \"not-an-ip\" is not an address; skipped"]
        );
        let all: Vec<IpNet> = vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()];
        let flows = s.search(&all, 0, i64::MAX / 1000);
        assert_eq!(flows[0].sip.to_string(), "2001:db8::1");
        assert_eq!(flows[0].flags, "FSPA");
        assert_eq!(flows[0].proto, 6);
        assert_eq!(flows[0].dur_text(), "0.500");
        assert_eq!(flows[2].stime_text(), "2014/01/03T23:22:13.994");
        assert_eq!(flows[2].flags, "FSPA");
        assert_eq!(flows[1].proto, 17);
    }

    #[test]
    fn searches_a_window_and_networks() {
        let s = store();
        let net: Vec<IpNet> = vec!["203.0.113.200/32".parse().unwrap()];
        let day = 1_388_707_200; // 2014-01-03T00:00:00Z
        assert_eq!(s.search(&net, day, day + 86_399).len(), 3);
        assert_eq!(s.search(&net, day + 12 * 3600, day + 86_399).len(), 2);
        let cidr: Vec<IpNet> = vec!["192.0.2.0/24".parse().unwrap()];
        assert_eq!(s.search(&cidr, day, day + 2 * 86_400).len(), 4);
        assert!(s
            .search(&cidr, day + 10 * 86_400, day + 11 * 86_400)
            .is_empty());
        assert_eq!(s.span(), Some((day + 36_000, day + 86_400 + 3600)));
    }

    #[test]
    fn a_file_without_a_usable_header_is_reported() {
        let mut s = Store::default();
        s.add(Path::new("junk"), b"\x00\xff garbage\nmore\n");
        assert_eq!(s.len(), 0);
        assert!(
            s.warnings[0].starts_with("junk:1: header has no sa column"),
            "{:?}",
            s.warnings
        );
    }
}
