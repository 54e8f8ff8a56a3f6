//! The `crosscor` service: cross-organisation correlation of the addresses of a text with the
//! sites of a network map.
//!
//! Request appdata (see [`usage`]): `data` and `netmap` (base64 files), `iff` (`friend` or
//! `foe`, required), and the flags `stats` and `usage`. The reply's stdout is one line of JSON,
//! every value a string:
//!
//! ```text
//! {"program":"crosscor","date":"Sun, 02 Feb 2014 06:09:34 +0000","iff":"foe",
//!  "matching":[{"ip4":"192.0.2.7","site":"SEA"},{"ip6":"2001:db8:1::5","site":"SEA"}],
//!  "nonmatching":[{"ip4":"203.0.113.9","site":"UNKNOWN"}],
//!  "matching_stats":[{"site":"SEA","count":"2","percent":"100.00"},
//!                    {"site":"All_Sites","count":"2","percent":"100.00"}]}
//! ```
//!
//! - Each distinct address appears once, in order of first appearance. IPv4 addresses (and
//!   IPv4-mapped IPv6 ones, shown as IPv4) use the key `ip4`; IPv6 addresses use `ip6`, in
//!   their canonical compressed form. DNS names and CIDR blocks are not correlated.
//! - `date` is the time of the answer in RFC 2822 form, UTC.
//! - `matching_stats` lists the sites by descending count, then name, with their share of the
//!   matching addresses, then `All_Sites`. It is always present (cumdist reads it); the `stats`
//!   flag is accepted for compatibility and changes nothing.
//!
//! Warnings about broken map lines go to stderr; empty `data` is an error reply (retcode 1,
//! `Error: crosscor service received no data to process`), and so is a missing or unknown
//! `iff`.

use core::fmt;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use serde_json::{json, Value};

use crate::addr::rewrite::percent;
use crate::addr::{scan, Kind, NetMap};
use crate::rpc::{AppData, Reply, Service, ServiceError};

use super::{load_netmap, warnings_text};

/// The help text `usage` returns.
pub fn usage() -> &'static str {
    "crosscor: correlate the IP addresses of a text with the sites of a network map\n\
     \n\
     Every distinct IPv4/IPv6 address found in 'data' is listed once, under 'matching' with its\n\
     site when it lies inside a network of 'netmap', else under 'nonmatching' (site UNKNOWN),\n\
     followed by the matching addresses per site ('matching_stats', with All_Sites).\n\
     \n\
     Request appdata:\n\
     \x20 data    base64 of the text to search (required unless usage is \"true\")\n\
     \x20 netmap  base64 of the network map: lines 'CIDR_or_.domain|SiteID|AnonString' with\n\
     \x20         '#' comments, or YAML 'sites: {SITE: {cidr: [...], domain: [...]}}'\n\
     \x20 iff     \"friend\" or \"foe\" (required): what the addresses are, echoed in the output\n\
     \x20 stats   accepted for compatibility; matching_stats is always included\n\
     \x20 usage   \"true\": print this help and do nothing else\n\
     \n\
     Output (JSON, all values strings):\n\
     \x20 {\"program\":\"crosscor\",\"date\":\"<RFC 2822, UTC>\",\"iff\":\"foe\",\n\
     \x20  \"matching\":[{\"ip4\":\"A.B.C.D\",\"site\":\"SITE\"}],\n\
     \x20  \"nonmatching\":[{\"ip4\":\"E.F.G.H\",\"site\":\"UNKNOWN\"}],\n\
     \x20  \"matching_stats\":[{\"site\":\"SITE\",\"count\":\"1\",\"percent\":\"100.00\"}, ...]}\n\
     \x20 IPv6 addresses use the key \"ip6\".\n"
}

/// What the correlated addresses are to the requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iff {
    /// Addresses of partners.
    Friend,
    /// Addresses of attackers.
    Foe,
}

impl Iff {
    /// `friend` or `foe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Friend => "friend",
            Self::Foe => "foe",
        }
    }

    /// Reads the request's `iff` field: `friend` or `foe`, anything else is an error reply.
    pub fn from_appdata(appdata: &AppData) -> Result<Self, ServiceError> {
        match appdata.string("iff")? {
            Some("friend") => Ok(Self::Friend),
            Some("foe") => Ok(Self::Foe),
            Some(other) => Err(ServiceError::new(format!(
                "Error: appdata field 'iff' must be \"friend\" or \"foe\", got {other:?}"
            ))),
            None => Err(ServiceError::new(
                "Error: appdata field 'iff' is missing; it must be \"friend\" or \"foe\"",
            )),
        }
    }
}

