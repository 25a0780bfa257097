//! Domain-coverage matching on arbitrary names and grants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siths_operator::fuzzing;

fuzz_target!(|data: &[u8]| fuzzing::coverage(data));
