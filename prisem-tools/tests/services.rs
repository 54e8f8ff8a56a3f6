//! The PRISEM services and clients end to end on the test broker: each server binary answers
//! its client binary on the sample data, the pika contract client calls each server, our
//! clients print a pika server's recorded replies as the originals did, and bad input gets a
//! clear error reply while the workers keep serving.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use amqp_client::Connection;
use amqp_test_support::{amqp_url, unique_name};
use common::{wait_for_consumers, Reaped};
use prisem_tools::identity::Identity;
use prisem_tools::rpc::{encode_base64, queue_name, AppData, Client};
use serde_json::{json, Value};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data");
const T: Duration = Duration::from_secs(60);

/// Starts `bin` serving queue base `base` with 2 workers and waits for both consumers.
async fn server(bin: &str, base: &str, extra: &[&str]) -> Reaped {
    let child = Reaped(
        Command::new(bin)
            .args(["--url", &amqp_url(), "-q", base, "--workers", "2"])
            .args(extra)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    wait_for_consumers(&conn, &queue_name(base), 2).await;
    child
}

fn client(bin: &str, base: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(["--url", &amqp_url(), "-q", base])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn pika_client(queue: &str, appdata: &Value) -> Value {
    let out =
        Command::new(std::env::var("PIKA_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into()))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/pika/contract_client.py"
            ))
            .args([&amqp_url(), queue, &appdata.to_string(), "30"])
            .output()
            .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn anon_end_to_end_and_bad_input() {
    let base = unique_name("anon");
    let _s = server(env!("CARGO_BIN_EXE_anon_server"), &base, &[]).await;
    let report = format!("{DATA}/report.txt");
    let map = format!("{DATA}/netmap.txt");
    let out = client(
        env!("CARGO_BIN_EXE_anon_client"),
        &base,
        &["-r", &report, "-m", &map, "-s"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let original = std::fs::read_to_string(&report).unwrap();
    let (body, stats) = stdout.split_once("\nSite/host counts\n").unwrap();
    assert_eq!(
        body.trim_end().len(),
        original.trim_end().len(),
        "labels keep the length"
    );
    assert!(body.contains("203.0.113.200"), "outside the map: unchanged");
    assert!(!body.contains("192.0.2.15"), "inside the map: rewritten");
    assert!(stats.ends_with("All_Sites: 13 (100.00%)\n"), "{stats}");

    // The pika contract client gets the same answer.
    let q = queue_name(&base);
    let appdata = json!({
        "data": encode_base64(original.as_bytes()),
        "netmap": encode_base64(&std::fs::read(&map).unwrap()),
        "stats": "true", "json": "false", "usage": "false",
    });
    let pika = tokio::task::spawn_blocking(move || pika_client(&q, &appdata))
        .await
        .unwrap();
    assert_eq!(pika["retcode"], 0);
    assert_eq!(pika["stdout"].as_str().unwrap(), stdout);

    // JSON mode.
    let out = client(
        env!("CARGO_BIN_EXE_anon_client"),
        &base,
        &["-r", &report, "-m", &map, "-J"],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["text"] == "192.0.2.15" && m["site"] == "CTYSEA"));

    // Errors: no data; a map with broken lines (reported by line, good lines used).
    let out = client(
        env!("CARGO_BIN_EXE_anon_client"),
        &base,
        &["-r", "/dev/null"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error: anon service received no data to process\n"
    );
    let broken = std::env::temp_dir().join(format!("{base}.map"));
    std::fs::write(
        &broken,
        "not a map line\n192.0.2.0/24|CTYSEA|CTYSEA\n10.0.0.0/99|X|x\n",
    )
    .unwrap();
    let out = client(
        env!("CARGO_BIN_EXE_anon_client"),
        &base,
        &["-r", &report, "-m", broken.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(err.contains("line 1") && err.contains("line 3"), "{err}");
    assert!(
        !text(&out.stdout).contains("192.0.2.15"),
        "the good line was used"
    );
    let _ = std::fs::remove_file(broken);

    // Over the bus: undecodable base64, binary garbage, 100 MB of data; then a good request.
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let c = Client::new(&conn, Identity::for_program("test"), "")
        .await
        .unwrap();
    let q = queue_name(&base);
    let r = c
        .call(&q, AppData::new().with("data", "@@not base64@@"), T)
        .await
        .unwrap();
    assert!(
        text(&r.stderr).contains("'data': not valid base64"),
        "{}",
        text(&r.stderr)
    );
    let garbage: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let r = c
        .call(&q, AppData::new().with_file("data", &garbage), T)
        .await
        .unwrap();
    assert_eq!(
        (r.retcode, r.stdout.len()),
        (0, garbage.len()),
        "binary passes through"
    );
    let big = vec![b'x'; 100_000_000];
    let r = c
        .call(&q, AppData::new().with_file("data", &big), T)
        .await
        .unwrap();
    drop(big);
    assert_eq!(r.retcode, 1);
    assert!(
        text(&r.stderr).contains("exceeds the server's limit"),
        "{}",
        text(&r.stderr)
    );
    let r = c
        .call(&q, AppData::new().with_file("data", b"host 192.0.2.1\n"), T)
        .await
        .unwrap();
    assert_eq!(r.retcode, 0, "the workers still serve");
}

#[tokio::test(flavor = "multi_thread")]
async fn crosscor_into_cumdist() {
    let base = unique_name("crosscor");
    let _s = server(env!("CARGO_BIN_EXE_crosscor_server"), &base, &[]).await;
    let report = format!("{DATA}/report.txt");
    let map = format!("{DATA}/netmap.txt");
    let out = client(
        env!("CARGO_BIN_EXE_crosscor_client"),
        &base,
        &["-r", &report, "-m", &map, "-I", "friend"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["program"], "crosscor");
    assert_eq!(v["iff"], "friend");
    let all = v["matching_stats"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        all,
        json!({"site": "All_Sites", "count": "7", "percent": "100.00"})
    );
    assert!(v["nonmatching"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["site"] == "UNKNOWN"));

    let mut cumdist = Command::new(env!("CARGO_BIN_EXE_cumdist"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(cumdist.stdin.as_mut().unwrap(), &out.stdout).unwrap();
    let dist = cumdist.wait_with_output().unwrap();
    assert_eq!(
        text(&dist.stdout),
        "UWMED 3 42.86 42.86\nCTYSEA 2 28.57 71.43\nKCNET 1 14.29 85.71\nSEAPORT 1 14.29 100.00\nALLSITES 7 100.00\n"
    );
    // The pika contract client gets the same correlation.
    let q = queue_name(&base);
    let appdata = json!({
        "data": encode_base64(&std::fs::read(&report).unwrap()),
        "netmap": encode_base64(&std::fs::read(&map).unwrap()),
        "iff": "friend", "stats": "true",
    });
    let pika = tokio::task::spawn_blocking(move || pika_client(&q, &appdata))
        .await
        .unwrap();
    let pv: Value = serde_json::from_str(pika["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(pv["matching"], v["matching"]);
    assert_eq!(pv["matching_stats"], v["matching_stats"]);

    let bad = Command::new(env!("CARGO_BIN_EXE_cumdist"))
        .arg("/dev/null")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));

    for (iff, want) in [("maybe", "must be \"friend\" or \"foe\""), ("", "must be")] {
        let out = client(
            env!("CARGO_BIN_EXE_crosscor_client"),
            &base,
            &["-r", &report, "-I", iff],
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains(want), "{}", text(&out.stderr));
    }
    let out = client(
        env!("CARGO_BIN_EXE_crosscor_client"),
        &base,
        &["-r", "/dev/null"],
    );
    assert_eq!(
        text(&out.stderr),
        "Error: crosscor service received no data to process\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cifbulk_on_the_sample_feeds() {
    let base = unique_name("cifbulk");
    let store = format!("{DATA}/intel");
    let _s = server(
        env!("CARGO_BIN_EXE_cifbulk_server"),
        &base,
        &["--store", &store],
    )
    .await;
    let search = std::env::temp_dir().join(format!("{base}.txt"));
    std::fs::write(
        &search,
        "203.0.113.200\n198.51.100.77\nwww.malware-drop.example\n192.0.2.250\n",
    )
    .unwrap();
    let s = search.to_str().unwrap();
    let out = client(
        env!("CARGO_BIN_EXE_cifbulk_client"),
        &base,
        &["-r", s, "-S", "2014-01-03", "-E", "2014-01-10"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v["results"].as_array().unwrap();
    let addresses = |i: usize| -> Vec<String> {
        results[i]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["address"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(addresses(0), ["203.0.113.200", "203.0.113.128/25"]);
    assert_eq!(addresses(1), ["198.51.100.0/25", "198.51.100.77"]);
    assert_eq!(addresses(2), ["malware-drop.example"]);
    assert!(
        addresses(3).is_empty(),
        "expired in 2013: outside the window"
    );

    // The pika contract client, with times as numeric strings as 2014 peers sent them.
    let q = queue_name(&base);
    let appdata = json!({"searchfile": encode_base64(b"192.0.2.250\n"), "stime": "1370044800", "etime": "1370131200"});
    let pika = tokio::task::spawn_blocking(move || pika_client(&q, &appdata))
        .await
        .unwrap();
    assert_eq!(pika["retcode"], 0);
    let v: Value = serde_json::from_str(pika["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(
        v["results"][0]["results"][0]["description"],
        "expired: old open resolver"
    );

    // Errors: no searchfile (stderr only, as the originals' clients print it); backwards dates.
    let out = client(
        env!("CARGO_BIN_EXE_cifbulk_client"),
        &base,
        &["-r", "/dev/null"],
    );
    assert_eq!(
        (out.status.code(), text(&out.stdout), text(&out.stderr)),
        (Some(1), String::new(), "No searchfile specified\n".into())
    );
    let out = client(
        env!("CARGO_BIN_EXE_cifbulk_client"),
        &base,
        &["-r", s, "--stime", "20", "--etime", "10"],
    );
    assert_eq!(out.status.code(), Some(2), "refused before sending");
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let c = Client::new(&conn, Identity::for_program("test"), "")
        .await
        .unwrap();
    let r = c
        .call(
            &queue_name(&base),
            AppData::new()
                .with_file("searchfile", b"x")
                .with("stime", 20)
                .with("etime", 10),
            T,
        )
        .await
        .unwrap();
    assert!(text(&r.stderr).contains("stime (20) is after etime (10)"));
    let _ = std::fs::remove_file(search);
}

#[tokio::test(flavor = "multi_thread")]
async fn rwfind_on_the_sample_flows() {
    let base = unique_name("rwfind");
    let flows = format!("{DATA}/flows");
    let _s = server(
        env!("CARGO_BIN_EXE_rwfind_server"),
        &base,
        &["--flows", &flows],
    )
    .await;
    let search = std::env::temp_dir().join(format!("{base}.txt"));
    std::fs::write(&search, "203.0.113.200\n").unwrap();
    let s = search.to_str().unwrap();
    let window = ["-S", "2014/01/03:06", "-E", "2014/01/03:06"];
    let out = client(
        env!("CARGO_BIN_EXE_rwfind_client"),
        &base,
        &[&["-r", s, "-J", "-T", "3"][..], &window[..]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sdate"], "2014/01/03:06");
    let found: usize = v["flows_found"].as_str().unwrap().parse().unwrap();
    assert!(
        found >= 120,
        "the scanner's 120 SSH flows at least, got {found}"
    );
    assert_eq!(v["flows"].as_array().unwrap().len(), found);
    assert_eq!(v["flow_stats"].as_array().unwrap().len(), 3);
    assert!(v["flows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["sIP"] == "203.0.113.200" || f["dIP"] == "203.0.113.200"));

    let out = client(
        env!("CARGO_BIN_EXE_rwfind_client"),
        &base,
        &[&["-r", s, "-H"][..], &window[..]].concat(),
    );
    let table = text(&out.stdout);
    assert!(
        table.starts_with(&format!("Found {found} flows for 203.0.113.200")),
        "{table}"
    );
    assert_eq!(table.lines().count(), found + 2);

    // The pika client: json defaults to "true" when absent.
    let q = queue_name(&base);
    let appdata =
        json!({"user": "lancepanel", "searchfile": encode_base64(b"2001:db8:bad::/48\n")});
    let pika = tokio::task::spawn_blocking(move || pika_client(&q, &appdata))
        .await
        .unwrap();
    let v: Value = serde_json::from_str(pika["stdout"].as_str().unwrap()).unwrap();
    assert!(
        v["flows_found"].as_str().unwrap().parse::<usize>().unwrap() > 0,
        "the nfdump file's IPv6 flows"
    );

    // Errors: the user check, topn negative and huge.
    let out = client(
        env!("CARGO_BIN_EXE_rwfind_client"),
        &base,
        &["-r", s, "--user", "mallory"],
    );
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(1), String::new())
    );
    assert_eq!(
        text(&out.stderr),
        "Error: rwfind service user authorization failure\n"
    );
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let c = Client::new(&conn, Identity::for_program("test"), "")
        .await
        .unwrap();
    for topn in [json!(-1), json!("99999999999")] {
        let a = AppData::new()
            .with("user", "lancepanel")
            .with_file("searchfile", b"192.0.2.1")
            .with("topn", topn.clone());
        let r = c.call(&queue_name(&base), a, T).await.unwrap();
        assert!(
            text(&r.stderr).contains("'topn'"),
            "{topn}: {}",
            text(&r.stderr)
        );
    }
    let _ = std::fs::remove_file(search);
}

#[tokio::test(flavor = "multi_thread")]
async fn our_clients_print_recorded_replies_of_a_pika_server() {
    // cifbulk and rwfind clients print stdout only on success and stderr otherwise; anon and
    // crosscor print both.
    let cases = [
        (
            env!("CARGO_BIN_EXE_anon_client"),
            0,
            "out\n",
            "warn\n",
            "out\n",
            "warn\n",
        ),
        (
            env!("CARGO_BIN_EXE_crosscor_client"),
            2,
            "out\n",
            "err\n",
            "out\n",
            "err\n",
        ),
        (
            env!("CARGO_BIN_EXE_cifbulk_client"),
            0,
            "{}\n",
            "ignored\n",
            "{}\n",
            "",
        ),
        (
            env!("CARGO_BIN_EXE_rwfind_client"),
            1,
            "hidden\n",
            "Error: x\n",
            "",
            "Error: x\n",
        ),
    ];
    for (bin, retcode, out, err, want_out, want_err) in cases {
        let base = unique_name("recorded");
        let queue = queue_name(&base);
        let file = std::env::temp_dir().join(format!("{base}.json"));
        std::fs::write(
            &file,
            json!({"retcode": retcode, "stdout": encode_base64(out.as_bytes()), "stderr": encode_base64(err.as_bytes())}).to_string(),
        )
        .unwrap();
        let mut pika = Command::new(
            std::env::var("PIKA_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into()),
        )
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/pika/contract_server.py"
        ))
        .args([&amqp_url(), &queue, file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(pika.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let _pika = Reaped(pika);
        let got = client(bin, &base, &["-r", "/dev/null"]);
        assert_eq!(got.status.code(), Some(retcode), "{bin}");
        assert_eq!(
            (text(&got.stdout).as_str(), text(&got.stderr).as_str()),
            (want_out, want_err),
            "{bin}"
        );
        let _ = std::fs::remove_file(file);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cifbulk_reloads_its_store_on_sighup() {
    let base = unique_name("cifreload");
    let dir = std::env::temp_dir().join(&base);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.csv"),
        "indicator,description\n192.0.2.1,first\n",
    )
    .unwrap();
    let s = server(
        env!("CARGO_BIN_EXE_cifbulk_server"),
        &base,
        &["--store", dir.to_str().unwrap()],
    )
    .await;
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let c = Client::new(&conn, Identity::for_program("test"), "")
        .await
        .unwrap();
    let ask = || AppData::new().with_file("searchfile", b"192.0.2.2\n");
    let found = |r: prisem_tools::rpc::Reply| -> usize {
        let v: Value = serde_json::from_slice(&r.stdout).unwrap();
        v["results"][0]["results"].as_array().unwrap().len()
    };
    assert_eq!(
        found(c.call(&queue_name(&base), ask(), T).await.unwrap()),
        0
    );
    std::fs::write(
        dir.join("b.jsonl"),
        "{\"indicator\":\"192.0.2.2\",\"description\":\"new\"}\n",
    )
    .unwrap();
    let pid = s.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let mut n = 0;
    for _ in 0..100 {
        n = found(c.call(&queue_name(&base), ask(), T).await.unwrap());
        if n == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(n, 1, "the new feed file was not picked up");
    // A store that cannot be read any more: the old one keeps serving.
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        found(c.call(&queue_name(&base), ask(), T).await.unwrap()),
        1
    );
}
