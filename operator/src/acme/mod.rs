//! The ACME backend of a [`PublicIssuer`]: an RFC 8555 client (`instant-acme`) with
//! External Account Binding, HTTP-01 challenges answered by the operator itself (tokens
//! kept in the API so any replica answers), ACME Renewal Information (RFC 9773), and the
//! account key kept in a Secret so a restart never registers a second account.
//!
//! Use: one [`Acme`] per process (created in `run.rs`), [`serve_http01`] on the
//! `--acme-http01-port`, and [`Acme::issue`] from the certificate controller.

mod ari;
mod error;
mod http;
mod http01;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use base64::Engine;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, ExternalAccountKey, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client, ResourceExt, api::PostParams};
use prometheus_client::metrics::counter::Counter;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use tracing::{info, warn};

pub use ari::checked_window;
pub use error::{
    ACME_CHALLENGE_FAILED, ACME_CONFIG_INVALID, ACME_DNS_UPDATE_FAILED, ACME_ORDER_FAILED,
    ACME_RATE_LIMITED, ACME_SERVER_UNAVAILABLE, ACME_UNAUTHORIZED, AcmeError,
};
pub use http01::{
    CHALLENGE_PATH, OPERATOR_POD_SELECTOR, OWNER_NAMESPACE_LABEL, ROLE_ACME_HTTP01, SelfCheck, Via,
    is_stale, is_token, serve_http01, solver_name,
};

use self::{
    error::{ErrorContext, Stage, map_error},
    http::{CountingClient, Stats},
    http01::{Challenge, Solver},
};
use crate::{
    api::{AcmeIssuer, PublicIssuer, Rfc2136Solver},
    dns::rfc2136::Updater,
    pki::{self, pem},
    policy::challenges::{ChallengeKind, challenge_for, dns01_record},
    vocabulary::{MANAGED_BY, ROLE_LABEL},
};

/// Annotation on the account Secret: the account URL at the CA.
pub const ACCOUNT_URL_ANNOTATION: &str = "siths-operator.io/acme-account-url";
/// Annotation on the account Secret: the directory the account belongs to.
pub const ACCOUNT_DIRECTORY_ANNOTATION: &str = "siths-operator.io/acme-directory";
/// Value of `siths-operator.io/role` on account Secrets.
pub const ROLE_ACME_ACCOUNT: &str = "acme-account";
/// Key of the account's private key (PKCS#8 PEM) in the account Secret.
pub const ACCOUNT_KEY: &str = "tls.key";
/// How long the CA may take to validate every challenge of an order.
pub const CHALLENGE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the CA may take to sign after finalization.
pub const CERTIFICATE_TIMEOUT: Duration = Duration::from_secs(60);
/// When the order is first looked at after its challenges were handed to the CA, unless
/// this process's responder answered the CA for every one of them before.
const FIRST_POLL: Duration = Duration::from_millis(250);
/// When an order the CA is still signing is first looked at after its finalization (then
/// 250 ms later, and so on, each wait 2.5 times the one before).
const AFTER_FINALIZE: Duration = Duration::from_millis(100);
/// How long after the CA fetched the last answer from this process the order is looked
/// at: the CA still compares the answers (from every vantage point) and records them.
const AFTER_FETCH: Duration = Duration::from_millis(50);

/// A certificate chain from the CA and, when the CA offers ARI, its suggested renewal
/// window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The chain as the CA sent it (leaf first), PEM.
    pub chain_pem: String,
    /// The CA's suggested renewal window (RFC 9773), checked against the leaf's validity.
    pub renewal_window: Option<(Timestamp, Timestamp)>,
}

/// Longest an ACME Renewal Information answer is reused, whatever the CA's Retry-After
/// (RFC 9773 suggests checking at least a few times a day).
const ARI_MAX_AGE: Duration = Duration::from_secs(6 * 3600);

/// The CA's renewal windows by directory and certificate, each until its Retry-After
/// (RFC 9773 §4.3: not asked again before then). Every pass of a Ready ACME certificate
/// looks at its window; without this, each pass was a request to the CA.
#[derive(Default)]
struct AriCache {
    entries: HashMap<String, (Option<(Timestamp, Timestamp)>, Instant)>,
    /// Expired entries are dropped when the map reaches this size.
    prune_at: usize,
}

impl AriCache {
    fn get(&self, key: &str, now: Instant) -> Option<Option<(Timestamp, Timestamp)>> {
        self.entries
            .get(key)
            .filter(|(_, until)| now < *until)
            .map(|(w, _)| *w)
    }

    fn put(
        &mut self,
        key: String,
        window: Option<(Timestamp, Timestamp)>,
        retry_after: Duration,
        now: Instant,
    ) {
        let keep = retry_after.min(ARI_MAX_AGE);
        if keep.is_zero() {
            return;
        }
        if self.entries.len() >= self.prune_at {
            self.entries.retain(|_, (_, until)| now < *until);
            self.prune_at = (2 * self.entries.len()).max(1024);
        }
        self.entries.insert(key, (window, now + keep));
    }
}

