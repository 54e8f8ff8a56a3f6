//! The `anon` service: rewrites the addresses and names of a text that lie inside the networks
//! and domains of a network map into labels of the same length.
//!
//! Request appdata (see [`usage`]): `data` and `netmap` (base64 files), and the flags `stats`,
//! `json` and `usage`. The reply's stdout is:
//!
//! - the rewritten text (any bytes; what is not a mapped address passes through unchanged), then
//!   with `stats`, a blank line and the distinct-host counts per site
//!   ([`HostCounts::render`](crate::addr::HostCounts::render): descending count, then name);
//! - with `json`, the matches as JSON instead
//!   ([`crate::addr::matches_json`], with a `stats` array when `stats` is set);
//! - with `usage`, the help text (retcode 0, nothing else is done).
//!
//! Warnings about broken map lines go to stderr with their line numbers; the good lines are used
//! and the retcode stays 0. Empty `data` is an error reply (retcode 1,
//! `Error: anon service received no data to process`).
//!
//! A server may hold a [`Pseudonymizer`]: then addresses outside the map are replaced by keyed
//! prefix-preserving pseudonyms instead of being left as they are.
//!
//! ```
//! use prisem_tools::rpc::AppData;
//! use prisem_tools::services::anon::Anon;
//!
//! let request = AppData::new()
//!     .with_file("data", b"from 50.97.148.210\n")
//!     .with_file("netmap", b"50.97.148.0/22|ARIN|arin\n");
//! let reply = Anon::new().process(request).unwrap();
//! assert_eq!(reply.stdout, b"from [____arin___]\n");
//! ```

use crate::addr::{matches_json, rewrite, Pseudonymizer};
use crate::rpc::{AppData, Reply, Service, ServiceError};

use super::{load_netmap, warnings_text};

/// The help text `usage` returns.
pub fn usage() -> &'static str {
    "anon: rewrite the addresses and DNS names of a text that lie inside mapped networks\n\
     \n\
     Each IPv4/IPv6 address, CIDR block or DNS name found in 'data' that lies inside a network\n\
     or domain of 'netmap' is replaced by a label exactly as long as the text it replaces,\n\
     '[' + '_' padding + AnonString + '_' padding + ']' (e.g. 50.97.148.210 -> [____arin___]).\n\
     Everything else passes through unchanged. When the server holds a pseudonymization key,\n\
     addresses outside the map are replaced by keyed prefix-preserving pseudonyms.\n\
     \n\
     Request appdata:\n\
     \x20 data    base64 of the text to process (required unless usage is \"true\")\n\
     \x20 netmap  base64 of the network map: lines 'CIDR_or_.domain|SiteID|AnonString' with\n\
     \x20         '#' comments (a leading-dot domain covers its subdomains; the most specific\n\
     \x20         entry wins), or YAML 'sites: {SITE: {cidr: [...], domain: [...]}}'\n\
     \x20 stats   \"true\": append, after a blank line, the distinct hosts per site\n\
     \x20         ('Site/host counts', 'SITE: n (pp.pp%)', 'All_Sites: n (100.00%)')\n\
     \x20 json    \"true\": print the matches as JSON instead of the rewritten text:\n\
     \x20         {\"matches\":[{\"text\",\"kind\",\"site\",\"line\",\"start\",\"end\"}]}\n\
     \x20 usage   \"true\": print this help and do nothing else\n\
     \n\
     Broken netmap lines are reported on stderr with their line numbers and skipped.\n"
}

/// The anon service; see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct Anon {
    pseudonymizer: Option<Pseudonymizer>,
}

impl Anon {
    /// An anon service that leaves unmapped addresses as they are.
    pub fn new() -> Self {
        Self::default()
    }

    /// An anon service that replaces unmapped addresses by their pseudonyms under `key`.
    pub fn with_pseudonymizer(key: Pseudonymizer) -> Self {
        Self {
            pseudonymizer: Some(key),
        }
    }

