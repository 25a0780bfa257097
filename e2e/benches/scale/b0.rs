//! B0: the floor of issuance on one core. Two measurements in one run:
//!
//! - RSA key generation alone with each candidate generator (issue #21): aws-lc-rs called
//!   directly, aws-lc through rcgen as the operator generates today (`KeySpec::generate`),
//!   the system OpenSSL 3 through the `openssl` crate, and RustCrypto's `rsa`. The fastest
//!   is the floor from then on; the operator's own library is reported beside it.
//! - key + CSR + certificate through the operator's pki code (as before), for RSA and
//!   ECDSA.
//!
//! RSA generation time varies a lot from key to key (the prime search), and the machine is
//! shared: each candidate runs in several blocks of at least `BLOCK_SECONDS` and
//! `block_keys` keys, the candidates take turns block by block (noise falls on all of
//! them alike), and a figure is the median of its blocks. Time is the generating thread's
//! own CPU time (`/proc/thread-self/schedstat`), so a block that another process delays
//! is not counted slower; the wall-clock rate is printed beside it.

use std::{
    collections::BTreeMap,
    hint::black_box,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use jiff::Timestamp;
use siths_operator::pki::{CertificateProfile, KeySpec, LocalCa, LocalCaOptions, Usage};

use super::{Report, Sizes, median};

/// Shortest block, full size. Five blocks make the 20 s per candidate and key size.
const BLOCK_SECONDS: f64 = 4.0;
/// Blocks per candidate and key size, full size.
const BLOCKS: usize = 5;

/// A candidate RSA key generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Generator {
    AwsLcRs,
    Operator,
    OpenSsl,
    RustCrypto,
}

const GENERATORS: [Generator; 4] = [
    Generator::AwsLcRs,
    Generator::Operator,
    Generator::OpenSsl,
    Generator::RustCrypto,
];

impl Generator {
    /// Short name: the results key and the table column.
    fn key(self) -> &'static str {
        match self {
            Generator::AwsLcRs => "aws-lc-rs",
            Generator::Operator => "aws-lc via rcgen (operator)",
            Generator::OpenSsl => "OpenSSL 3 (openssl crate)",
            Generator::RustCrypto => "RustCrypto rsa",
        }
    }

    /// What exactly ran, versions included.
    fn describe(self) -> String {
        match self {
            Generator::AwsLcRs => "aws-lc-rs 1.19 `rsa::KeyPair::generate` (aws-lc-sys 0.47; its only option is the key size: `generate_fips` is the same call, for the aws-lc-fips-sys build)".into(),
            Generator::Operator => "the operator's `pki::KeySpec::generate` (rcgen 0.14 `KeyPair::generate_rsa_for`: aws-lc-rs `KeyPair::generate` + PKCS#8 DER)".into(),
            Generator::OpenSsl => format!(
                "`openssl::rsa::Rsa::generate` against the system library ({})",
                openssl::version::version()
            ),
            Generator::RustCrypto => "RustCrypto `rsa` 0.10 `PrivateKey::new` (crypto-bigint, getrandom's SysRng)".into(),
        }
    }

    /// Generates one key of `bits`; returns a byte of it so the work cannot be elided.
    fn generate(self, bits: u32) -> Result<u8> {
        Ok(match self {
            Generator::AwsLcRs => {
                let size = match bits {
                    2048 => aws_lc_rs::rsa::KeySize::Rsa2048,
                    3072 => aws_lc_rs::rsa::KeySize::Rsa3072,
                    other => anyhow::bail!("no aws-lc-rs key size {other}"),
                };
                let key = aws_lc_rs::rsa::KeyPair::generate(size)
                    .map_err(|_| anyhow::anyhow!("aws-lc-rs RSA generation failed"))?;
                key.public_modulus_len() as u8
            }
            Generator::Operator => {
                let spec = KeySpec {
                    algorithm: siths_operator::pki::KeyAlgorithm::Rsa,
                    size: bits,
                };
                spec.generate()?.public_key_der()[0]
            }
            Generator::OpenSsl => {
                let key = openssl::rsa::Rsa::generate(bits)?;
                key.size() as u8
            }
            Generator::RustCrypto => {
                use rsa::traits::PublicKeyParts as _;
                let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits as usize)?;
                key.n_bytes()[0]
            }
        })
    }
}

/// Nanoseconds this thread has run on a CPU; `None` where the kernel does not say.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One block's rates: per CPU second of the thread, and per wall second.
#[derive(Debug, Clone, Copy)]
struct Block {
    per_cpu_second: f64,
    per_wall_second: f64,
}

/// Runs `work` until at least `min_keys` times and `min_seconds` of wall time.
fn block(min_keys: usize, min_seconds: f64, mut work: impl FnMut() -> Result<()>) -> Result<Block> {
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    let mut n = 0usize;
    while n < min_keys || start.elapsed().as_secs_f64() < min_seconds {
        work()?;
        n += 1;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
        _ => wall,
    };
    Ok(Block {
        per_cpu_second: n as f64 / cpu,
        per_wall_second: n as f64 / wall,
    })
}

