//! rpcserver's engine (`command`): service files, field checks, and running real programs with
//! a fixed argv, a scrubbed environment, a private working directory and limits. No broker.

use std::path::Path;
use std::time::{Duration, Instant};

use prisem_tools::command::{CommandService, ServiceSpec};
use prisem_tools::rpc::{AppData, Reply, Service};
use serde_json::json;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/services");

fn service(yaml: &str) -> CommandService {
    CommandService::new(ServiceSpec::parse(yaml, false).unwrap()).unwrap()
}

fn appdata(v: serde_json::Value) -> AppData {
    serde_json::from_value(v).unwrap()
}

async fn call(s: &CommandService, v: serde_json::Value) -> Reply {
    match s.handle(appdata(v)).await {
        Ok(r) => r,
        Err(e) => e.to_reply(),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn the_example_files_work() {
    let wc =
        CommandService::new(ServiceSpec::load(Path::new(&format!("{EXAMPLES}/wc.yml"))).unwrap())
            .unwrap();
    assert_eq!(wc.spec().queue_base, "wc");
    let r = call(
        &wc,
        json!({"data": "aGVsbG8gd29ybGQKYnllCg==", "lines": "true"}),
    )
    .await;
    assert_eq!((r.retcode, text(&r.stdout).trim()), (0, "2"));
    let r = call(
        &wc,
        json!({"data": "aGVsbG8gd29ybGQKYnllCg==", "words": "true"}),
    )
    .await;
    assert_eq!(text(&r.stdout).trim(), "3");

    let sort = CommandService::new(
        ServiceSpec::load(Path::new(&format!("{EXAMPLES}/sort.toml"))).unwrap(),
    )
    .unwrap();
    let data = prisem_tools::rpc::encode_base64(b"b,2\na,10\nc,1\n");
    let r = call(&sort, json!({"data": data, "reverse": "true"})).await;
    assert_eq!(text(&r.stdout), "c,1\nb,2\na,10\n");
    let r = call(
        &sort,
        json!({"data": data, "key": "2", "separator": ",", "numeric": "true"}),
    )
    .await;
    assert_eq!(text(&r.stdout), "c,1\nb,2\na,10\n");
    let r = call(&sort, json!({"data": data, "key": 65})).await;
    assert_eq!(r.retcode, 1);
    assert!(
        text(&r.stderr).contains("'key': 65 is outside 1..=64"),
        "{}",
        text(&r.stderr)
    );
    let r = call(&sort, json!({"reverse": "true"})).await;
    assert!(text(&r.stderr).contains("'data': is required"));
    let r = call(&sort, json!({"usage": "true"})).await;
    assert_eq!(r.retcode, 0);
    assert!(
        text(&r.stdout).contains("key          integer 1..=64"),
        "{}",
        text(&r.stdout)
    );
}

const ECHO: &str = r#"
queue_base: echo
program: /usr/bin/printf
args: ["%s\n", {field: text}, {field: mode, option: "--"}, {field: n, prefix: "n="}]
fields:
  text: {type: pattern, pattern: ".*", max_len: 64}
  mode: {type: choice, choices: [fast, slow]}
  n: {type: integer, min: 0, max: 9}
"#;

#[tokio::test]
async fn injection_strings_are_refused_or_stay_one_literal_argument() {
    let s = service(ECHO);
    for literal in [
        "; rm -rf /",
        "$(id)",
        "`id`",
        "a b  c",
        "'quoted' \"x\"",
        "*",
        "|cat /etc/passwd",
    ] {
        let r = call(&s, json!({ "text": literal })).await;
        assert_eq!(r.retcode, 0, "{literal:?}: {}", text(&r.stderr));
        assert_eq!(
            text(&r.stdout),
            format!("{literal}\n"),
            "one argument, printed as is"
        );
    }
    let refused = [
        (json!({"text": "--help"}), "'text': must not start with '-'"),
        (
            json!({"text": "-o/tmp/x"}),
            "'text': must not start with '-'",
        ),
        (
            json!({"text": "two\nlines"}),
            "'text': \"two\\nlines\" does not match",
        ),
        (
            json!({"text": "nul\u{0}byte"}),
            "'text': contains a NUL byte",
        ),
        (
            json!({"text": "x".repeat(65)}),
            "'text': 65 bytes is longer than 64",
        ),
        (
            json!({"text": ["a"]}),
            "'text': expected a string, got an array",
        ),
        (
            json!({"mode": "--fast"}),
            "'mode': \"--fast\" is not one of fast, slow",
        ),
        (
            json!({"mode": "fast; id"}),
            "'mode': \"fast; id\" is not one of fast, slow",
        ),
        (json!({"n": "1; id"}), "'n': \"1; id\" is not a number"),
        (json!({"n": -1}), "'n': -1 is outside 0..=9"),
        (
            json!({"shell": "sh"}),
            "'shell': is not a field of this service",
        ),
    ];
    for (req, want) in refused {
        let r = call(&s, req.clone()).await;
        assert_eq!(r.retcode, 1, "{req}");
        assert!(
            text(&r.stderr).contains(want),
            "{req}: {:?} lacks {want:?}",
            text(&r.stderr)
        );
        assert!(r.stdout.is_empty(), "nothing ran for {req}");
    }
    // The option and the prefix make their own elements; the value stays one.
    let r = call(&s, json!({"text": "t", "mode": "slow", "n": "7"})).await;
    assert_eq!(text(&r.stdout), "t\n--\nslow\nn=7\n");
}

#[tokio::test]
async fn files_go_to_a_private_directory_that_is_removed() {
    let s = service(
        r#"
queue_base: cat
program: /bin/cat
args: [{field: f}]
fields: {f: {type: file, required: true}}
"#,
    );
    let r = call(&s, json!({"f": "aGVsbG8="})).await;
    assert_eq!(text(&r.stdout), "hello");
    let r = call(&s, json!({"f": "not base64!"})).await;
    assert!(
        text(&r.stderr).contains("'f': not valid base64"),
        "{}",
        text(&r.stderr)
    );

    let pwd = service("queue_base: pwd\nprogram: /bin/pwd\n");
    let a = text(&call(&pwd, json!({})).await.stdout).trim().to_owned();
    let b = text(&call(&pwd, json!({})).await.stdout).trim().to_owned();
    assert_ne!(a, b, "a fresh directory per request");
    assert!(a.contains("rpcserver-"), "{a}");
    assert!(!Path::new(&a).exists(), "removed afterwards");
}

#[tokio::test]
async fn the_environment_is_scrubbed() {
    std::env::set_var("PRISEM_SECRET_FOR_TEST", "leak");
    let s = service("queue_base: env\nprogram: /usr/bin/env\nenv: {LC_ALL: C}\n");
    let r = call(&s, json!({})).await;
    let mut vars: Vec<String> = text(&r.stdout).lines().map(str::to_owned).collect();
    vars.sort();
    assert_eq!(vars, ["LANG=C.UTF-8", "LC_ALL=C", "PATH=/usr/bin:/bin"]);
}

#[tokio::test]
async fn the_time_limit_kills_the_whole_process_group() {
    let dir = std::env::temp_dir().join(format!("rpcserver-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("pid");
    // A test-only service file running a shell with fixed literal arguments: it leaves a
    // background child behind, which the group kill must take too.
    let yaml = format!(
        "queue_base: slow\nprogram: /bin/sh\nargs: [\"-c\", \"sleep 30 & echo $! > {}; wait\"]\nlimits: {{timeout_seconds: 0.5}}\n",
        pidfile.display()
    );
    let s = service(&yaml);
    let started = Instant::now();
    let r = call(&s, json!({})).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(r.retcode, 124);
    assert!(text(&r.stderr).contains("ran longer than 0.5 s and was stopped"));
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let proc_path = format!("/proc/{}", pid.trim());
    for _ in 0..50 {
        let gone = std::fs::read_to_string(format!("{proc_path}/stat"))
            .map_or(true, |st| st.split_whitespace().nth(2) == Some("Z"));
        if gone {
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the background sleep {pid} outlived the time limit");
}

#[tokio::test]
async fn output_beyond_the_limit_stops_the_program() {
    let s = service(
        "queue_base: yes\nprogram: /usr/bin/yes\nlimits: {max_stdout: 1000, timeout_seconds: 20}\n",
    );
    let started = Instant::now();
    let r = call(&s, json!({})).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(r.retcode, 1);
    assert_eq!(r.stdout.len(), 1000);
    assert!(text(&r.stderr).contains("more than 1000 bytes on standard output"));
}

#[tokio::test]
async fn exit_status_and_stdin() {
    let s = service(
        "queue_base: t\nprogram: /bin/sh\nargs: [\"-c\", \"cat; echo oops >&2; exit 3\"]\nfields: {data: {type: stdin}}\n",
    );
    let r = call(&s, json!({"data": "aW4K"})).await;
    assert_eq!(
        (r.retcode, text(&r.stdout), text(&r.stderr)),
        (3, "in\n".into(), "oops\n".into())
    );
}

#[test]
fn bad_service_files_are_refused_with_the_reason() {
    let cases = [
        (
            "queue_base: x\nprogram: bin/ls\n",
            "must be an absolute path",
        ),
        (
            "queue_base: x\nprogram: /no/such/program\n",
            "/no/such/program",
        ),
        (
            "queue_base: x\nprogram: /etc/passwd\n",
            "not an executable file",
        ),
        (
            "queue_base: x\nprogram: /bin/ls\nfields: {a: {type: shell}}\n",
            "unknown type \"shell\"",
        ),
        (
            "queue_base: x\nprogram: /bin/ls\nargs: [{field: nope}]\n",
            "field \"nope\" is not declared",
        ),
        (
            "queue_base: x\nprogram: /bin/ls\nfields: {a: {type: stdin}, b: {type: stdin}}\n",
            "at most one field may be the program's standard input",
        ),
        (
            "queue_base: x\nprogram: /bin/ls\nfields: {a: {type: pattern, pattern: \"(\"}}\n",
            "bad pattern",
        ),
        ("queue_base: 'a b'\nprogram: /bin/ls\n", "queue_base"),
        (
            "queue_base: x\nprogram: /bin/ls\nbogus: 1\n",
            "unknown field `bogus`",
        ),
        (
            "queue_base: x\nprogram: /bin/ls\nfields: {a: {type: flag}}\nargs: [{field: a}]\n",
            "needs an option",
        ),
    ];
    for (yaml, want) in cases {
        let e = ServiceSpec::parse(yaml, false).unwrap_err().to_string();
        assert!(e.contains(want), "{yaml:?}: {e:?} lacks {want:?}");
    }
    let bad_default = ServiceSpec::parse(
        "queue_base: x\nprogram: /bin/ls\nfields: {n: {type: integer, max: 3, default: 9}}\n",
        false,
    )
    .unwrap();
    let e = CommandService::new(bad_default).unwrap_err().to_string();
    assert!(e.contains("'n': 9 is outside"), "{e}");
    let toml_err = ServiceSpec::parse("queue_base = \n", true)
        .unwrap_err()
        .to_string();
    assert!(toml_err.contains("line 1"), "{toml_err}");
}

#[tokio::test]
async fn a_request_given_up_on_takes_its_processes_with_it() {
    let dir = std::env::temp_dir().join(format!("rpcserver-drop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("pid");
    let yaml = format!(
        "queue_base: slow\nprogram: /bin/sh\nargs: [\"-c\", \"sleep 30 & echo $! > {}; wait\"]\n",
        pidfile.display()
    );
    let s = service(&yaml);
    // The server's own time limit drops the handler's future; nothing may be left running.
    let given_up = tokio::time::timeout(Duration::from_millis(500), s.handle(appdata(json!({}))));
    assert!(given_up.await.is_err());
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    for _ in 0..50 {
        let gone = std::fs::read_to_string(&stat)
            .map_or(true, |st| st.split_whitespace().nth(2) == Some("Z"));
        if gone {
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the background sleep {pid} outlived the dropped request");
}

#[tokio::test]
async fn the_working_directory_is_private() {
    let s = service("queue_base: stat\nprogram: /usr/bin/stat\nargs: [\"-c\", \"%a\", \".\"]\n");
    let r = call(&s, json!({})).await;
    assert_eq!(text(&r.stdout).trim(), "700");
}
