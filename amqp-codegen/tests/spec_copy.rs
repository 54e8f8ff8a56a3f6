//! The definition the crate ships (`amqp-codegen/spec/amqp0-9-1.xml`, published with the
//! package) must be the workspace's `spec/amqp0-9-1.xml` byte for byte: `spec/` is the one
//! source of truth, the copy only travels. Refresh it with
//! `cp spec/amqp0-9-1.xml amqp-codegen/spec/`.
//!
//! Left out of the published package (it needs the workspace around it).

use std::path::Path;

#[test]
fn shipped_definition_is_the_workspace_spec() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/amqp0-9-1.xml");
    let source =
        std::fs::read(&source).unwrap_or_else(|e| panic!("cannot read {}: {e}", source.display()));
    let shipped = amqp_codegen::AMQP_0_9_1_XML.as_bytes();
    if source != shipped {
        let at = source
            .iter()
            .zip(shipped)
            .position(|(a, b)| a != b)
            .unwrap_or(source.len().min(shipped.len()));
        panic!(
            "amqp-codegen/spec/amqp0-9-1.xml differs from spec/amqp0-9-1.xml (first at byte {at}; \
             {} vs {} bytes): run `cp spec/amqp0-9-1.xml amqp-codegen/spec/`",
            shipped.len(),
            source.len()
        );
    }
}
