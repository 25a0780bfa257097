//! Certificate and PEM parsing, and the acceptance check, on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siths_operator::fuzzing;

fuzz_target!(|data: &[u8]| fuzzing::pem_chain(data));