struct Cached {
    /// The issuer's `acme` spec the account was loaded for: any change reloads it.
    spec: AcmeIssuer,
    account: Account,
    cx: ErrorContext,
}

/// ACME client state of one operator process: accounts per issuer (loaded from or
/// registered into their Secrets once, reloaded when the issuer's `acme` spec changes)
/// and a counter of every request sent to any CA.
pub struct Acme {
    client: Client,
    namespace: String,
    http01_port: u16,
    stats: Arc<Stats>,
    accounts: tokio::sync::Mutex<HashMap<String, Cached>>,
    self_check: Option<SelfCheck>,
    dns_update_failures: DnsUpdateFailures,
    ari: std::sync::Mutex<AriCache>,
}

/// Counter of failed RFC 2136 updates by reason (`dns::rfc2136::reason`).
pub type DnsUpdateFailures = prometheus_client::metrics::family::Family<
    Vec<(&'static str, String)>,
    prometheus_client::metrics::counter::Counter,
>;

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acme")
            .field("namespace", &self.namespace)
            .field("http01_port", &self.http01_port)
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

impl Acme {
    /// `namespace` is the operator's own (solver objects live there); `http01_port` is
    /// the port [`serve_http01`] listens on (the solver Services target it).
    pub fn new(client: Client, namespace: String, http01_port: u16) -> Self {
        Self {
            client,
            namespace,
            http01_port,
            stats: Arc::default(),
            accounts: tokio::sync::Mutex::default(),
            self_check: None,
            dns_update_failures: DnsUpdateFailures::default(),
            ari: std::sync::Mutex::default(),
        }
    }

    /// Before telling the CA a challenge is ready, fetch the answer the way the CA will
    /// (see [`SelfCheck`]) and give up on the order if it does not arrive in time. Off by
    /// default; turn it on in clusters (an ingress controller needs a moment to serve
    /// the solver Ingress).
    pub fn with_self_check(mut self, check: SelfCheck) -> Self {
        self.self_check = Some(check);
        self
    }

    /// Counts requests in `counter` (the registered `siths_acme_requests` of
    /// [`Metrics::acme_requests`](crate::metrics::Metrics::acme_requests)) instead of a
    /// counter of its own. Call before first use.
    pub fn with_requests_counter(mut self, counter: Counter) -> Self {
        self.stats = Arc::new(Stats {
            requests: counter,
            ..Stats::default()
        });
        self
    }

    /// Counts failed RFC 2136 updates of DNS-01 challenges into `family` (label `reason`).
    pub fn with_dns_update_failures(mut self, family: DnsUpdateFailures) -> Self {
        self.dns_update_failures = family;
        self
    }

    /// Removes the DNS-01 challenge records a crashed process may have left: for every
    /// PublicIssuer with `acme.dns01`, the `_acme-challenge` TXT record sets of the names
    /// of its ServiceCertificates that DNS-01 proves and that lie in the zone. Those names
    /// belong to the operator's certificates, so no other client's records are expected
    /// there. Returns how many record sets were removed.
    pub async fn remove_stale_dns01(&self) -> Result<usize, AcmeError> {
        let lp = kube::api::ListParams::default();
        let issuers = Api::<PublicIssuer>::all(self.client.clone())
            .list(&lp)
            .await
            .map_err(|e| api_unavailable("listing PublicIssuers", &e))?;
        let dns01: Vec<(String, &AcmeIssuer)> = issuers
            .items
            .iter()
            .filter_map(|i| {
                let acme = i.spec.acme.as_ref()?;
                acme.dns01.as_ref().map(|_| (i.name_any(), acme))
            })
            .collect();
        // Without a DNS-01 issuer there is nothing to look for: no certificate is read (a
        // start-up with 100 000 certificates read them all in one response for nothing).
        if dns01.is_empty() {
            return Ok(0);
        }
        // The DNS names of the DNS-01 issuers' certificates, 500 certificates a page.
        let mut names: HashMap<String, std::collections::BTreeSet<String>> = HashMap::new();
        let certs = Api::<crate::api::ServiceCertificate>::all(self.client.clone());
        let mut page_params = kube::api::ListParams::default().limit(500);
        loop {
            let page = certs
                .list(&page_params)
                .await
                .map_err(|e| api_unavailable("listing ServiceCertificates", &e))?;
            for c in &page.items {
                if c.spec.issuer_ref.kind == crate::api::IssuerKind::PublicIssuer
                    && dns01.iter().any(|(n, _)| *n == c.spec.issuer_ref.name)
                {
                    names
                        .entry(c.spec.issuer_ref.name.clone())
                        .or_default()
                        .extend(c.spec.dns_names.iter().cloned());
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => page_params = page_params.continue_token(&token),
                None => break,
            }
        }
        let mut removed = 0;
        for (name, acme) in dns01 {
            let Some(d) = acme.dns01.as_ref() else {
                continue;
            };
            let updater = match self.dns01_updater(&d.rfc2136).await {
                Ok(u) => u,
                Err(e) => {
                    warn!(issuer = %name, error = %e.message, "cannot look for stale DNS-01 records");
                    continue;
                }
            };
            let zone = d.rfc2136.zone.trim_end_matches('.');
            let records: std::collections::BTreeSet<String> = names
                .get(&name)
                .into_iter()
                .flatten()
                .filter(|n| challenge_for(acme, n) == Ok(ChallengeKind::Dns01))
                .map(|n| dns01_record(n))
                .filter(|r| r.ends_with(&format!(".{zone}")))
                .collect();
            for record in records {
                match updater.remove_all_txt(&record).await {
                    Ok(()) => removed += 1,
                    Err(e) => {
                        self.dns_update_failures
                            .get_or_create(&vec![("reason", e.reason.to_string())])
                            .inc();
                        warn!(record = %record, error = %e.message, "removing a stale DNS-01 record failed");
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Deletes HTTP-01 solver objects older than `max_age` in the operator namespace:
    /// leftovers of a process that died in the middle of an order (a live order removes
    /// its own). Call at start-up and now and then with a `max_age` well above
    /// [`CHALLENGE_TIMEOUT`] + [`CERTIFICATE_TIMEOUT`], for example 10 minutes. Returns how
    /// many objects were deleted.
    pub async fn remove_stale_solvers(&self, max_age: Duration) -> Result<usize, AcmeError> {
        http01::remove_stale(&self.client, &self.namespace, max_age)
            .await
            .map_err(|e| api_unavailable("removing stale HTTP-01 solver objects", &e))
    }

    /// ACME HTTP requests sent so far, by every account of this instance.
    pub fn requests(&self) -> u64 {
        self.stats.requests.get()
    }

    /// Loads the issuer's account from its `privateKeySecretRef` Secret, or registers one
    /// (with External Account Binding when configured) and stores it there, create-only.
    /// Returns the account URL.
    pub async fn ensure_account(&self, issuer: &PublicIssuer) -> Result<String, AcmeError> {
        Ok(self.account(issuer).await?.0.id().to_string())
    }

    async fn account(&self, issuer: &PublicIssuer) -> Result<(Account, ErrorContext), AcmeError> {
        let spec = acme_spec(issuer)?;
        let key = issuer.name_any();
        // Held across registration: one process never registers twice for one issuer.
        let mut accounts = self.accounts.lock().await;
        if let Some(c) = accounts.get(&key)
            && c.spec == *spec
        {
            return Ok((c.account.clone(), c.cx.clone()));
        }
        let (account, cx) = self.load_or_register(spec).await?;
        accounts.insert(
            key,
            Cached {
                spec: spec.clone(),
                account: account.clone(),
                cx: cx.clone(),
            },
        );
        Ok((account, cx))
    }

    async fn http_client(&self, spec: &AcmeIssuer) -> Result<Box<CountingClient>, AcmeError> {
        let extra = match &spec.server_ca {
            None => None,
            Some(r) => {
                let cm = Api::<ConfigMap>::namespaced(self.client.clone(), &r.namespace)
                    .get_opt(&r.name)
                    .await
                    .map_err(|e| api_unavailable("reading the serverCa ConfigMap", &e))?
                    .ok_or_else(|| {
                        AcmeError::config(format!(
                            "acme.serverCa names ConfigMap {}/{}, which does not exist",
                            r.namespace, r.name
                        ))
                    })?;
                let text = cm
                    .data
                    .and_then(|d| d.get(&r.key).cloned())
                    .ok_or_else(|| {
                        AcmeError::config(format!(
                            "ConfigMap {}/{} (acme.serverCa) has no key {}",
                            r.namespace, r.name, r.key
                        ))
                    })?;
                Some(pki::parse_pem_chain(&text).map_err(|e| {
                    AcmeError::config(format!(
                        "ConfigMap {}/{} key {} (acme.serverCa): {e}",
                        r.namespace, r.name, r.key
                    ))
                })?)
            }
        };
        let roots = http::roots(extra.as_deref())
            .map_err(|e| AcmeError::config(format!("acme.serverCa: {e}")))?;
        CountingClient::new(roots, self.stats.clone())
            .map(Box::new)
            .map_err(|e| AcmeError::config(format!("TLS client for the ACME server: {e}")))
    }

    async fn load_or_register(
        &self,
        spec: &AcmeIssuer,
    ) -> Result<(Account, ErrorContext), AcmeError> {
        let directory = spec.directory().to_string();
        let r = &spec.private_key_secret_ref;
        let mut cx = ErrorContext {
            directory: directory.clone(),
            eab_secret: spec
                .external_account_binding
                .as_ref()
                .map(|e| format!("{}/{}", e.key_secret_ref.namespace, e.key_secret_ref.name)),
            account_secret: format!("{}/{}", r.namespace, r.name),
            retry_after: None,
        };
        let secrets = Api::<Secret>::namespaced(self.client.clone(), &r.namespace);
        let existing = secrets
            .get_opt(&r.name)
            .await
            .map_err(|e| api_unavailable("reading the ACME account Secret", &e))?;
        if let Some(secret) = existing {
            let account = self.restore(spec, &secret, &cx).await?;
            return Ok((account, cx));
        }

        let eab = match &spec.external_account_binding {
            None => None,
            Some(e) => Some(ExternalAccountKey::new(
                e.key_id.clone(),
                &self.read_hmac_key(&e.key_secret_ref).await?,
            )),
        };
        let contact = spec.email.as_ref().map(|m| format!("mailto:{m}"));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let http = self.http_client(spec).await?;
        let created = Account::builder_with_http(http)
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                directory.clone(),
                eab.as_ref(),
            )
            .await;
        let (account, credentials) = match created {
            Ok(v) => v,
            Err(e) => {
                cx.retry_after = self.stats.recent_retry_after();
                return Err(map_error(&e, Stage::Account, &cx));
            }
        };
        info!(account = %account.id(), %directory, "registered an ACME account");
        let key_pem = pem::encode(
            pem::PRIVATE_KEY,
            credentials.private_key().secret_pkcs8_der(),
        );
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": r.name,
                "namespace": r.namespace,
                "labels": {
                    MANAGED_BY.0: MANAGED_BY.1,
                    ROLE_LABEL: ROLE_ACME_ACCOUNT,
                },
                "annotations": {
                    ACCOUNT_URL_ANNOTATION: account.id(),
                    ACCOUNT_DIRECTORY_ANNOTATION: directory,
                },
            },
            "type": "Opaque",
            "stringData": { ACCOUNT_KEY: key_pem },
        }))
        .map_err(|e| AcmeError::config(format!("building the account Secret: {e}")))?;
        match secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => Ok((account, cx)),
            // Another replica registered first: use its account, ours stays unused.
            Err(kube::Error::Api(e)) if e.code == 409 => {
                warn!(secret = %cx.account_secret, unused = %account.id(), "another process stored an ACME account first; using that one");
                let secret = secrets
                    .get(&r.name)
                    .await
                    .map_err(|e| api_unavailable("reading the ACME account Secret", &e))?;
                let account = self.restore(spec, &secret, &cx).await?;
                Ok((account, cx))
            }
            Err(e) => Err(api_unavailable(
                &format!(
                    "storing the new ACME account {} in Secret {}",
                    account.id(),
                    cx.account_secret
                ),
                &e,
            )),
        }
    }

    async fn restore(
        &self,
        spec: &AcmeIssuer,
        secret: &Secret,
        cx: &ErrorContext,
    ) -> Result<Account, AcmeError> {
        let foreign = || {
            AcmeError::config(format!(
                "Secret {} exists but holds no ACME account of this operator (key {ACCOUNT_KEY} and annotation {ACCOUNT_URL_ANNOTATION}); name a new Secret in acme.privateKeySecretRef or delete this one",
                cx.account_secret
            ))
        };
        let annotations = secret.annotations();
        let url = annotations
            .get(ACCOUNT_URL_ANNOTATION)
            .ok_or_else(foreign)?;
        if let Some(dir) = annotations.get(ACCOUNT_DIRECTORY_ANNOTATION)
            && dir != spec.directory()
        {
            return Err(AcmeError::config(format!(
                "Secret {} holds an account at {dir}, but the issuer now uses {}; name a new Secret in acme.privateKeySecretRef for the new CA",
                cx.account_secret,
                spec.directory()
            )));
        }
        let key_pem = secret
            .data
            .as_ref()
            .and_then(|d| d.get(ACCOUNT_KEY))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .ok_or_else(foreign)?;
        let block = pem::parse_only(&key_pem, pem::PRIVATE_KEY)
            .ok()
            .and_then(|mut b| (b.len() == 1).then(|| b.remove(0)))
            .ok_or_else(|| {
                AcmeError::config(format!(
                    "the {ACCOUNT_KEY} of Secret {} is not one PKCS#8 private key; delete the Secret to register a new account",
                    cx.account_secret
                ))
            })?;
        let http = self.http_client(spec).await?;
        Account::builder_with_http(http)
            .from_parts(
                url.clone(),
                PrivatePkcs8KeyDer::from(block.der),
                spec.directory().to_string(),
            )
            .await
            .map_err(|e| map_error(&e, Stage::Account, cx))
    }

    /// The RFC 2136 updater of `r`, with its TSIG secret read from the Secret.
    async fn dns01_updater(&self, r: &Rfc2136Solver) -> Result<Updater, AcmeError> {
        let s = r.tsig_secret_ref.as_ref().ok_or_else(|| {
            AcmeError::config(format!(
                "acme.dns01.rfc2136.tsigSecretRef is missing: name the Secret holding the secret of TSIG key {}",
                r.tsig_key_name
            ))
        })?;
        let where_ = format!("Secret {}/{} key {}", s.namespace, s.name, s.key);
        let secret = Api::<Secret>::namespaced(self.client.clone(), &s.namespace)
            .get_opt(&s.name)
            .await
            .map_err(|e| api_unavailable("reading the TSIG Secret", &e))?
            .ok_or_else(|| {
                AcmeError::config(format!(
                    "acme.dns01.rfc2136.tsigSecretRef names Secret {}/{}, which does not exist; create it with the secret of TSIG key {} under {}",
                    s.namespace, s.name, r.tsig_key_name, s.key
                ))
            })?;
        let raw = secret
            .data
            .and_then(|d| d.get(&s.key).cloned())
            .ok_or_else(|| {
                AcmeError::config(format!(
                    "{where_} is missing: put the secret of TSIG key {} there (base64, as tsig-keygen writes it)",
                    r.tsig_key_name
                ))
            })?;
        // Never echo the bytes: only say that they do not decode.
        let text = String::from_utf8(raw.0).unwrap_or_default();
        let key = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| {
                AcmeError::config(format!(
                    "{where_} is not base64: put the secret of TSIG key {} there as tsig-keygen writes it",
                    r.tsig_key_name
                ))
            })?;
        let nameserver = crate::dns::parse_nameserver(&r.nameserver).map_err(AcmeError::config)?;
        Updater::new(
            nameserver,
            &r.zone,
            &r.tsig_key_name,
            &r.tsig_algorithm,
            key,
            DNS01_UPDATE_TIMEOUT,
        )
        .map_err(|e| AcmeError::config(e.message))
    }

    async fn read_hmac_key(&self, r: &crate::api::SecretKeyRef) -> Result<Vec<u8>, AcmeError> {
        let where_ = format!("Secret {}/{} key {}", r.namespace, r.name, r.key);
        let secret = Api::<Secret>::namespaced(self.client.clone(), &r.namespace)
            .get_opt(&r.name)
            .await
            .map_err(|e| api_unavailable("reading the EAB Secret", &e))?
            .ok_or_else(|| {
                AcmeError::config(format!(
                    "acme.externalAccountBinding.keySecretRef names Secret {}/{}, which does not exist; create it with the HMAC key from the CA's portal under {}",
                    r.namespace, r.name, r.key
                ))
            })?;
        let raw = secret
            .data
            .and_then(|d| d.get(&r.key).cloned())
            .ok_or_else(|| {
                AcmeError::config(format!(
                    "{where_} is missing: put the HMAC key from the CA's portal there"
                ))
            })?;
        decode_hmac_key(&raw.0).map_err(|e| AcmeError::config(format!("{where_}: {e}")))
    }

    /// Orders a certificate for `names` (DNS names, no wildcards: HTTP-01 cannot
    /// validate them) with the CSR `csr_der`, answering HTTP-01 challenges through solver
    /// objects in the operator namespace (labelled with `owner_namespace`), which are
    /// removed afterwards whatever the outcome.
    pub async fn issue(
        &self,
        issuer: &PublicIssuer,
        owner_namespace: &str,
        names: &[String],
        csr_der: &[u8],
        gateway: Option<&str>,
    ) -> Result<Issued, AcmeError> {
        let spec = acme_spec(issuer)?;
        if names.is_empty() {
            return Err(AcmeError::config("no names to order a certificate for"));
        }
        let mut need_dns01 = false;
        for n in names {
            need_dns01 |=
                challenge_for(spec, n).map_err(AcmeError::config)? == ChallengeKind::Dns01;
        }
        let mut dns01 = match (&spec.dns01, need_dns01) {
            (Some(d), true) => Some(Dns01::new(
                self.dns01_updater(&d.rfc2136).await?,
                self.dns_update_failures.clone(),
            )),
            _ => None,
        };
        let (account, mut cx) = self.account(issuer).await?;
        let ids: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
        let mut order = match account.new_order(&NewOrder::new(&ids)).await {
            Ok(o) => o,
            Err(e) => {
                cx.retry_after = self.stats.recent_retry_after();
                return Err(map_error(&e, Stage::Order, &cx));
            }
        };
        let mut solver = Solver::new(self.client.clone(), self.namespace.clone());
        let via = match gateway {
            Some(name) => Via::Gateway {
                namespace: owner_namespace,
                name,
            },
            None => Via::Ingress {
                class: spec
                    .http01
                    .as_ref()
                    .and_then(|h| h.ingress_class_name.as_deref()),
            },
        };
        let validated = self
            .validate(
                &mut order,
                &mut solver,
                dns01.as_mut(),
                spec,
                owner_namespace,
                via,
                &cx,
            )
            .await;
        // Once the CA has validated, the answers are not needed any more: they are removed
        // while the CA signs (the removal was a few sequential round trips to the API after
        // the certificate came). Whatever the outcome, they are gone when this returns.
        let cleanup = async {
            solver.cleanup().await;
            if let Some(d) = dns01.as_mut() {
                d.cleanup().await;
            }
        };
        let outcome = match validated {
            Ok(()) => tokio::join!(self.finish(&mut order, csr_der, &cx), cleanup).0,
            Err(e) => {
                cleanup.await;
                Err(e)
            }
        };
        let chain_pem = outcome.map_err(|mut e| {
            if e.retry_after.is_none() {
                e.retry_after = self.stats.recent_retry_after();
            }
            e
        })?;
        let leaf = pki::parse_pem_chain(&chain_pem)
            .ok()
            .and_then(|c| c.into_iter().next())
            .ok_or_else(|| {
                AcmeError::new(
                    ACME_ORDER_FAILED,
                    format!(
                        "the CA at {} sent a certificate chain that is not PEM certificates",
                        cx.directory
                    ),
                )
            })?;
        let renewal_window = match self.window(&account, &leaf, &cx).await {
            Ok(w) => w,
            Err(e) => {
                warn!(error = %e.message, "no ACME renewal information for a new certificate");
                None
            }
        };
        Ok(Issued {
            chain_pem,
            renewal_window,
        })
    }

    /// Answers the order's challenges and waits until the CA has validated them all (the
    /// order is `ready`).
    #[allow(clippy::too_many_arguments)]
    async fn validate(
        &self,
        order: &mut instant_acme::Order,
        solver: &mut Solver,
        mut dns01: Option<&mut Dns01>,
        spec: &AcmeIssuer,
        owner_namespace: &str,
        via: Via<'_>,
        cx: &ErrorContext,
    ) -> Result<(), AcmeError> {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(|e| map_error(&e, Stage::Order, cx))?;
            let name = authz.identifier().to_string();
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(AcmeError::new(
                        ACME_CHALLENGE_FAILED,
                        format!("the CA's authorization for {name} is {other:?}"),
                    ));
                }
            }
            if let (Ok(ChallengeKind::Dns01), Some(d)) =
                (challenge_for(spec, &name), dns01.as_deref_mut())
            {
                let mut challenge = authz.challenge(ChallengeType::Dns01).ok_or_else(|| {
                    AcmeError::new(
                        ACME_CHALLENGE_FAILED,
                        format!(
                            "the CA at {} offers no DNS-01 challenge for {name}",
                            cx.directory
                        ),
                    )
                })?;
                let value = challenge.key_authorization().dns_value();
                d.present(&dns01_record(&name), &value).await?;
                challenge
                    .set_ready()
                    .await
                    .map_err(|e| map_error(&e, Stage::Challenge, cx))?;
                continue;
            }
            let mut challenge = authz.challenge(ChallengeType::Http01).ok_or_else(|| {
                AcmeError::new(
                    ACME_CHALLENGE_FAILED,
                    format!(
                        "the CA at {} offers no HTTP-01 challenge for {name}",
                        cx.directory
                    ),
                )
            })?;
            let c = Challenge {
                name,
                token: challenge.token.clone(),
                key_authorization: challenge.key_authorization().as_str().to_string(),
            };
            solver
                .present(&c, owner_namespace, self.http01_port, via)
                .await?;
            if let Some(check) = &self.self_check {
                http01::self_check(&c, check).await?;
            }
            solver.expect_fetch(&c);
            challenge
                .set_ready()
                .await
                .map_err(|e| map_error(&e, Stage::Challenge, cx))?;
        }
        // The first look at the order: right after the CA fetched every answer from this
        // process (it validates as soon as it is told, so a fixed first delay was most of an
        // order's time against a fast CA), else after FIRST_POLL; then polling with
        // backoff, honouring the CA's Retry-After.
        if solver.wait_fetched(FIRST_POLL).await {
            tokio::time::sleep(AFTER_FETCH).await;
        }
        let polling = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .backoff(1.5)
            .timeout(CHALLENGE_TIMEOUT);
        let first = order
            .refresh()
            .await
            .map(|state| (state.status, state.error.clone()));
        let ready = match first {
            Ok((_, Some(problem))) => Err(instant_acme::Error::Api(problem)),
            Ok((status @ (OrderStatus::Ready | OrderStatus::Invalid), None)) => Ok(status),
            Ok(_) => order.poll_ready(&polling).await,
            Err(e) => Err(e),
        };
        match ready {
            Ok(OrderStatus::Ready) => {}
            Ok(_) => return Err(challenge_failure(order, cx).await),
            Err(instant_acme::Error::Api(p)) => {
                let mut e = challenge_failure(order, cx).await;
                if e.message.is_empty() {
                    e = map_error(&instant_acme::Error::Api(p), Stage::Challenge, cx);
                }
                return Err(e);
            }
            Err(e) => return Err(map_error(&e, Stage::Challenge, cx)),
        }
        Ok(())
    }

    /// Finalizes a ready order with `csr_der` and fetches the certificate chain.
    async fn finish(
        &self,
        order: &mut instant_acme::Order,
        csr_der: &[u8],
        cx: &ErrorContext,
    ) -> Result<String, AcmeError> {
        order
            .finalize_csr(csr_der)
            .await
            .map_err(|e| map_error(&e, Stage::Finalize, cx))?;
        // A CA that signs at once answers the finalization with a valid order: fetch the
        // certificate without waiting.
        if order.state().status == OrderStatus::Valid {
            return match order.certificate().await {
                Ok(Some(chain)) => Ok(chain),
                Ok(None) => Err(AcmeError::new(
                    ACME_ORDER_FAILED,
                    format!(
                        "the CA at {} reported a valid order without a certificate",
                        cx.directory
                    ),
                )),
                Err(e) => Err(map_error(&e, Stage::Finalize, cx)),
            };
        }
        // Signing takes a CA a moment: the first look soon, then backing off (and from then on
        // the CA's Retry-After, when it sends one).
        let polling = RetryPolicy::new()
            .initial_delay(AFTER_FINALIZE)
            .backoff(2.5)
            .timeout(CERTIFICATE_TIMEOUT);
        order
            .poll_certificate(&polling)
            .await
            .map_err(|e| map_error(&e, Stage::Finalize, cx))
    }

    /// The CA's suggested renewal window for the certificate `leaf_der` (RFC 9773), or
    /// `None` when the CA does not offer renewal information.
    pub async fn renewal_window(
        &self,
        issuer: &PublicIssuer,
        leaf_der: &[u8],
    ) -> Result<Option<(Timestamp, Timestamp)>, AcmeError> {
        let (account, cx) = self.account(issuer).await?;
        self.window(&account, &CertificateDer::from(leaf_der.to_vec()), &cx)
            .await
    }

    fn ari_cache(&self) -> std::sync::MutexGuard<'_, AriCache> {
        self.ari
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn window(
        &self,
        account: &Account,
        leaf: &CertificateDer<'_>,
        cx: &ErrorContext,
    ) -> Result<Option<(Timestamp, Timestamp)>, AcmeError> {
        let info = pki::CertInfo::parse(leaf).map_err(|e| {
            AcmeError::config(format!(
                "not a certificate to ask renewal information for: {e}"
            ))
        })?;
        let id = instant_acme::CertificateIdentifier::try_from(leaf).map_err(|e| {
            AcmeError::config(format!(
                "no ACME renewal information for this certificate: {e}"
            ))
        })?;
        let key = format!("{} {id}", cx.directory);
        if let Some(window) = self.ari_cache().get(&key, Instant::now()) {
            return Ok(window);
        }
        match account.renewal_info(&id).await {
            Ok((ri, retry_after)) => {
                let w = &ri.suggested_window;
                let window = match (ari::to_timestamp(w.start), ari::to_timestamp(w.end)) {
                    (Some(s), Some(e)) => checked_window(s, e, info.not_before, info.not_after),
                    _ => None,
                };
                self.ari_cache()
                    .put(key, window, retry_after, Instant::now());
                Ok(window)
            }
            Err(instant_acme::Error::Unsupported(_)) => Ok(None),
            Err(e) => Err(map_error(&e, Stage::RenewalInfo, cx)),
        }
    }
}