impl fmt::Display for Iff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The date crosscor writes: RFC 2822 in UTC, e.g. `Sun, 02 Feb 2014 06:09:34 +0000`.
pub fn rfc2822(unix_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(unix_seconds, 0)
        .map(|t| t.format("%a, %d %b %Y %H:%M:%S +0000").to_string())
        .unwrap_or_default()
}

/// The crosscor JSON (one line, no trailing newline) for `data` against `map`, dated
/// `unix_seconds`.
pub fn report(data: &[u8], map: &NetMap, iff: Iff, unix_seconds: i64) -> String {
    let mut seen: HashSet<IpAddr> = HashSet::new();
    let mut matching = Vec::new();
    let mut nonmatching = Vec::new();
    let mut per_site: HashMap<&str, usize> = HashMap::new();
    for m in scan(data) {
        let (Kind::Ipv4 | Kind::Ipv6, Some(ip)) = (m.kind, m.ip) else {
            continue;
        };
        let ip = ip.to_canonical();
        if !seen.insert(ip) {
            continue;
        }
        let key = if ip.is_ipv4() { "ip4" } else { "ip6" };
        match map.lookup_ip(ip) {
            Some(entry) => {
                *per_site.entry(entry.site.as_str()).or_default() += 1;
                matching.push(json!({ key: ip.to_string(), "site": entry.site }));
            }
            None => nonmatching.push(json!({ key: ip.to_string(), "site": "UNKNOWN" })),
        }
    }
    let total = matching.len();
    let mut sites: Vec<(&str, usize)> = per_site.into_iter().collect();
    sites.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut stats: Vec<Value> = sites
        .into_iter()
        .map(|(site, count)| {
            json!({"site": site, "count": count.to_string(), "percent": percent(count, total)})
        })
        .collect();
    stats.push(json!({"site": "All_Sites", "count": total.to_string(), "percent": "100.00"}));
    json!({
        "program": "crosscor",
        "date": rfc2822(unix_seconds),
        "iff": iff.as_str(),
        "matching": matching,
        "nonmatching": nonmatching,
        "matching_stats": stats,
    })
    .to_string()
}

/// The crosscor service; see the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct Crosscor;

impl Crosscor {
    /// A crosscor service.
    pub fn new() -> Self {
        Self
    }

    /// Handles one request synchronously, dated `unix_seconds` (what [`Service::handle`] runs
    /// with the current time).
    pub fn process_at(
        &self,
        mut appdata: AppData,
        unix_seconds: i64,
    ) -> Result<Reply, ServiceError> {
        if appdata.flag("usage") {
            return Ok(Reply::ok(usage()));
        }
        let data = appdata.file("data")?;
        appdata.0.remove("data");
        let loaded = load_netmap(&appdata)?;
        if data.is_empty() {
            return Err(ServiceError::new(
                "Error: crosscor service received no data to process",
            ));
        }
        let iff = Iff::from_appdata(&appdata)?;
        let mut stdout = report(&data, &loaded.map, iff, unix_seconds).into_bytes();
        stdout.push(b'\n');
        Ok(Reply {
            retcode: 0,
            stdout,
            stderr: warnings_text(&loaded.warnings),
        })
    }
}

