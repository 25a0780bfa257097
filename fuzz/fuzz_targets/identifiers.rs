//! HSA-id, organisation number and DNS name checks on arbitrary strings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siths_operator::fuzzing;

fuzz_target!(|data: &[u8]| fuzzing::identifiers(data));
