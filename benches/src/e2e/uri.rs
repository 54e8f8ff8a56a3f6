//! Just enough of the `amqp://user:pass@host:port/vhost` form for the peer that takes the
//! pieces separately.

/// The parts of an `amqp://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AmqpAddr {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) vhost: String,
}

fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or_else(|| format!("truncated escape in {s:?}"))?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape in {s:?}"))?;
            out.push(v);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once unescaped"))
}

/// Parses `amqp://[user[:pass]@]host[:port][/vhost]`; defaults follow the RabbitMQ URI spec
/// (guest/guest, port 5672, vhost `/` when the path is absent).
pub(crate) fn parse(url: &str) -> Result<AmqpAddr, String> {
    let rest = url
        .strip_prefix("amqp://")
        .ok_or_else(|| format!("{url:?}: only amqp:// URLs are supported"))?;
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (rest, None),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((n, p)) => (decode(n)?, decode(p)?),
            None => (decode(u)?, String::new()),
        },
        None => ("guest".to_string(), "guest".to_string()),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, p) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: unclosed IPv6 literal"))?;
        (h.to_string(), p.strip_prefix(':').unwrap_or(""))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (hostport.to_string(), ""),
        }
    };
    let host = if host.is_empty() {
        "localhost".to_string()
    } else {
        decode(&host)?
    };
    let port = if port.is_empty() {
        5672
    } else {
        port.parse()
            .map_err(|_| format!("{url:?}: bad port {port:?}"))?
    };
    let vhost = match path {
        None => "/".to_string(),
        Some(p) => decode(p)?,
    };
    Ok(AmqpAddr {
        host,
        port,
        user,
        password,
        vhost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_url() {
        let a = parse("amqp://us%40r:p%3Ass@127.0.0.1:5678/%2f").unwrap();
        assert_eq!(
            a,
            AmqpAddr {
                host: "127.0.0.1".into(),
                port: 5678,
                user: "us@r".into(),
                password: "p:ss".into(),
                vhost: "/".into(),
            }
        );
    }

    #[test]
    fn defaults_and_ipv6() {
        let a = parse("amqp://[::1]").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 5672));
        assert_eq!((a.user.as_str(), a.vhost.as_str()), ("guest", "/"));
        assert_eq!(parse("amqp://h/").unwrap().vhost, "");
        assert_eq!(parse("amqp://h/v?heartbeat=5").unwrap().vhost, "v");
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse("amqps://h").is_err());
        assert!(parse("amqp://h:99999").is_err());
        assert!(parse("amqp://h/%2").is_err());
        assert!(parse("amqp://[::1").is_err());
    }
}
