//! The audit input reader: arbitrary YAML/JSON manifests into the inventory and the audit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siths_operator::fuzzing;

fuzz_target!(|data: &[u8]| fuzzing::audit_input(data));