/// B0, both halves; results under "B0 ..." keys. The RSA-2048 floor (the fastest
/// generator's key + the operator's CSR and certificate) is "B0 RSA-2048 floor per
/// core/s", which B1 compares with.
pub(crate) fn floor(
    report: &mut Report,
    sizes: Sizes,
    smoke: bool,
    results: &mut BTreeMap<String, f64>,
) -> Result<()> {
    let ca = LocalCa::generate(&LocalCaOptions {
        common_name: "bench root".into(),
        organization: "bench".into(),
        key: KeySpec::ECDSA_P256,
        intermediate_common_name: None,
        not_before: Timestamp::now(),
        validity: Duration::from_secs(10 * 365 * 86_400),
    })?;
    let profile = CertificateProfile {
        dns_names: vec!["bench.region.se".into()],
        hsa_id: Some("SE2321000016-B0".into()),
        organization: "Region".into(),
        locality: None,
        usage: Usage::ServerToServer,
    };
    let issue = |key: &siths_operator::pki::PrivateKey| -> Result<()> {
        let csr = siths_operator::pki::build_csr(&profile, key)?;
        let parsed = siths_operator::pki::parse_csr(&csr)?;
        ca.sign_csr(
            &parsed,
            Timestamp::now(),
            Duration::from_secs(86_400),
            &siths_operator::pki::random_serial()?,
        )?;
        Ok(())
    };
    let (blocks, block_seconds) = if smoke {
        (1, 0.0)
    } else {
        (sizes.runs.max(1).max(BLOCKS), BLOCK_SECONDS)
    };

    // Key + CSR + certificate through the operator's library, as the operator issues.
    for (label, spec, keys) in [
        ("RSA-2048", KeySpec::RSA_2048, 30usize),
        ("RSA-3072", KeySpec::RSA_3072, 6),
        ("ECDSA-P256", KeySpec::ECDSA_P256, 300),
    ] {
        let keys = if smoke { 2 } else { keys };
        let mut runs = Vec::new();
        for _ in 0..blocks {
            runs.push(block(keys, block_seconds, || issue(&spec.generate()?))?);
        }
        let rate = median(runs.iter().map(|b| b.per_cpu_second).collect());
        let wall = median(runs.iter().map(|b| b.per_wall_second).collect());
        results.insert(format!("B0 {label} operator per core/s"), rate);
        report.say(format!(
            "B0 operator's library {label}: {rate:.1} key+CSR+certificate per CPU second on one core ({wall:.1}/s by the wall clock), median of {blocks} blocks"
        ));
    }

    // The CSR and certificate alone, with a key made once: added to each generator's time.
    let mut issue_seconds = BTreeMap::new();
    for (label, spec) in [
        ("RSA-2048", KeySpec::RSA_2048),
        ("RSA-3072", KeySpec::RSA_3072),
    ] {
        let key = spec.generate()?;
        let b = block(
            if smoke { 5 } else { 200 },
            if smoke { 0.0 } else { 1.0 },
            || issue(&key),
        )?;
        issue_seconds.insert(label, 1.0 / b.per_cpu_second);
    }

    // Key generation alone, candidate by candidate, block by block.
    for (label, bits, keys) in [("RSA-2048", 2048u32, 20usize), ("RSA-3072", 3072, 5)] {
        let keys = if smoke { 1 } else { keys };
        let mut runs: BTreeMap<&str, Vec<Block>> = BTreeMap::new();
        for _ in 0..blocks {
            for g in GENERATORS {
                let b = block(keys, block_seconds, || {
                    black_box(g.generate(black_box(bits))?);
                    Ok(())
                })
                .with_context(|| format!("{} {label}", g.key()))?;
                runs.entry(g.key()).or_default().push(b);
            }
        }
        let mut rates = Vec::new();
        for g in GENERATORS {
            let blocks = &runs[g.key()];
            let rate = median(blocks.iter().map(|b| b.per_cpu_second).collect());
            let wall = median(blocks.iter().map(|b| b.per_wall_second).collect());
            let spread: Vec<String> = blocks
                .iter()
                .map(|b| format!("{:.1}", b.per_cpu_second))
                .collect();
            results.insert(format!("B0 keygen {label} {} per core/s", g.key()), rate);
            report.say(format!(
                "B0 keygen {label} {}: {rate:.1} keys per CPU second ({wall:.1}/s by the wall clock; blocks {}): {}",
                g.key(),
                spread.join(" "),
                g.describe()
            ));
            rates.push((g, rate));
        }
        let (best, best_rate) = rates
            .iter()
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .context("no generator")?;
        let operator_rate = rates
            .iter()
            .find(|(g, _)| *g == Generator::Operator)
            .map_or(f64::NAN, |(_, r)| *r);
        // Candidates within 5 % of the best: a tie on this machine, whatever the order.
        let tied: Vec<&str> = rates
            .iter()
            .filter(|(g, r)| *g != best && *r >= 0.95 * best_rate)
            .map(|(g, _)| g.key())
            .collect();
        let issue_s = issue_seconds[label];
        let floor = 1.0 / (1.0 / best_rate + issue_s);
        let operator_floor = 1.0 / (1.0 / operator_rate + issue_s);
        results.insert(format!("B0 {label} floor per core/s"), floor);
        report.say(format!(
            "B0 floor {label}: best generator {}{}: {best_rate:.1} keys/s per core; with the operator's CSR and certificate ({:.1} ms) {floor:.1} key+CSR+certificate/s per core ({:.1}/s on 2 cores); the operator's library (aws-lc via rcgen): {operator_rate:.1} keys/s, {operator_floor:.1}/s per core ({:.2}x slower)",
            best.key(),
            if tied.is_empty() {
                String::new()
            } else {
                format!(" (within 5 %: {})", tied.join(", "))
            },
            issue_s * 1000.0,
            floor * 2.0,
            floor / operator_floor
        ));
    }
    Ok(())
}
