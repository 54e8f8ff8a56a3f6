//! Malformed definitions give a `SpecError` naming the element and its line, never a panic.

use amqp_codegen::{parse, SpecError, SpecErrorKind};

/// A valid definition with one hole: `{}` is replaced by the text under test. The hole is on
/// line 9.
const TEMPLATE: &str = r#"<?xml version="1.0"?>
<amqp major="0" minor="9" revision="1" port="5672">
  <constant name="frame-end" value="206"/>
  <domain name="bit" type="bit"/>
  <domain name="short" type="short"/>
  <domain name="shortstr" type="shortstr"/>
  <class name="basic" index="60">
    <method name="qos" index="10">
{}
      <field name="global" domain="bit"/>
    </method>
    <method name="qos-ok" index="11"/>
  </class>
</amqp>
"#;

fn parse_with(hole: &str) -> Result<amqp_codegen::Spec, SpecError> {
    parse(&TEMPLATE.replace("{}", hole))
}

fn error(xml: &str) -> SpecError {
    match parse(xml) {
        Ok(_) => panic!("parsed without error:\n{xml}"),
        Err(e) => e,
    }
}

#[test]
fn the_template_itself_is_valid() {
    let spec = parse_with("").unwrap();
    assert_eq!(spec.classes[0].methods[0].fields.len(), 1);
}