impl Service for Crosscor {
    async fn handle(&self, appdata: AppData) -> Result<Reply, ServiceError> {
        self.process_at(appdata, crate::identity::unix_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &[u8] =
        b"192.0.2.0/24|SEA|sea\n192.0.2.128/26|SEA-DC|dc\n198.51.100.0/24|ARIN|arin\n\
        2001:db8:1::/48|SEA|sea\nbad line\n";
    const FEB_2_2014: i64 = 1_391_321_374;

    fn request(data: &[u8], iff: &str) -> AppData {
        AppData::new()
            .with_file("data", data)
            .with_file("netmap", MAP)
            .with("iff", iff)
    }

    #[test]
    fn date_is_rfc2822_utc() {
        assert_eq!(rfc2822(FEB_2_2014), "Sun, 02 Feb 2014 06:09:34 +0000");
    }

    #[test]
    fn output_has_the_contract_shape() {
        let data = b"192.0.2.7 x 203.0.113.9 192.0.2.7 198.51.100.1\n192.0.2.130 2001:db8:1::5 \
            ::ffff:192.0.2.8 2001:db8:9::1 192.0.2.0/24 www.corp.example 203.0.113.9\n";
        let r = Crosscor
            .process_at(request(data, "foe"), FEB_2_2014)
            .unwrap();
        assert_eq!(r.retcode, 0);
        assert!(String::from_utf8(r.stderr)
            .unwrap()
            .starts_with("Warning: netmap line 5:"));
        assert!(r.stdout.ends_with(b"}\n"));
        let text = String::from_utf8(r.stdout).unwrap();
        assert!(text.starts_with("{\"program\":\"crosscor\",\"date\":\"Sun, 02 Feb 2014 06:09:34 +0000\",\"iff\":\"foe\",\"matching\":["), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["matching"],
            json!([
                {"ip4": "192.0.2.7", "site": "SEA"},
                {"ip4": "198.51.100.1", "site": "ARIN"},
                {"ip4": "192.0.2.130", "site": "SEA-DC"},
                {"ip6": "2001:db8:1::5", "site": "SEA"},
                {"ip4": "192.0.2.8", "site": "SEA"}
            ])
        );
        assert_eq!(
            v["nonmatching"],
            json!([{"ip4": "203.0.113.9", "site": "UNKNOWN"}, {"ip6": "2001:db8:9::1", "site": "UNKNOWN"}])
        );
        assert_eq!(
            v["matching_stats"],
            json!([
                {"site": "SEA", "count": "3", "percent": "60.00"},
                {"site": "ARIN", "count": "1", "percent": "20.00"},
                {"site": "SEA-DC", "count": "1", "percent": "20.00"},
                {"site": "All_Sites", "count": "5", "percent": "100.00"}
            ])
        );
    }

    #[test]
    fn no_matches_still_has_all_sites() {
        let r = Crosscor
            .process_at(request(b"no addresses\n", "friend"), FEB_2_2014)
            .unwrap();
        let v: Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(v["iff"], "friend");
        assert_eq!(v["matching"], json!([]));
        assert_eq!(
            v["matching_stats"],
            json!([{"site": "All_Sites", "count": "0", "percent": "100.00"}])
        );
    }

    #[test]
    fn error_replies() {
        let e = Crosscor
            .process_at(request(b"", "foe"), 0)
            .unwrap_err()
            .to_reply();
        assert_eq!(
            (e.retcode, e.stderr.as_slice()),
            (
                1,
                &b"Error: crosscor service received no data to process\n"[..]
            )
        );
        let e = Crosscor
            .process_at(AppData::new(), 0)
            .unwrap_err()
            .to_reply();
        assert_eq!(
            e.stderr,
            b"Error: crosscor service received no data to process\n"
        );
        let e = Crosscor
            .process_at(request(b"192.0.2.1", "enemy"), 0)
            .unwrap_err()
            .to_reply();
        assert_eq!(e.retcode, 1);
        assert_eq!(
            e.stderr,
            b"Error: appdata field 'iff' must be \"friend\" or \"foe\", got \"enemy\"\n"
        );
        let missing = AppData::new().with_file("data", b"192.0.2.1");
        let e = Crosscor.process_at(missing, 0).unwrap_err().to_reply();
        assert_eq!(
            e.stderr,
            b"Error: appdata field 'iff' is missing; it must be \"friend\" or \"foe\"\n"
        );
        let wrong_type = AppData::new()
            .with_file("data", b"192.0.2.1")
            .with("iff", 3);
        let e = Crosscor.process_at(wrong_type, 0).unwrap_err();
        assert_eq!(
            e.message,
            "Error: appdata field 'iff': expected a string, got a number"
        );
        let bad = AppData::new().with("data", "!!").with("iff", "foe");
        assert!(Crosscor
            .process_at(bad, 0)
            .unwrap_err()
            .message
            .contains("'data': not valid base64"));
    }

    #[test]
    fn usage_text() {
        let r = Crosscor
            .process_at(AppData::new().with_flag("usage", true), 0)
            .unwrap();
        assert_eq!(r.stdout, usage().as_bytes());
        for field in [
            "data", "netmap", "iff", "stats", "usage", "friend", "foe", "ip6",
        ] {
            assert!(usage().contains(field), "{field}");
        }
    }

    #[test]
    fn the_service_trait_dates_with_now() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let r = rt
            .block_on(Crosscor.handle(request(b"192.0.2.1", "foe")))
            .unwrap();
        let v: Value = serde_json::from_slice(&r.stdout).unwrap();
        let date = v["date"].as_str().unwrap();
        assert!(date.ends_with(" +0000") && date.len() == 31, "{date}");
    }
}
