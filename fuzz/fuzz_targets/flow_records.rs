//! `flow_records`: see [`amqp_wire_fuzz::tools::check_flow_records`] for what it checks.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| amqp_wire_fuzz::tools::check_flow_records(data));
