//! Private keys: generation, PKCS#8 PEM, and a `Debug` that prints nothing secret.

use std::fmt;

use rcgen::{KeyPair, PublicKeyData};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::error::PkiError;
use super::pem;

/// Smallest RSA modulus accepted for loaded keys and certificates.
pub const MIN_RSA_BITS: u32 = 2048;

/// Public key algorithm family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// RSA with PKCS#1 v1.5 signatures (SHA-256).
    Rsa,
    /// ECDSA on NIST P-256 (SHA-256) or P-384 (SHA-384).
    Ecdsa,
}

/// Algorithm and size of a key: modulus bits for RSA, curve bits (256, 384) for ECDSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    /// Algorithm family.
    pub algorithm: KeyAlgorithm,
    /// RSA modulus bits, or 256 / 384 for ECDSA P-256 / P-384.
    pub size: u32,
}

impl KeySpec {
    /// RSA 2048, the SITHS default.
    pub const RSA_2048: KeySpec = KeySpec {
        algorithm: KeyAlgorithm::Rsa,
        size: 2048,
    };
    /// RSA 3072.
    pub const RSA_3072: KeySpec = KeySpec {
        algorithm: KeyAlgorithm::Rsa,
        size: 3072,
    };
    /// RSA 4096.
    pub const RSA_4096: KeySpec = KeySpec {
        algorithm: KeyAlgorithm::Rsa,
        size: 4096,
    };
    /// ECDSA on P-256.
    pub const ECDSA_P256: KeySpec = KeySpec {
        algorithm: KeyAlgorithm::Ecdsa,
        size: 256,
    };
    /// ECDSA on P-384.
    pub const ECDSA_P384: KeySpec = KeySpec {
        algorithm: KeyAlgorithm::Ecdsa,
        size: 384,
    };

    /// Generates a new key: RSA 2048, 3072 or 4096, or ECDSA P-256 or P-384.
    pub fn generate(&self) -> Result<PrivateKey, PkiError> {
        let generated = match (self.algorithm, self.size) {
            (KeyAlgorithm::Rsa, 2048) => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
            (KeyAlgorithm::Rsa, 3072) => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072)
            }
            (KeyAlgorithm::Rsa, 4096) => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096)
            }
            (KeyAlgorithm::Ecdsa, 256) => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            (KeyAlgorithm::Ecdsa, 384) => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            _ => return Err(PkiError::UnsupportedKeySpec(self.to_string())),
        };
        let pair = generated.map_err(|e| PkiError::KeyGeneration(e.to_string()))?;
        Ok(PrivateKey { pair, spec: *self })
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.algorithm {
            KeyAlgorithm::Rsa => write!(f, "RSA {}", self.size),
            KeyAlgorithm::Ecdsa => write!(f, "ECDSA P-{}", self.size),
        }
    }
}

/// A private key held by the operator. `Debug` and `Display` show only the algorithm,
/// for example `PrivateKey(<redacted ECDSA P-256>)`.
pub struct PrivateKey {
    pair: KeyPair,
    spec: KeySpec,
}

