//! blockd's nftables commands against the real `nft`, inside a network namespace of the test's
//! own (`unshare -n`), so the machine's packet filter is never touched: the test runs itself
//! again under `unshare -n --` and the inner run creates the table and sets (twice: idempotent),
//! blocks an IPv4 and an IPv6 address with a timeout, unblocks an address that is not there
//! (not an error), and reads the sets back with `nft list set`. Where the machine does not
//! allow a network namespace (or has no `nft`), the test fails and says so.

use std::process::Command;

use prisem_tools::blockd::{nft_absent, nft_argv, nft_setup, parse_action, run_argv, Verb};

const INNER: &str = "PRISEM_NFT_NETNS_INNER";

fn list(set: &str) -> String {
    let out = Command::new("nft")
        .args(["list", "set", "inet", "prisem", set])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nft list set {set}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn apply(body: &str) {
    let action = parse_action(body.as_bytes()).unwrap();
    let argv = nft_argv(&action);
    match run_argv(&argv).await {
        Ok(()) => {}
        Err(e) if action.verb == Verb::Unblock && nft_absent(&e) => {}
        Err(e) => panic!("{}: {e}", argv.join(" ")),
    }
}

async fn inside() {
    for _ in 0..2 {
        for argv in nft_setup() {
            run_argv(&argv)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", argv.join(" ")));
        }
    }
    apply(r#"{"action":"block","ip":"203.0.113.7","ttl":600}"#).await;
    apply(r#"{"action":"block","ip":"2001:db8::7","ttl":600}"#).await;
    apply(r#"{"action":"block","ip":"::ffff:198.51.100.9","ttl":300}"#).await;
    // An address that is not in the set: not an error.
    apply(r#"{"action":"unblock","ip":"192.0.2.44"}"#).await;
    apply(r#"{"action":"unblock","ip":"2001:db8::44"}"#).await;
    let v4 = list("blocklist4");
    assert!(v4.contains("type ipv4_addr"), "{v4}");
    assert!(v4.contains("flags interval,timeout"), "{v4}");
    assert!(v4.contains("203.0.113.7 timeout 10m"), "{v4}");
    assert!(v4.contains("198.51.100.9 timeout 5m"), "{v4}");
    let v6 = list("blocklist6");
    assert!(v6.contains("2001:db8::7 timeout 10m"), "{v6}");
    // Unblock what is there.
    apply(r#"{"action":"unblock","ip":"203.0.113.7"}"#).await;
    let v4 = list("blocklist4");
    assert!(!v4.contains("203.0.113.7"), "{v4}");
    assert!(v4.contains("198.51.100.9"), "{v4}");
    println!("nft inside the namespace: ok");
}

#[tokio::test]
async fn blockd_nft_commands_in_a_network_namespace() {
    if std::env::var_os(INNER).is_some() {
        return inside().await;
    }
    let nft = Command::new("nft").arg("--version").output();
    assert!(
        nft.as_ref().is_ok_and(|o| o.status.success()),
        "nft is not installed (scripts/install-deps installs nftables): {nft:?}"
    );
    let out = Command::new("unshare")
        .args(["-n", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "blockd_nft_commands_in_a_network_namespace",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INNER, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("unshare failed") {
        panic!(
            "this machine does not allow a network namespace (unshare -n), so nft was NOT tested: {stderr}"
        );
    }
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("nft inside the namespace: ok"),
        "{stdout}\n{stderr}"
    );
}