#[test]
fn unknown_domain() {
    let e = error(&TEMPLATE.replace("{}", r#"      <field name="size" domain="no-such"/>"#));
    assert_eq!(e.kind, SpecErrorKind::UnknownDomain("no-such".into()));
    assert_eq!(e.line, 9);
    assert_eq!(e.element, r#"<field name="size"> in basic.qos"#);
    let text = e.to_string();
    assert!(
        text.starts_with("line 9, column 7: <field name=\"size\"> in basic.qos: "),
        "{text}"
    );
    assert!(text.contains("unknown domain \"no-such\""), "{text}");
}

#[test]
fn unknown_type_of_a_field_and_of_a_domain() {
    let e = error(&TEMPLATE.replace("{}", r#"      <field name="size" type="float"/>"#));
    assert_eq!(e.kind, SpecErrorKind::UnknownType("float".into()));
    assert_eq!(e.line, 9);

    let xml = TEMPLATE.replace("{}", "").replace(
        r#"<domain name="short" type="short"/>"#,
        r#"<domain name="short" type="int16"/>"#,
    );
    let e = error(&xml);
    assert_eq!(e.kind, SpecErrorKind::UnknownType("int16".into()));
    assert_eq!(
        (e.line, e.element.as_str()),
        (5, r#"<domain name="short">"#)
    );
}

#[test]
fn domain_cycle() {
    let xml = TEMPLATE.replace("{}", "").replace(
        r#"<domain name="short" type="short"/>"#,
        r#"<domain name="a" type="b"/><domain name="b" type="a"/>"#,
    );
    let e = error(&xml);
    assert!(matches!(e.kind, SpecErrorKind::DomainCycle(_)), "{e}");
    assert_eq!(e.line, 5);
}

#[test]
fn duplicate_method_index() {
    let xml = TEMPLATE.replace("{}", "").replace(
        r#"<method name="qos-ok" index="11"/>"#,
        r#"<method name="qos-ok" index="10"/>"#,
    );
    let e = error(&xml);
    assert_eq!(
        e.kind,
        SpecErrorKind::DuplicateIndex {
            index: 10,
            first_line: 8
        }
    );
    assert_eq!(
        (e.line, e.element.as_str()),
        (12, r#"<method name="qos-ok"> in class basic"#)
    );
    assert!(
        e.to_string()
            .contains("duplicate index 10 (first used on line 8)"),
        "{e}"
    );
}

#[test]
fn duplicate_class_index_and_field_name() {
    let xml = TEMPLATE
        .replace("{}", "")
        .replace("</amqp>", "  <class name=\"tx\" index=\"60\"/>\n</amqp>");
    let e = error(&xml);
    assert_eq!(
        e.kind,
        SpecErrorKind::DuplicateIndex {
            index: 60,
            first_line: 7
        }
    );
    assert_eq!(e.element, r#"<class name="tx">"#);

    let e = error(&TEMPLATE.replace("{}", r#"      <field name="global" domain="bit"/>"#));
    assert_eq!(
        e.kind,
        SpecErrorKind::DuplicateName {
            name: "global".into(),
            first_line: 9
        }
    );
    assert_eq!(e.line, 10);
}

#[test]
fn missing_attribute() {
    let e = error(&TEMPLATE.replace("{}", r#"      <field name="size"/>"#));
    assert_eq!(e.kind, SpecErrorKind::MissingAttribute("domain"));
    assert_eq!(e.line, 9);

    let e = error(&TEMPLATE.replace("{}", r#"      <field domain="bit"/>"#));
    assert_eq!(e.kind, SpecErrorKind::MissingAttribute("name"));
    assert_eq!((e.line, e.element.as_str()), (9, "<field> in basic.qos"));

    let xml = TEMPLATE.replace("{}", "").replace(
        r#"<method name="qos-ok" index="11"/>"#,
        r#"<method name="qos-ok"/>"#,
    );
    let e = error(&xml);
    assert_eq!(e.kind, SpecErrorKind::MissingAttribute("index"));
    assert_eq!(e.line, 12);
}

#[test]
fn bad_numbers() {
    let xml = TEMPLATE
        .replace("{}", "")
        .replace(r#"index="11""#, r#"index="eleven""#);
    let e = error(&xml);
    assert_eq!(
        e.kind,
        SpecErrorKind::BadNumber {
            attribute: "index",
            value: "eleven".into()
        }
    );
    assert_eq!(e.line, 12);

    // Out of range for a 16-bit index.
    let xml = TEMPLATE
        .replace("{}", "")
        .replace(r#"index="60""#, r#"index="70000""#);
    let e = error(&xml);
    assert!(
        matches!(
            e.kind,
            SpecErrorKind::BadNumber {
                attribute: "index",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!((e.line, e.element.as_str()), (7, r#"<class name="basic">"#));

    let xml = TEMPLATE
        .replace("{}", "")
        .replace(r#"value="206""#, r#"value="-1""#);
    let e = error(&xml);
    assert!(
        matches!(
            e.kind,
            SpecErrorKind::BadNumber {
                attribute: "value",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.line, 3);

    let e = error(&TEMPLATE.replace(
        "{}",
        r#"      <field name="n" domain="shortstr"><assert check="length" value="x"/></field>"#,
    ));
    assert!(
        matches!(
            e.kind,
            SpecErrorKind::BadNumber {
                attribute: "value",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.line, 9);
}

#[test]
fn bad_flag() {
    let xml = TEMPLATE.replace("{}", "").replace(
        r#"name="qos" index"#,
        r#"name="qos" synchronous="yes" index"#,
    );
    let e = error(&xml);
    assert_eq!(
        e.kind,
        SpecErrorKind::BadFlag {
            attribute: "synchronous",
            value: "yes".into()
        }
    );
    assert_eq!(e.line, 8);
}

#[test]
fn unknown_response() {
    let e = error(&TEMPLATE.replace("{}", r#"      <response name="qos-okay"/>"#));
    assert_eq!(e.kind, SpecErrorKind::UnknownResponse("qos-okay".into()));
    assert_eq!(
        (e.line, e.element.as_str()),
        (9, r#"<response name="qos-okay"> in basic.qos"#)
    );
}

#[test]
fn not_xml() {
    let e = error(&TEMPLATE.replace("{}", "      <field name=\"a\" domain=\"bit\">"));
    assert!(matches!(e.kind, SpecErrorKind::NotXml(_)), "{e}");
    assert_eq!(e.element, "document");
    assert!(e.line >= 9, "{e}");

    let e = error("this is not XML at all");
    assert!(matches!(e.kind, SpecErrorKind::NotXml(_)), "{e}");
    assert_eq!(e.line, 1);

    let e = error("");
    assert!(matches!(e.kind, SpecErrorKind::NotXml(_)), "{e}");
}

#[test]
fn wrong_root() {
    let e = error("<?xml version=\"1.0\"?>\n<amqp-spec major=\"0\"/>");
    assert_eq!(e.kind, SpecErrorKind::WrongRoot("amqp-spec".into()));
    assert_eq!(e.line, 2);
}

#[test]
fn field_whose_type_contradicts_its_domain() {
    let e = error(&TEMPLATE.replace("{}", r#"      <field name="n" domain="bit" type="short"/>"#));
    assert!(matches!(e.kind, SpecErrorKind::TypeMismatch { .. }), "{e}");
    assert_eq!(e.line, 9);
}

/// Every prefix of a valid file, and every file with one byte removed from its first part,
/// gives an error or a spec, never a panic.
#[test]
fn truncated_and_damaged_input_never_panics() {
    let xml = TEMPLATE.replace("{}", r#"      <field name="n" domain="short"/>"#);
    for end in 0..xml.len() {
        let _ = parse(&xml[..end]);
    }
    for cut in 0..xml.len() {
        let mut damaged = xml.clone();
        damaged.remove(cut);
        if let Ok(spec) = parse(&damaged) {
            let _ = amqp_codegen::generate(&spec);
        }
    }
}
