//! Who a PRISEM process is: program, release, host, pid, platform and its one log GUID.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The identity a process stamps on its envelopes and log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The program's service name (`anon`, `logmon`, …).
    pub program: String,
    /// Our release (this crate's version).
    pub release: String,
    /// Short host name + `.` + the configured domain (`RPC_DOMAIN`).
    pub hostname: String,
    /// The process id.
    pub pid: u32,
    /// The operating system build, e.g. `Linux-6.1.0-x86_64`.
    pub platform: String,
    /// The AMQP library, where the originals named their pika version.
    pub library: String,
    /// The process's GUID: one per process, shared by every identity made in it.
    pub guid: String,
}

impl Identity {
    /// The identity of `program` in the default domain (`localdomain`).
    pub fn for_program(program: &str) -> Self {
        Self::new(program, "localdomain")
    }

    /// The identity of `program`, its host name qualified with `domain`.
    pub fn new(program: &str, domain: &str) -> Self {
        let short = short_hostname();
        let hostname = if domain.is_empty() {
            short
        } else {
            format!("{short}.{domain}")
        };
        Self {
            program: program.to_owned(),
            release: env!("CARGO_PKG_VERSION").to_owned(),
            hostname,
            pid: std::process::id(),
            platform: platform(),
            library: format!("amqp-client {}", env!("CARGO_PKG_VERSION")),
            guid: process_guid().to_owned(),
        }
    }
}

/// The GUID of this process (a random UUID, made on first use).
pub fn process_guid() -> &'static str {
    static GUID: OnceLock<String> = OnceLock::new();
    GUID.get_or_init(|| uuid::Uuid::new_v4().to_string())
}

/// The host name up to its first dot.
pub fn short_hostname() -> String {
    let full = gethostname::gethostname().to_string_lossy().into_owned();
    let short = full.split('.').next().unwrap_or_default();
    if short.is_empty() {
        "localhost".to_owned()
    } else {
        short.to_owned()
    }
}

fn platform() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let os = match std::env::consts::OS {
        "linux" => "Linux",
        other => other,
    };
    match release.trim() {
        "" => format!("{os}-{}", std::env::consts::ARCH),
        r => format!("{os}-{r}-{}", std::env::consts::ARCH),
    }
}

/// The current time in whole Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_guid_per_process_and_qualified_host() {
        let a = Identity::new("anon", "example.org");
        let b = Identity::for_program("logmon");
        assert_eq!(a.guid, b.guid);
        assert_eq!(uuid::Uuid::parse_str(&a.guid).unwrap().get_version_num(), 4);
        assert!(a.hostname.ends_with(".example.org"), "{}", a.hostname);
        assert!(b.hostname.ends_with(".localdomain"));
        assert!(!a.hostname.starts_with('.'));
        assert_eq!(a.pid, std::process::id());
    }
}