/// Time one RFC 2136 update may take.
const DNS01_UPDATE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time the primary nameserver has to answer a challenge record after its update.
const DNS01_PROPAGATION_TIMEOUT: Duration = Duration::from_secs(60);

/// The DNS-01 records of one order: written with RFC 2136, removed afterwards.
struct Dns01 {
    updater: Updater,
    added: Vec<(String, String)>,
    failures: DnsUpdateFailures,
}

impl Dns01 {
    fn new(updater: Updater, failures: DnsUpdateFailures) -> Self {
        Self {
            updater,
            added: Vec::new(),
            failures,
        }
    }

    fn failed(&self, e: &crate::dns::rfc2136::UpdateError) {
        self.failures
            .get_or_create(&vec![("reason", e.reason.to_string())])
            .inc();
    }

    /// Adds the TXT string and waits until the nameserver answers it.
    async fn present(&mut self, record: &str, value: &str) -> Result<(), AcmeError> {
        self.updater.add_txt(record, value, 60).await.map_err(|e| {
            self.failed(&e);
            AcmeError::new(ACME_DNS_UPDATE_FAILED, e.message)
        })?;
        self.added.push((record.to_string(), value.to_string()));
        let lookup = crate::dns::LookupSettings {
            nameservers: vec![self.updater.nameserver],
            timeout: Duration::from_secs(2),
        };
        let deadline = tokio::time::Instant::now() + DNS01_PROPAGATION_TIMEOUT;
        loop {
            if crate::dns::check_txt(&lookup, record, value).await
                == crate::policy::dns_check::Lookup::Found
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(AcmeError::new(
                    ACME_CHALLENGE_FAILED,
                    format!(
                        "the nameserver {} does not answer the TXT record {record} within {:?} of its update",
                        self.updater.nameserver, DNS01_PROPAGATION_TIMEOUT
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Removes every string added, whatever the outcome of the order.
    async fn cleanup(&mut self) {
        for (record, value) in std::mem::take(&mut self.added) {
            if let Err(e) = self.updater.remove_txt(&record, &value).await {
                self.failed(&e);
                warn!(record = %record, reason = e.reason, error = %e.message, "removing a DNS-01 record failed");
            }
        }
    }
}

/// Why the order did not become ready: the first challenge error the CA recorded.
async fn challenge_failure(order: &mut instant_acme::Order, cx: &ErrorContext) -> AcmeError {
    let mut details = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(authz)) = authorizations.next().await {
        let name = authz.identifier().to_string();
        for c in &authz.challenges {
            if let Some(p) = &c.error {
                details.push(format!(
                    "{name}: {}",
                    p.detail
                        .clone()
                        .unwrap_or_else(|| format!("{:?}", c.status))
                ));
            }
        }
        if details.is_empty() && authz.status != AuthorizationStatus::Valid {
            details.push(format!("{name}: authorization {:?}", authz.status));
        }
    }
    AcmeError::new(
        ACME_CHALLENGE_FAILED,
        format!(
            "the CA at {} did not validate the HTTP-01 challenges ({}); check that http://<name>{CHALLENGE_PATH} reaches the operator through the Ingress and Service it creates in its namespace",
            cx.directory,
            if details.is_empty() {
                "no details given".to_string()
            } else {
                details.join("; ")
            }
        ),
    )
}

fn acme_spec(issuer: &PublicIssuer) -> Result<&AcmeIssuer, AcmeError> {
    issuer.spec.acme.as_ref().ok_or_else(|| {
        AcmeError::config(format!(
            "PublicIssuer {} is not an ACME issuer",
            issuer.name_any()
        ))
    })
}

fn api_unavailable(what: &str, e: &kube::Error) -> AcmeError {
    AcmeError::new(
        ACME_SERVER_UNAVAILABLE,
        format!(
            "{what} failed (Kubernetes API): {}",
            crate::telemetry::kube_error(e)
        ),
    )
}

/// The EAB HMAC key as CAs hand it out: base64url (padding and the standard alphabet
/// tolerated, surrounding whitespace ignored).
pub fn decode_hmac_key(raw: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| "the HMAC key is not text (expected base64url)".to_string())?
        .trim()
        .trim_end_matches('=');
    if text.is_empty() {
        return Err("the HMAC key is empty".to_string());
    }
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let s = base64::engine::general_purpose::STANDARD_NO_PAD;
    let key = e
        .decode(text)
        .or_else(|_| s.decode(text))
        .map_err(|_| "the HMAC key is not base64url, as the CA's portal gives it".to_string())?;
    if key.len() < 16 {
        return Err(format!(
            "the HMAC key is {} bytes long; CAs hand out at least 16 (check it was copied whole)",
            key.len()
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_windows_are_kept_until_the_cas_retry_after() {
        let now = Instant::now();
        let w = Some((
            Timestamp::from_second(1_800_000_000).unwrap(),
            Timestamp::from_second(1_800_086_400).unwrap(),
        ));
        let mut cache = AriCache::default();
        cache.put("a".into(), w, Duration::from_secs(60), now);
        assert_eq!(cache.get("a", now), Some(w));
        assert_eq!(cache.get("a", now + Duration::from_secs(59)), Some(w));
        assert_eq!(cache.get("a", now + Duration::from_secs(60)), None);
        assert_eq!(cache.get("b", now), None);
        // No window is an answer too; no Retry-After is nothing to keep.
        cache.put("none".into(), None, Duration::from_secs(60), now);
        assert_eq!(cache.get("none", now), Some(None));
        cache.put("zero".into(), w, Duration::ZERO, now);
        assert_eq!(cache.get("zero", now), None);
        // A week's Retry-After is kept at most ARI_MAX_AGE.
        cache.put("long".into(), w, Duration::from_secs(7 * 86_400), now);
        assert_eq!(cache.get("long", now + ARI_MAX_AGE), None);
        // Expired entries do not pile up.
        for i in 0..5000 {
            cache.put(format!("c{i}"), w, Duration::from_secs(1), now);
        }
        let later = now + Duration::from_secs(2);
        for i in 0..5000 {
            cache.put(format!("d{i}"), w, Duration::from_secs(1), later);
        }
        assert!(cache.entries.len() < 6000, "{}", cache.entries.len());
        assert_eq!(cache.get("d4999", later), Some(w));
    }

    #[test]
    fn hmac_keys_decode_as_cas_hand_them_out() {
        let pebble = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
        let key = decode_hmac_key(pebble.as_bytes()).unwrap();
        assert_eq!(key.len(), 48);
        assert_eq!(
            decode_hmac_key(format!(" {pebble}\n").as_bytes()).unwrap(),
            key
        );
        let with_dash = "HjudV5qnbreN-n9WyFSH-t4HXuEx_XFen45zuxY-G1h6fr74V3cUM_dVlwQZBWmc";
        assert_eq!(decode_hmac_key(with_dash.as_bytes()).unwrap().len(), 48);
        let standard = base64::engine::general_purpose::STANDARD.encode([0xfb_u8; 32]);
        assert_eq!(
            decode_hmac_key(standard.as_bytes()).unwrap(),
            vec![0xfb; 32]
        );
    }

    #[test]
    fn bad_hmac_keys_say_why() {
        assert!(decode_hmac_key(b"").unwrap_err().contains("empty"));
        assert!(
            decode_hmac_key(b"not base64 at all!")
                .unwrap_err()
                .contains("base64url")
        );
        assert!(
            decode_hmac_key(b"c2hvcnQ")
                .unwrap_err()
                .contains("bytes long")
        );
        assert!(
            decode_hmac_key(&[0xff, 0xfe])
                .unwrap_err()
                .contains("not text")
        );
    }
}