    /// Handles one request synchronously (what [`Service::handle`] runs).
    ///
    /// The request is taken by value so the base64 text of `data` can be freed as soon as it
    /// is decoded: a request costs about its decoded size twice (input and output).
    pub fn process(&self, mut appdata: AppData) -> Result<Reply, ServiceError> {
        if appdata.flag("usage") {
            return Ok(Reply::ok(usage()));
        }
        let data = appdata.file("data")?;
        appdata.0.remove("data");
        let loaded = load_netmap(&appdata)?;
        if data.is_empty() {
            return Err(ServiceError::new(
                "Error: anon service received no data to process",
            ));
        }
        let stats = appdata.flag("stats");
        let stdout = if appdata.flag("json") {
            matches_json(&data, &loaded.map, stats)
        } else {
            let rewritten = rewrite(&data, &loaded.map, self.pseudonymizer.as_ref());
            drop(data);
            let mut out = rewritten.text;
            if stats {
                if !out.is_empty() && !out.ends_with(b"\n") {
                    out.push(b'\n');
                }
                out.push(b'\n');
                out.extend_from_slice(rewritten.hosts.render().as_bytes());
            }
            out
        };
        Ok(Reply {
            retcode: 0,
            stdout,
            stderr: warnings_text(&loaded.warnings),
        })
    }
}