impl PrivateKey {
    /// Loads an unencrypted PKCS#8 key (a PEM block labelled `PRIVATE KEY`): RSA of at least
    /// 2048 bits, or ECDSA P-256 / P-384.
    pub fn from_pem(pem_text: &str) -> Result<Self, PkiError> {
        let blocks = pem::parse(pem_text).map_err(|e| match e {
            // Never echo key material; the PEM errors only name labels and positions.
            PkiError::NoPemBlock { .. } => PkiError::BadPrivateKey(
                "no PEM block found: expected an unencrypted PKCS#8 private key".into(),
            ),
            other => PkiError::BadPrivateKey(other.to_string()),
        })?;
        let mut keys = blocks.iter().filter(|b| b.label.ends_with("PRIVATE KEY"));
        let block = match (keys.next(), keys.next()) {
            (None, _) => {
                return Err(PkiError::BadPrivateKey(
                    "no PEM block found: expected an unencrypted PKCS#8 private key".into(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(PkiError::BadPrivateKey(
                    "more than one private key in the PEM".into(),
                ));
            }
            (Some(block), None) => block,
        };
        if block.label != pem::PRIVATE_KEY {
            // The label is not echoed: for a PKCS#1 or SEC1 key it is a private-key header.
            return Err(PkiError::BadPrivateKey(
                "found another kind of PEM block (PKCS#1, SEC1 or encrypted?); expected an unencrypted PKCS#8 private key; convert it with `openssl pkcs8 -topk8 -nocrypt`".into(),
            ));
        }
        Self::from_pkcs8_der(&block.der)
    }

    /// Loads an unencrypted PKCS#8 DER key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, PkiError> {
        let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(der);
        let pair = KeyPair::try_from(&pkcs8).map_err(|_| {
            PkiError::BadPrivateKey(
                "the PKCS#8 data is not an RSA, ECDSA P-256 or ECDSA P-384 private key".into(),
            )
        })?;
        let spec = spec_of_spki(&pair.subject_public_key_info())
            .map_err(|e| PkiError::BadPrivateKey(e.to_string()))?;
        Ok(PrivateKey { pair, spec })
    }

    /// The key as unencrypted PKCS#8 PEM (label `PRIVATE KEY`). Secret.
    pub fn to_pem(&self) -> String {
        pem::encode(pem::PRIVATE_KEY, self.pair.serialized_der())
    }

    /// The key as unencrypted PKCS#8 DER, for writing it into an encrypted store. Secret.
    pub(crate) fn pkcs8_der(&self) -> &[u8] {
        self.pair.serialized_der()
    }

    /// The public half as DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.pair.subject_public_key_info()
    }

    /// Algorithm and size of the key.
    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// The rcgen key pair, for signing inside this module.
    pub(crate) fn key_pair(&self) -> &KeyPair {
        &self.pair
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(<redacted {}>)", self.spec)
    }
}

impl fmt::Display for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Tells the algorithm and size of a DER SubjectPublicKeyInfo; rejects RSA below
/// [`MIN_RSA_BITS`] and curves other than P-256 and P-384.
pub fn spec_of_spki(spki_der: &[u8]) -> Result<KeySpec, PkiError> {
    let (rest, spki) = SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| PkiError::UnsupportedKey(format!("malformed SubjectPublicKeyInfo: {e}")))?;
    if !rest.is_empty() {
        return Err(PkiError::UnsupportedKey(
            "trailing bytes after the SubjectPublicKeyInfo".into(),
        ));
    }
    spec_of(&spki)
}

/// [`spec_of_spki`] on an already parsed SubjectPublicKeyInfo.
pub(crate) fn spec_of(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeySpec, PkiError> {
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_PKCS1_RSAENCRYPTION {
        let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err(PkiError::UnsupportedKey("malformed RSA public key".into()));
        };
        let bits = rsa_modulus_bits(rsa.modulus);
        if bits < MIN_RSA_BITS {
            return Err(PkiError::UnsupportedKey(format!(
                "RSA {bits} is too small; at least RSA {MIN_RSA_BITS} is required"
            )));
        }
        Ok(KeySpec {
            algorithm: KeyAlgorithm::Rsa,
            size: bits,
        })
    } else if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        match curve {
            Some(c) if c == OID_EC_P256 => Ok(KeySpec::ECDSA_P256),
            Some(c) if c == OID_NIST_EC_P384 => Ok(KeySpec::ECDSA_P384),
            Some(c) => Err(PkiError::UnsupportedKey(format!(
                "ECDSA curve {c} is not supported; use P-256 or P-384"
            ))),
            None => Err(PkiError::UnsupportedKey(
                "ECDSA key without a named curve".into(),
            )),
        }
    } else {
        Err(PkiError::UnsupportedKey(format!(
            "public key algorithm {alg} is not supported; use RSA or ECDSA"
        )))
    }
}

