//! RFC 2136 dynamic updates signed with TSIG (RFC 8945, HMAC-SHA256), for ACME DNS-01: add
//! the `_acme-challenge` TXT record, remove it afterwards.
//!
//! The update message and its TSIG signature come from `hickory-proto` with its
//! `dnssec-aws-lc-rs` backend (aws-lc-rs stays the only crypto provider); the message is
//! sent over TCP (length-prefixed, RFC 1035 4.2.2) with a timeout. Errors name the key and
//! the server's TSIG error or response code, never the secret (nothing here formats the
//! signer, which holds it).

use std::{net::SocketAddr, time::Duration};

use hickory_proto::{
    op::{Message, ResponseCode, update_message},
    rr::{
        Name, RData, Record, RecordSet, RecordType, TSigner,
        rdata::{TXT, tsig::TsigAlgorithm},
    },
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Reasons of a failed update (also the `reason` label of the
/// `siths_dns_update_failures` metric).
pub mod reason {
    /// The server does not know the key name (TSIG BADKEY).
    pub const BAD_KEY: &str = "TsigBadKey";
    /// The signature did not verify: wrong secret or algorithm (TSIG BADSIG).
    pub const BAD_SIG: &str = "TsigBadSig";
    /// The clocks differ by more than the fudge (TSIG BADTIME).
    pub const BAD_TIME: &str = "TsigBadTime";
    /// The key may not update this zone or name (REFUSED, NOTAUTH without a TSIG error).
    pub const REFUSED: &str = "UpdateRefused";
    /// The server is not authoritative for the zone (NOTZONE).
    pub const NOT_ZONE: &str = "NotZone";
    /// No answer within the timeout, or no connection.
    pub const UNREACHABLE: &str = "Unreachable";
    /// Any other failure.
    pub const OTHER: &str = "UpdateFailed";
}

/// Where and with which key records are updated.
pub struct Updater {
    /// The primary nameserver accepting updates.
    pub nameserver: SocketAddr,
    /// The zone, for example `region.se`.
    pub zone: String,
    /// The TSIG key name the server knows.
    pub key_name: String,
    signer: TSigner,
    /// Time one update may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for Updater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the signer: it holds the secret.
        f.debug_struct("Updater")
            .field("nameserver", &self.nameserver)
            .field("zone", &self.zone)
            .field("key_name", &self.key_name)
            .finish_non_exhaustive()
    }
}

/// A failed update: `reason` (see [`reason`]) and a message naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UpdateError {
    /// One of [`reason`].
    pub reason: &'static str,
    /// What happened, for people (no secret).
    pub message: String,
}

/// The TSIG algorithms accepted by name, as BIND writes them.
pub fn algorithm(name: &str) -> Option<TsigAlgorithm> {
    match name.to_ascii_lowercase().as_str() {
        "hmac-sha256" => Some(TsigAlgorithm::HmacSha256),
        "hmac-sha384" => Some(TsigAlgorithm::HmacSha384),
        "hmac-sha512" => Some(TsigAlgorithm::HmacSha512),
        _ => None,
    }
}

fn name(s: &str) -> Result<Name, UpdateError> {
    let mut n = Name::from_ascii(s).map_err(|_| UpdateError {
        reason: reason::OTHER,
        message: format!("{s:?} is not a DNS name"),
    })?;
    n.set_fqdn(true);
    Ok(n)
}

impl Updater {
    /// An updater for `zone` at `nameserver` with TSIG key `key_name`, `algorithm_name`
    /// (`hmac-sha256`, `hmac-sha384`, `hmac-sha512`) and the decoded `secret`.
    pub fn new(
        nameserver: SocketAddr,
        zone: &str,
        key_name: &str,
        algorithm_name: &str,
        secret: Vec<u8>,
        timeout: Duration,
    ) -> Result<Self, UpdateError> {
        let alg = algorithm(algorithm_name).ok_or_else(|| UpdateError {
            reason: reason::OTHER,
            message: format!(
                "TSIG algorithm {algorithm_name:?} of key {key_name} is not supported; use hmac-sha256, hmac-sha384 or hmac-sha512"
            ),
        })?;
        let signer = TSigner::new(secret, alg, name(key_name)?, 300).map_err(|_| UpdateError {
            reason: reason::OTHER,
            message: format!("TSIG key {key_name} cannot sign with {algorithm_name}"),
        })?;
        Ok(Self {
            nameserver,
            zone: zone.trim_end_matches('.').to_string(),
            key_name: key_name.to_string(),
            signer,
            timeout,
        })
    }

    fn txt_rrset(&self, record: &str, value: &str, ttl: u32) -> Result<RecordSet, UpdateError> {
        let owner = name(record)?;
        let mut set = RecordSet::new(owner.clone(), RecordType::TXT, 0);
        set.insert(
            Record::from_rdata(owner, ttl, RData::TXT(TXT::new(vec![value.to_string()]))),
            0,
        );
        Ok(set)
    }

    /// Adds the TXT string `value` at `record` (other strings there stay).
    pub async fn add_txt(&self, record: &str, value: &str, ttl: u32) -> Result<(), UpdateError> {
        let msg = update_message::append(
            self.txt_rrset(record, value, ttl)?,
            name(&self.zone)?,
            false,
            false,
        );
        self.send(msg).await
    }