impl Service for Anon {
    async fn handle(&self, appdata: AppData) -> Result<Reply, ServiceError> {
        self.process(appdata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &[u8] = b"# test sites\n50.97.148.0/22|ARIN|arin\n156.74.0.0/16|CTYSEA|CTYSEA\n\
        .city.example|CTYSEA|CTYSEA\n2001:db8:7::/48|V6|six\n";

    fn request(data: &[u8]) -> AppData {
        AppData::new()
            .with_file("data", data)
            .with_file("netmap", MAP)
    }

    fn run(appdata: AppData) -> Reply {
        Anon::new().process(appdata).unwrap()
    }

    #[test]
    fn rewrites_with_the_contract_examples() {
        let r = run(request(
            b"a 50.97.148.210 b 156.74.100.200 c 198.51.100.1\n",
        ));
        assert_eq!(r.retcode, 0);
        assert_eq!(
            r.stdout,
            b"a [____arin___] b [___CTYSEA___] c 198.51.100.1\n"
        );
        assert_eq!(r.stderr, b"");
    }

    #[test]
    fn stats_follow_a_blank_line() {
        let data =
            b"50.97.148.210 50.97.148.210 156.74.1.1\nwww.city.example 2001:db8:7::1 156.74.1.2";
        let r = run(request(data).with_flag("stats", true));
        let text = String::from_utf8(r.stdout).unwrap();
        assert_eq!(
            text,
            "[____arin___] [____arin___] [_CTYSEA_]\n[____CTYSEA____] [____six____] [_CTYSEA_]\n\
             \nSite/host counts\nCTYSEA: 3 (60.00%)\nARIN: 1 (20.00%)\nV6: 1 (20.00%)\nAll_Sites: 5 (100.00%)\n"
        );
        let r = run(request(b"nothing here\n").with_flag("stats", true));
        assert_eq!(
            r.stdout,
            b"nothing here\n\nSite/host counts\nAll_Sites: 0 (100.00%)\n"
        );
    }

    #[test]
    fn json_instead_of_text() {
        let r = run(request(b"x 50.97.148.1 y 198.51.100.2\n").with_flag("json", true));
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"matches": [
                {"text": "50.97.148.1", "kind": "ipv4", "site": "ARIN", "line": 1, "start": 2, "end": 13},
                {"text": "198.51.100.2", "kind": "ipv4", "site": null, "line": 1, "start": 16, "end": 28}
            ]})
        );
        let r = run(request(b"50.97.148.1")
            .with_flag("json", true)
            .with_flag("stats", true));
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(
            v["stats"][1],
            serde_json::json!({"site": "All_Sites", "count": 1, "percent": "100.00"})
        );
    }

    #[test]
    fn usage_and_errors() {
        let r = run(AppData::new().with_flag("usage", true));
        assert_eq!((r.retcode, r.stdout.as_slice()), (0, usage().as_bytes()));
        for field in ["data", "netmap", "stats", "json", "usage"] {
            assert!(usage().contains(field), "{field}");
        }
        for empty in [
            AppData::new(),
            AppData::new().with("data", ""),
            request(b""),
        ] {
            let e = Anon::new().process(empty).unwrap_err().to_reply();
            assert_eq!(e.retcode, 1);
            assert_eq!(
                e.stderr,
                b"Error: anon service received no data to process\n"
            );
            assert_eq!(e.stdout, b"");
        }
        let bad = AppData::new().with("data", "%%% not base64");
        let e = Anon::new().process(bad).unwrap_err().to_reply();
        assert_eq!(e.retcode, 1);
        assert!(String::from_utf8(e.stderr)
            .unwrap()
            .starts_with("Error: appdata field 'data': not valid base64"));
        let bad_map = AppData::new().with_file("data", b"x").with("netmap", "@@");
        let e = Anon::new().process(bad_map).unwrap_err();
        assert!(
            e.message.starts_with("Error: appdata field 'netmap'"),
            "{e}"
        );
        let bad_yaml = AppData::new()
            .with_file("data", b"x")
            .with_file("netmap", b"sites:\n  A: [x\n");
        let e = Anon::new().process(bad_yaml).unwrap_err();
        assert!(e.message.starts_with("Error: netmap line"), "{e}");
    }

    #[test]
    fn broken_map_lines_warn_and_good_lines_work() {
        let map = b"50.97.148.0/22|ARIN|arin\nthis is not an entry\n999.1.1.0/24|X|x\n156.74.0.0/16|CTYSEA|CTYSEA\n";
        let req = AppData::new()
            .with_file("data", b"50.97.148.210 156.74.100.200\n")
            .with_file("netmap", map);
        let r = run(req);
        assert_eq!(r.retcode, 0);
        assert_eq!(r.stdout, b"[____arin___] [___CTYSEA___]\n");
        let err = String::from_utf8(r.stderr).unwrap();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(
            lines[0]
                .starts_with("Warning: netmap line 2: expected CIDR_or_.domain|SiteID|AnonString"),
            "{err}"
        );
        assert!(
            lines[1]
                .starts_with("Warning: netmap line 3: \"999.1.1.0/24\" is not a valid CIDR block"),
            "{err}"
        );
    }

    #[test]
    fn binary_garbage_passes_through() {
        let mut data: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        data.extend_from_slice(b" 50.97.148.210\xff\xfe\x00");
        let r = run(request(&data));
        assert_eq!(r.retcode, 0);
        assert_eq!(r.stdout.len(), data.len());
        assert_eq!(&r.stdout[..4096], &data[..4096]);
        assert_eq!(&r.stdout[4096..], b" [____arin___]\xff\xfe\x00");
    }

    #[test]
    fn pseudonyms_when_the_server_holds_a_key() {
        let anon = Anon::with_pseudonymizer(Pseudonymizer::new(&[9u8; 32]));
        let r = anon
            .process(request(b"50.97.148.210 198.51.100.1\n"))
            .unwrap();
        let text = String::from_utf8(r.stdout).unwrap();
        let (label, rest) = text.split_once(' ').unwrap();
        assert_eq!(label, "[____arin___]");
        let pseudonym: std::net::Ipv4Addr = rest.trim_end().parse().unwrap();
        assert_ne!(pseudonym.to_string(), "198.51.100.1");
        let again = anon
            .process(request(b"50.97.148.210 198.51.100.1\n"))
            .unwrap();
        assert_eq!(again.stdout, text.as_bytes());
    }

    #[test]
    fn the_service_trait_runs_it() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let r = rt
            .block_on(Anon::new().handle(request(b"50.97.148.210")))
            .unwrap();
        assert_eq!(r.stdout, b"[____arin___]");
    }
}
