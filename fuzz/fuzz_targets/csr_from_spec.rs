//! CSR building from arbitrary specs: whatever passes validation must build and parse back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siths_operator::fuzzing;

fuzz_target!(|data: &[u8]| fuzzing::csr_from_spec(data));
