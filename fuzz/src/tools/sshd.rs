//! The sshd line matcher.

use prisem_tools::sshwatch::{failure, parse_ip, FailureKind};

/// One sshd message (after the syslog header).
///
/// Checks that a failure's address is exactly the last `from <IP> port <N>` of the line (the
/// words right before its optional `ssh2` and `[preauth]` ending), or for the
/// `not allowed because …` lines the word right after the last `from`, so nothing the client
/// chose earlier in the line (a user name, a version) can name the address; and that the port
/// reported is that line's.
pub fn check_sshd_line(data: &[u8]) {
    let Ok(message) = std::str::from_utf8(data) else {
        return;
    };
    let Some(f) = failure(message) else {
        return;
    };
    let m = message.trim();
    let m = m.strip_prefix("error: ").unwrap_or(m);
    if f.kind == FailureKind::NotAllowed {
        assert_eq!(f.port, None);
        let (head, _) = m.rsplit_once(" not allowed because ").unwrap_or_default();
        let words: Vec<&str> = head.split(' ').collect();
        let n = words.len();
        assert!(
            n >= 3 && words[n - 2] == "from",
            "no 'from IP' before the suffix: {m:?}"
        );
        assert_eq!(parse_ip(words[n - 1]), Some(f.ip), "{m:?}");
        return;
    }
    let mut rest = m.trim_end();
    rest = rest.strip_suffix(" [preauth]").unwrap_or(rest);
    rest = rest.strip_suffix(" ssh2").unwrap_or(rest);
    let words: Vec<&str> = rest.split(' ').collect();
    let n = words.len();
    assert!(n >= 5, "too few words for a failure: {m:?}");
    assert_eq!(words[n - 4], "from", "{m:?}");
    assert_eq!(words[n - 2], "port", "{m:?}");
    assert_eq!(parse_ip(words[n - 3]), Some(f.ip), "address of {m:?}");
    assert_eq!(words[n - 1].parse::<u16>().ok(), f.port, "port of {m:?}");
    let mapped_v4 = words[n - 3]
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .and_then(|a| a.to_ipv4_mapped());
    if mapped_v4.is_some() {
        assert!(f.ip.is_ipv4(), "IPv4-mapped address not normalised");
    }
}