fn rsa_modulus_bits(modulus: &[u8]) -> u32 {
    let trimmed: &[u8] = {
        let start = modulus
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(modulus.len());
        &modulus[start..]
    };
    match trimmed.first() {
        None => 0,
        Some(&first) => {
            let len = u32::try_from(trimmed.len()).unwrap_or(u32::MAX / 8);
            (len - 1) * 8 + (8 - first.leading_zeros())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil;

    #[test]
    fn ecdsa_keys_round_trip_through_pem() {
        for spec in [KeySpec::ECDSA_P256, KeySpec::ECDSA_P384] {
            let key = spec.generate().unwrap();
            assert_eq!(key.spec(), spec);
            let pem_text = key.to_pem();
            assert!(pem_text.starts_with(concat!("-----BEGIN ", "PRIVATE KEY-----\n")));
            let loaded = PrivateKey::from_pem(&pem_text).unwrap();
            assert_eq!(loaded.spec(), spec);
            assert_eq!(loaded.public_key_der(), key.public_key_der());
            assert_eq!(loaded.to_pem(), pem_text);
            assert_eq!(spec_of_spki(&key.public_key_der()).unwrap(), spec);
        }
    }

    #[test]
    fn rsa_keys_round_trip_through_pem() {
        for (key, spec) in [
            (testutil::rsa_2048(), KeySpec::RSA_2048),
            (testutil::rsa_3072(), KeySpec::RSA_3072),
        ] {
            assert_eq!(key.spec(), spec);
            let loaded = PrivateKey::from_pem(&key.to_pem()).unwrap();
            assert_eq!(loaded.spec(), spec);
            assert_eq!(loaded.public_key_der(), key.public_key_der());
            assert_eq!(spec_of_spki(&key.public_key_der()).unwrap(), spec);
        }
    }

    #[test]
    fn debug_and_display_are_redacted() {
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        assert_eq!(format!("{key:?}"), "PrivateKey(<redacted ECDSA P-256>)");
        assert_eq!(key.to_string(), "PrivateKey(<redacted ECDSA P-256>)");
        assert_eq!(
            format!("{:?}", testutil::rsa_2048()),
            "PrivateKey(<redacted RSA 2048>)"
        );
        // The base64 body of the key appears nowhere in the formatted output.
        let pem_text = key.to_pem();
        let body_line = pem_text.lines().nth(1).unwrap();
        assert!(!format!("{key:?} {key} {key:#?}").contains(&body_line[..20]));
    }

    #[test]
    fn unsupported_specs_are_refused() {
        for spec in [
            KeySpec {
                algorithm: KeyAlgorithm::Rsa,
                size: 1024,
            },
            KeySpec {
                algorithm: KeyAlgorithm::Ecdsa,
                size: 521,
            },
        ] {
            assert_eq!(
                spec.generate().unwrap_err(),
                PkiError::UnsupportedKeySpec(spec.to_string())
            );
        }
    }

    #[test]
    fn garbage_is_refused_with_a_clear_error_and_no_key_bytes() {
        let err = PrivateKey::from_pem("not a key").unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a usable private key: no PEM block found: expected an unencrypted PKCS#8 private key"
        );

        let garbage = pem::encode(pem::PRIVATE_KEY, b"SECRETSECRETSECRET");
        let err = PrivateKey::from_pem(&garbage).unwrap_err();
        assert!(matches!(err, PkiError::BadPrivateKey(_)));
        let msg = err.to_string();
        assert!(
            msg.contains("not an RSA, ECDSA P-256 or ECDSA P-384 private key"),
            "{msg}"
        );
        assert!(
            !msg.contains("SECRET") && !msg.contains("U0VDUkVU"),
            "{msg}"
        );

        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let pkcs1_label = key.to_pem().replace("PRIVATE KEY", "EC PRIVATE KEY");
        let err = PrivateKey::from_pem(&pkcs1_label).unwrap_err();
        assert!(err.to_string().contains("PKCS#1, SEC1"), "{err}");
        assert!(!err.to_string().contains("PRIVATE KEY"), "{err}");

        let truncated: String = key.to_pem().lines().take(2).collect::<Vec<_>>().join("\n");
        let err = PrivateKey::from_pem(&truncated).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(!err.to_string().contains(truncated.lines().nth(1).unwrap()));
    }

    #[test]
    fn spki_checks_reject_small_rsa_and_unknown_curves() {
        // An Ed25519 key is not RSA or ECDSA.
        let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        assert!(matches!(
            spec_of_spki(&ed.subject_public_key_info()),
            Err(PkiError::UnsupportedKey(m)) if m.contains("not supported")
        ));
        let p521 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
        assert!(matches!(
            spec_of_spki(&p521.subject_public_key_info()),
            Err(PkiError::UnsupportedKey(m)) if m.contains("curve")
        ));
        assert!(PrivateKey::from_pem(&p521.serialize_pem()).is_err());
        assert_eq!(rsa_modulus_bits(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(rsa_modulus_bits(&[0x01, 0]), 9);
        assert_eq!(rsa_modulus_bits(&[]), 0);
    }
}

/// Whether the PKCS#8 key in `key_pem` is the private half of the DER SubjectPublicKeyInfo
/// `spki_der`, read from the key's own public fields (RSA modulus and exponent; the EC
/// public point) without loading the key. Loading an RSA key validates it, which costs
/// tens of milliseconds: too much for checking every managed Secret on every pass.
/// `None` when the key's structure does not say (an EC key without its public point,
/// unusual encodings): then load it with [`PrivateKey::from_pem`].
pub fn key_pem_matches_spki(key_pem: &str, spki_der: &[u8]) -> Option<bool> {
    use x509_parser::{der_parser::parse_der, prelude::FromDer, x509::SubjectPublicKeyInfo};
    let blocks = pem::parse(key_pem).ok()?;
    let [block] = blocks.as_slice() else {
        return None;
    };
    if block.label != pem::PRIVATE_KEY {
        return None;
    }
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der).ok()?;
    let (_, pkcs8) = parse_der(&block.der).ok()?;
    let fields = pkcs8.as_sequence().ok()?;
    let algorithm = fields.get(1)?.as_sequence().ok()?;
    let oid = algorithm.first()?.as_oid().ok()?.to_id_string();
    if oid != spki.algorithm.algorithm.to_id_string() {
        return Some(false);
    }
    let (_, inner) = parse_der(fields.get(2)?.as_slice().ok()?).ok()?;
    let inner = inner.as_sequence().ok()?;
    match oid.as_str() {
        // rsaEncryption: RSAPrivateKey { version, modulus, publicExponent, ... } against
        // RSAPublicKey { modulus, publicExponent }.
        "1.2.840.113549.1.1.1" => {
            let (_, public) = parse_der(spki.subject_public_key.data.as_ref()).ok()?;
            let public = public.as_sequence().ok()?;
            Some(
                inner.get(1)?.as_slice().ok()? == public.first()?.as_slice().ok()?
                    && inner.get(2)?.as_slice().ok()? == public.get(1)?.as_slice().ok()?,
            )
        }
        // id-ecPublicKey: the curve, and ECPrivateKey's [1] publicKey against the point.
        "1.2.840.10045.2.1" => {
            let curve = algorithm.get(1)?.as_oid().ok()?.to_id_string();
            let spki_curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())?;
            if curve != spki_curve {
                return Some(false);
            }
            let tagged = inner.iter().find(|o| {
                o.header.class() == x509_parser::der_parser::asn1_rs::Class::ContextSpecific
                    && o.header.tag().0 == 1
            })?;
            let (_, bits) = parse_der(tagged.as_slice().ok()?).ok()?;
            let point = bits.as_bitstring().ok()?.data;
            Some(point == spki.subject_public_key.data.as_ref())
        }
        _ => None,
    }
}

#[cfg(test)]
mod cheap_match_tests {
    use super::*;

    #[test]
    fn the_cheap_key_match_agrees_with_loading_the_key() {
        for spec in [KeySpec::RSA_2048, KeySpec::ECDSA_P256, KeySpec::ECDSA_P384] {
            let key = spec.generate().expect("key");
            let other = spec.generate().expect("key");
            assert_eq!(
                key_pem_matches_spki(&key.to_pem(), &key.public_key_der()),
                Some(true),
                "{spec}"
            );
            assert_eq!(
                key_pem_matches_spki(&key.to_pem(), &other.public_key_der()),
                Some(false),
                "{spec}"
            );
        }
        let ec = KeySpec::ECDSA_P256.generate().expect("key");
        let rsa = KeySpec::RSA_2048.generate().expect("key");
        assert_eq!(
            key_pem_matches_spki(&ec.to_pem(), &rsa.public_key_der()),
            Some(false)
        );
        assert_eq!(key_pem_matches_spki("garbage", &rsa.public_key_der()), None);
    }
}
