//! The model `parse` builds from the mini fixture, which uses every part of the schema.

use std::path::PathBuf;

use amqp_codegen::model::{Assert, Chassis, ErrorClass, WireType};
use amqp_codegen::{generate, parse, GenError, Spec};

fn mini_xml() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mini.xml");
    std::fs::read_to_string(path).unwrap()
}

fn mini() -> Spec {
    parse(&mini_xml()).unwrap()
}

#[test]
fn root_constants_and_docs() {
    let spec = mini();
    assert_eq!(
        (spec.major, spec.minor, spec.revision, spec.port),
        (0, 9, 1, 5672)
    );
    assert_eq!(spec.comment.as_deref(), Some("golden-test fixture"));
    assert_eq!(spec.docs.paragraphs.len(), 2);
    assert!(spec.docs.paragraphs[1].starts_with("Text is escaped for rustdoc: [brackets], <angle"));
    assert_eq!(
        spec.docs.grammar,
        vec![vec![
            "mini    = C:hello S:hello-ok *post close".to_owned(),
            "close   = C:CLOSE S:CLOSE-OK".to_owned()
        ]]
    );
    let not_found = spec
        .constants
        .iter()
        .find(|c| c.name == "not-found")
        .unwrap();
    assert_eq!(not_found.value, 404);
    assert_eq!(not_found.error_class(), Some(ErrorClass::Soft));
    assert!(not_found.is_reply_code());
    let success = spec
        .constants
        .iter()
        .find(|c| c.name == "reply-success")
        .unwrap();
    assert!(success.is_reply_code() && success.error_class().is_none());
    let frame_end = spec
        .constants
        .iter()
        .find(|c| c.name == "frame-end")
        .unwrap();
    assert!(!frame_end.is_reply_code());
}

#[test]
fn domains_follow_chains_and_collect_asserts() {
    let spec = mini();
    let topic = spec.domain("topic").unwrap();
    assert_eq!(topic.type_name, "name");
    assert_eq!(topic.ty, WireType::ShortStr);
    // `name` has type `shortstr`, which is also a domain (of the wire type shortstr).
    assert_eq!(topic.chain, vec!["name".to_owned(), "shortstr".to_owned()]);
    assert_eq!(
        topic.asserts,
        vec![
            Assert::NotNull,
            Assert::Length(64),
            Assert::Regexp("^[a-z0-9-_.]*$".into())
        ]
    );
    assert_eq!(topic.label.as_deref(), Some("topic name"));
    // `<domain name="octet" type="octet"/>` ends at the wire type.
    let octet = spec.domain("octet").unwrap();
    assert!(octet.chain.is_empty());
    assert_eq!(octet.ty, WireType::Octet);
}

#[test]
fn classes_methods_and_fields() {
    let spec = mini();
    let sample = spec.class("sample").unwrap();
    assert_eq!(sample.index, 10);
    assert_eq!(sample.handler.as_deref(), Some("channel"));
    assert_eq!(sample.label.as_deref(), Some("work with samples"));
    assert_eq!(
        sample.chassis,
        vec![
            Chassis {
                name: "server".into(),
                implement: "MUST".into()
            },
            Chassis {
                name: "client".into(),
                implement: "MAY".into()
            },
        ]
    );

    let hello = sample.method("hello").unwrap();
    assert!(hello.synchronous && !hello.content && !hello.deprecated);
    assert_eq!(hello.responses, vec!["hello-ok".to_owned()]);
    assert_eq!(hello.label.as_deref(), Some("say hello"));
    assert_eq!(
        hello.docs.paragraphs,
        vec!["Opens the conversation.".to_owned()]
    );
    assert_eq!(hello.docs.rules.len(), 1);
    assert_eq!(hello.docs.rules[0].name.as_deref(), Some("be-polite"));
    // The scenario doc of the rule is left out.
    assert_eq!(
        hello.docs.rules[0].paragraphs,
        vec!["A peer says hello before anything else.".to_owned()]
    );
    let names: Vec<&str> = hello.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["reserved-1", "topic", "greeting", "priority", "arguments"]
    );
    let reserved = &hello.fields[0];
    assert!(reserved.reserved);
    assert_eq!(
        (reserved.domain.as_deref(), reserved.ty),
        (None, WireType::Short)
    );
    let greeting = &hello.fields[2];
    assert_eq!(greeting.domain.as_deref(), Some("longstr"));
    assert!(greeting.domain_asserts.is_empty());
    assert_eq!(greeting.field_asserts, vec![Assert::NotNull]);
    let priority = &hello.fields[3];
    assert_eq!(
        priority.field_asserts,
        vec![Assert::Other {
            check: "le".into(),
            attributes: vec![("value".into(), "9".into())]
        }]
    );
    let topic = &hello.fields[1];
    assert_eq!(topic.asserts().count(), 3);

    let post = sample.method("post").unwrap();
    assert!(post.content && !post.synchronous);
    assert!(sample.method("close-ok").unwrap().deprecated);

    let content = spec.class("content").unwrap();
    let props: Vec<(&str, WireType)> = content
        .properties
        .iter()
        .map(|f| (f.name.as_str(), f.ty))
        .collect();
    assert_eq!(
        props,
        [
            ("content-type", WireType::ShortStr),
            ("headers", WireType::Table),
            ("delivery-mode", WireType::Octet),
            ("sent-at", WireType::Timestamp),
            ("type", WireType::ShortStr),
        ]
    );
}

