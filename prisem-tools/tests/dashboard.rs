//! `prisem-dashboard`'s access control on the test broker: a configured token guards every
//! page and stream until the login form exchanged it for a session cookie; an address other
//! than loopback without a token is refused at start. (The page itself is driven in a browser
//! by scripts/dashboard-browser-test.py.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use amqp_test_support::{amqp_url, management_url};

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const BIN: &str = env!("CARGO_BIN_EXE_prisem-dashboard");

/// Sends `req` on a new connection and reads the whole answer. A connection refused (the
/// dashboard still starting) or reset before any answer came is tried again, for up to 30 s:
/// the requests here change nothing a second try would not find the same.
fn request(port: u16, req: &str) -> String {
    let started = Instant::now();
    loop {
        match try_request(port, req) {
            Ok(out) => return out,
            Err(e) => {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "dashboard: {e}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn try_request(port: u16, req: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.write_all(req.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn get(port: u16, path: &str, cookie: &str) -> String {
    request(
        port,
        &format!("GET {path} HTTP/1.0\r\nHost: x\r\nCookie: {cookie}\r\n\r\n"),
    )
}

fn login(port: u16, token: &str) -> String {
    let body = format!("token={token}");
    request(
        port,
        &format!(
            "POST /login HTTP/1.0\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn a_token_guards_everything_until_login() {
    let port = amqp_test_support::free_port();
    let map = concat!(env!("CARGO_MANIFEST_DIR"), "/data/netmap.txt");
    let _dash = Reaped(
        Command::new(BIN)
            .args(["--url", &amqp_url(), "--management-url", &management_url()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--netmap", &format!("sample={map}")])
            .env("PRISEM_DASHBOARD_TOKEN", "correct-horse-battery")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let r = get(port, "/", "");
    assert!(r.starts_with("HTTP/1.0 303"), "{r}");
    assert!(r.contains("location: /login"), "{r}");
    assert!(get(port, "/events", "").starts_with("HTTP/1.0 401"));
    assert!(get(port, "/api/maps", "").starts_with("HTTP/1.0 401"));
    assert!(get(port, "/api/maps", "prisem_session=guessed").starts_with("HTTP/1.0 401"));
    assert!(login(port, "wrong-token").starts_with("HTTP/1.0 401"));

    let r = login(port, "correct-horse-battery");
    assert!(r.starts_with("HTTP/1.0 303"), "{r}");
    let cookie = r
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let session = cookie.split(';').next().unwrap();
    let r = get(port, "/api/maps", session);
    assert!(r.starts_with("HTTP/1.0 200"), "{r}");
    assert!(r.ends_with(r#"{"maps":["sample"]}"#), "{r}");
    assert!(get(port, "/", session).starts_with("HTTP/1.0 200"));
}

#[test]
fn a_public_address_without_a_token_is_refused() {
    let out = Command::new(BIN)
        .args(["--url", &amqp_url(), "--listen", "0.0.0.0:1"])
        .env_remove("PRISEM_DASHBOARD_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs a login token"), "{err}");
}
