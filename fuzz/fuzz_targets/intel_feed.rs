//! `intel_feed`: see [`amqp_wire_fuzz::tools::check_intel_feed`] for what it checks.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| amqp_wire_fuzz::tools::check_intel_feed(data));