#[test]
fn crlf_line_endings_give_the_same_model() {
    let xml = mini_xml();
    let crlf = xml.replace('\n', "\r\n");
    assert_eq!(parse(&crlf).unwrap(), parse(&xml).unwrap());
    assert_eq!(
        generate(&parse(&crlf).unwrap()),
        generate(&parse(&xml).unwrap())
    );
}

/// A one-class spec with `fields` in method `m` (and `props` as content properties).
fn one_class(fields: &str, props: &str) -> Spec {
    parse(&format!(
        r#"<amqp major="0" minor="9" port="5672">
             <domain name="bit" type="bit"/><domain name="octet" type="octet"/>
             <class name="c" index="10">{props}<method name="m" index="10">{fields}</method></class>
           </amqp>"#
    ))
    .unwrap()
}

#[test]
fn generation_errors() {
    let clash = one_class(
        r#"<field name="no-ack" domain="bit"/><field name="no_ack" domain="bit"/>"#,
        "",
    );
    assert!(
        matches!(generate(&clash), Err(GenError::NameClash { ref ident, .. }) if ident == "no_ack"),
        "{:?}",
        generate(&clash)
    );

    let bad = one_class(r#"<field name="2nd" domain="bit"/>"#, "");
    assert!(matches!(generate(&bad), Err(GenError::BadName { ref name, .. }) if name == "2nd"));

    let bit_prop = one_class("", r#"<field name="flag" domain="bit"/>"#);
    assert!(matches!(
        generate(&bit_prop),
        Err(GenError::Unsupported { .. })
    ));

    let many: String = (0..16)
        .map(|i| format!(r#"<field name="p{i}" domain="octet"/>"#))
        .collect();
    let too_many = one_class("", &many);
    let e = generate(&too_many).unwrap_err();
    assert!(e.to_string().contains("more than 15"), "{e}");

    let fifteen: String = (0..15)
        .map(|i| format!(r#"<field name="p{i}" domain="octet"/>"#))
        .collect();
    let rust = generate(&one_class("", &fifteen)).unwrap();
    // The fifteenth property takes bit 1; no bit is left unknown in the first word.
    assert!(rust.contains("flags |= 0x0002;"), "{rust}");
    assert!(!rust.contains("(flags & 0x0000)"), "{rust}");
    let fourteen: String = (0..14)
        .map(|i| format!(r#"<field name="p{i}" domain="octet"/>"#))
        .collect();
    let rust = generate(&one_class("", &fourteen)).unwrap();
    assert!(rust.contains("if (flags & 0x0002) != 0 {"), "{rust}");
}

#[test]
fn keywords_become_usable_identifiers() {
    let spec = one_class(
        r#"<field name="type" domain="octet"/><field name="match" domain="octet"/>
           <field name="self" domain="octet"/>"#,
        "",
    );
    let rust = generate(&spec).unwrap();
    for expected in [
        "pub kind: u8,",
        "pub r#match: u8,",
        "pub self_: u8,",
        r#"reader.u8("c.m.type")?"#,
    ] {
        assert!(rust.contains(expected), "{expected} not in:\n{rust}");
    }
}

#[test]
fn the_binary_prints_source_or_fails_with_a_message() {
    let bin = env!("CARGO_BIN_EXE_amqp-codegen");
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mini.xml");
    let out = std::process::Command::new(bin)
        .arg(&fixture)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        generate(&mini()).unwrap()
    );

    let dir = std::env::temp_dir().join(format!("amqp-codegen-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("broken.xml");
    std::fs::write(
        &broken,
        "<amqp major=\"0\" minor=\"9\" port=\"5672\">\n<class index=\"1\"/>\n</amqp>",
    )
    .unwrap();
    let out = std::process::Command::new(bin)
        .arg(&broken)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("line 2, column 1: <class>: missing required attribute `name`"),
        "{stderr}"
    );

    let out = std::process::Command::new(bin).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}
