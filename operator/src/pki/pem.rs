//! A strict PEM reader and writer (RFC 7468) that reports every block it finds, so that
//! callers can reject blocks of the wrong kind instead of skipping them silently.

use super::error::PkiError;

/// PEM label of a certificate.
pub(crate) const CERTIFICATE: &str = "CERTIFICATE";
/// PEM label of a PKCS#8 private key.
pub(crate) const PRIVATE_KEY: &str = "PRIVATE KEY";
/// PEM label of a PKCS#10 request.
pub(crate) const CERTIFICATE_REQUEST: &str = "CERTIFICATE REQUEST";

/// One decoded PEM block.
pub(crate) struct Block {
    /// Position in the input, counting from 1.
    pub index: usize,
    /// The label between `BEGIN ` and the dashes.
    pub label: String,
    /// The decoded body.
    pub der: Vec<u8>,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body may be a private key: never print it.
        write!(
            f,
            "Block({} {}, {} bytes)",
            self.index,
            self.label,
            self.der.len()
        )
    }
}

/// Reads every PEM block of `text`. Text outside blocks (comments, `openssl -text`
/// output) is ignored; a block that is truncated or not valid base64 is an error.
pub(crate) fn parse(text: &str) -> Result<Vec<Block>, PkiError> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        let line = line.trim();
        match &mut current {
            None => {
                if let Some(rest) = line.strip_prefix("-----BEGIN ") {
                    let index = blocks.len() + 1;
                    let label =
                        rest.strip_suffix("-----")
                            .ok_or_else(|| PkiError::MalformedPem {
                                index,
                                label: rest.trim_end_matches('-').to_string(),
                                detail: "the BEGIN line does not end with five dashes".to_string(),
                            })?;
                    current = Some((label.to_string(), String::new()));
                }
            }
            Some((label, body)) => {
                let index = blocks.len() + 1;
                if let Some(rest) = line.strip_prefix("-----END ") {
                    if rest.strip_suffix("-----") != Some(label.as_str()) {
                        return Err(PkiError::MalformedPem {
                            index,
                            label: label.clone(),
                            // The END line is input: echoed only when it names no private key.
                            detail: if line.contains("PRIVATE KEY") {
                                "its END line does not match the BEGIN line".to_string()
                            } else {
                                format!("the END line {line:?} does not match the BEGIN line")
                            },
                        });
                    }
                    let der = decode_base64(body).ok_or_else(|| PkiError::MalformedPem {
                        index,
                        label: label.clone(),
                        detail: "the body is not valid base64".to_string(),
                    })?;
                    if der.is_empty() {
                        return Err(PkiError::MalformedPem {
                            index,
                            label: label.clone(),
                            detail: "the body is empty".to_string(),
                        });
                    }
                    blocks.push(Block {
                        index,
                        label: std::mem::take(label),
                        der,
                    });
                    current = None;
                } else if line.starts_with("-----BEGIN ") {
                    return Err(PkiError::TruncatedPem {
                        index,
                        label: label.clone(),
                    });
                } else if line.contains(':') {
                    return Err(PkiError::MalformedPem {
                        index,
                        label: label.clone(),
                        detail: "PEM headers are not supported (is the key encrypted?)".to_string(),
                    });
                } else {
                    body.push_str(line);
                }
            }
        }
    }
    if let Some((label, _)) = current {
        return Err(PkiError::TruncatedPem {
            index: blocks.len() + 1,
            label,
        });
    }
    Ok(blocks)
}

/// Reads exactly the blocks labelled `expected`; any other block is an error, and so is
/// input without blocks.
pub(crate) fn parse_only(text: &str, expected: &'static str) -> Result<Vec<Block>, PkiError> {
    let blocks = parse(text)?;
    if blocks.is_empty() {
        return Err(PkiError::NoPemBlock { expected });
    }
    if let Some(other) = blocks.iter().find(|b| b.label != expected) {
        return Err(PkiError::UnexpectedPemBlock {
            index: other.index,
            label: other.label.clone(),
            expected,
        });
    }
    Ok(blocks)
}

/// Encodes `der` as one PEM block with 64-character lines.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = encode_base64(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // The alphabet is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn encode_base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let body: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !body.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() / 4 * 3);
    let quads = body.len() / 4;
    for (q, quad) in body.chunks(4).enumerate() {
        let last = q + 1 == quads;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => return None,
            };
            n = (n << 6) | u32::from(v);
        }
        n <<= 6 * pad as u32;
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_every_length() {
        for len in 0..10u8 {
            let data: Vec<u8> = (0..len)
                .map(|i| i.wrapping_mul(37).wrapping_add(200))
                .collect();
            let enc = encode_base64(&data);
            assert_eq!(
                decode_base64(&enc).as_deref(),
                Some(data.as_slice()),
                "len {len}"
            );
        }
        assert_eq!(encode_base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode_base64(b"fo"), "Zm8=");
        assert_eq!(decode_base64("Zm8=").as_deref(), Some(&b"fo"[..]));
    }

    #[test]
    fn base64_rejects_garbage() {
        assert_eq!(decode_base64("Zm8"), None);
        assert_eq!(decode_base64("Zm*="), None);
        assert_eq!(decode_base64("Zm==Zm9v"), None);
        assert_eq!(decode_base64("Z==="), None);
    }

    #[test]
    fn reads_blocks_and_ignores_text_between_them() {
        let text = format!(
            "subject=CN=x\n{}some text\n{}",
            encode("CERTIFICATE", b"abc"),
            encode("X509 CRL", b"defg")
        );
        let blocks = parse(&text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            (blocks[0].index, blocks[0].label.as_str()),
            (1, "CERTIFICATE")
        );
        assert_eq!(blocks[0].der, b"abc");
        assert_eq!((blocks[1].index, blocks[1].label.as_str()), (2, "X509 CRL"));
        assert_eq!(blocks[1].der, b"defg");
    }

    #[test]
    fn reports_truncation_and_mismatched_end() {
        let full = encode("CERTIFICATE", &[1u8; 100]);
        let truncated = &full[..full.len() - 30];
        assert_eq!(
            parse(truncated).unwrap_err(),
            PkiError::TruncatedPem {
                index: 1,
                label: "CERTIFICATE".into()
            }
        );
        let mixed = full.replace("END CERTIFICATE", "END PRIVATE KEY");
        assert!(matches!(
            parse(&mixed).unwrap_err(),
            PkiError::MalformedPem { index: 1, .. }
        ));
        let headers = full.replacen('\n', "\nProc-Type: 4,ENCRYPTED\n", 1);
        assert!(
            parse(&headers)
                .unwrap_err()
                .to_string()
                .contains("headers are not supported")
        );
    }

    #[test]
    fn parse_only_rejects_other_labels_and_empty_input() {
        assert_eq!(
            parse_only("hello", CERTIFICATE).unwrap_err(),
            PkiError::NoPemBlock {
                expected: CERTIFICATE
            }
        );
        let text = format!("{}{}", encode(CERTIFICATE, b"a"), encode(PRIVATE_KEY, b"b"));
        assert_eq!(
            parse_only(&text, CERTIFICATE).unwrap_err(),
            PkiError::UnexpectedPemBlock {
                index: 2,
                label: PRIVATE_KEY.into(),
                expected: CERTIFICATE
            }
        );
    }

    #[test]
    fn debug_of_a_block_hides_the_body() {
        let block = Block {
            index: 1,
            label: PRIVATE_KEY.into(),
            der: vec![0x42; 8],
        };
        assert_eq!(format!("{block:?}"), "Block(1 PRIVATE KEY, 8 bytes)");
    }
}