    /// Removes the TXT string `value` at `record` (other strings there stay).
    pub async fn remove_txt(&self, record: &str, value: &str) -> Result<(), UpdateError> {
        let msg = update_message::delete_by_rdata(
            self.txt_rrset(record, value, 0)?,
            name(&self.zone)?,
            false,
        );
        self.send(msg).await
    }

    /// Removes every TXT record at `record` (stale challenge records at start-up).
    pub async fn remove_all_txt(&self, record: &str) -> Result<(), UpdateError> {
        let owner = name(record)?;
        let rec = Record::from_rdata(owner, 0, RData::TXT(TXT::new(vec![])));
        let msg = update_message::delete_rrset(rec, name(&self.zone)?, false);
        self.send(msg).await
    }

    async fn send(&self, mut msg: Message) -> Result<(), UpdateError> {
        let key = &self.key_name;
        let mut id = [0u8; 2];
        aws_lc_rs::rand::fill(&mut id).map_err(|_| UpdateError {
            reason: reason::OTHER,
            message: "no random message id".into(),
        })?;
        msg.metadata.id = u16::from_be_bytes(id);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        msg.finalize(&self.signer, now).map_err(|_| UpdateError {
            reason: reason::OTHER,
            message: format!("signing the update with TSIG key {key} failed"),
        })?;
        let bytes = msg.to_vec().map_err(|e| UpdateError {
            reason: reason::OTHER,
            message: format!("encoding the update: {e}"),
        })?;
        let server = self.nameserver;
        let exchange = async {
            let mut tcp = TcpStream::connect(server).await?;
            let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
            tcp.write_all(&len.to_be_bytes()).await?;
            tcp.write_all(&bytes).await?;
            let mut len = [0u8; 2];
            tcp.read_exact(&mut len).await?;
            let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
            tcp.read_exact(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        };
        let answer = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => {
                return Err(UpdateError {
                    reason: reason::UNREACHABLE,
                    message: format!(
                        "no answer from {server} within {:?} to the update of zone {} (TSIG key {key})",
                        self.timeout, self.zone
                    ),
                });
            }
            Ok(Err(e)) => {
                return Err(UpdateError {
                    reason: reason::UNREACHABLE,
                    message: format!("sending the update to {server} failed: {e}"),
                });
            }
            Ok(Ok(a)) => a,
        };
        let response = Message::from_vec(&answer).map_err(|e| UpdateError {
            reason: reason::OTHER,
            message: format!("the answer of {server} does not decode: {e}"),
        })?;
        check_response(&response, key, &self.zone, server)
    }
}

/// The outcome an update response says: the TSIG error first (it names the key problem),
/// then the response code.
fn check_response(
    response: &Message,
    key: &str,
    zone: &str,
    server: SocketAddr,
) -> Result<(), UpdateError> {
    use hickory_proto::rr::rdata::tsig::TsigError;
    let tsig_error = response.signature().and_then(|s| s.data.error);
    let fail = |reason, what: &str| {
        Err(UpdateError {
            reason,
            message: format!("{server} refused the update of zone {zone}: {what}"),
        })
    };
    match tsig_error {
        Some(TsigError::BadKey) => {
            return fail(
                reason::BAD_KEY,
                &format!("the server does not know TSIG key {key} (BADKEY)"),
            );
        }
        Some(TsigError::BadSig) => {
            return fail(
                reason::BAD_SIG,
                &format!(
                    "the signature with TSIG key {key} does not verify (BADSIG): the secret or algorithm differs from the server's"
                ),
            );
        }
        Some(TsigError::BadTime) => {
            return fail(
                reason::BAD_TIME,
                &format!("TSIG key {key}: the clocks differ too much (BADTIME)"),
            );
        }
        _ => {}
    }
    match response.metadata.response_code {
        ResponseCode::NoError => Ok(()),
        ResponseCode::NotAuth => fail(
            reason::BAD_SIG,
            &format!("TSIG key {key} was not accepted (NOTAUTH)"),
        ),
        ResponseCode::Refused => fail(
            reason::REFUSED,
            &format!("TSIG key {key} may not update this name (REFUSED)"),
        ),
        ResponseCode::NotZone => fail(reason::NOT_ZONE, "the name is not in the zone (NOTZONE)"),
        other => fail(reason::OTHER, &format!("response code {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_by_bind_name() {
        assert_eq!(algorithm("hmac-sha256"), Some(TsigAlgorithm::HmacSha256));
        assert_eq!(algorithm("HMAC-SHA512"), Some(TsigAlgorithm::HmacSha512));
        assert_eq!(algorithm("hmac-md5"), None);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let u = Updater::new(
            "127.0.0.1:53".parse().unwrap(),
            "region.se",
            "acme-key",
            "hmac-sha256",
            b"very-secret-bytes".to_vec(),
            Duration::from_secs(1),
        )
        .unwrap();
        let text = format!("{u:?}");
        assert!(text.contains("acme-key"), "{text}");
        assert!(!text.contains("very-secret"), "{text}");
        assert!(!text.contains("118, 101, 114"), "{text}");
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_within_the_timeout() {
        // A listener that never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let u = Updater::new(
            silent.local_addr().unwrap(),
            "region.se",
            "acme-key",
            "hmac-sha256",
            vec![1; 32],
            Duration::from_millis(300),
        )
        .unwrap();
        let err = u
            .add_txt("_acme-challenge.www.region.se", "x", 5)
            .await
            .unwrap_err();
        assert_eq!(err.reason, reason::UNREACHABLE);
        assert!(err.message.contains("acme-key"), "{}", err.message);
    }
}
