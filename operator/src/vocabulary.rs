//! The shared names of the operator: labels and annotations on the objects it writes,
//! condition types and the reasons of a ServiceCertificate's conditions. Every module
//! (controllers, `policy`, `acme`, `audit`, the CLI) names them from here, so a reason the
//! controller writes and the reason `sithsctl plan` prints are the same constant.

/// Field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "siths-operator";
/// Label on every object the operator creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "siths-operator");
/// Label naming the ServiceCertificate an object belongs to.
pub const CERTIFICATE_LABEL: &str = "siths-operator.io/certificate";
/// Label naming the SithsIssuer of an order.
pub const ISSUER_LABEL: &str = "siths-operator.io/issuer";
/// Label or annotation with the certificate revision.
pub const REVISION_KEY: &str = "siths-operator.io/revision";
/// Annotation on a ServiceCertificate: a person asked for a new revision at this time
/// (`sithsctl renew`).
pub const RENEW_REQUESTED_KEY: &str = "siths-operator.io/renew-requested-at";
/// Annotation on a certificate Secret: when the operator wrote it.
pub const ISSUED_AT_KEY: &str = "siths-operator.io/issued-at";
/// Annotation on a CertificateOrder: a person (`sithsctl orders import`) asked at this time
/// for the imported certificate to be checked, the same bytes again included.
pub const IMPORT_REQUESTED_KEY: &str = "siths-operator.io/import-requested-at";
/// Label marking what an operator-made object is (see the `ROLE_*` values).
pub const ROLE_LABEL: &str = "siths-operator.io/role";
/// Value of [`ROLE_LABEL`] on staged private key Secrets.
pub const ROLE_STAGED_KEY: &str = "staged-key";
/// Value of [`ROLE_LABEL`] on certificate Secrets.
pub const ROLE_CERTIFICATE: &str = "certificate";
/// Annotation on a certificate Secret or trust bundle ConfigMap: the content digest of the
/// Java stores written into it (`pki::keystore::content_digest`: certificates, key
/// fingerprint, a digest of the password, profile), never the password. The stores are
/// rebuilt exactly when it changes.
pub const KEYSTORE_DIGEST_KEY: &str = "siths-operator.io/keystore-digest";
/// Label on a Secret holding a key store password (value `"true"`): the operator watches
/// the metadata of these Secrets only, to rebuild stores when a password changes.
pub const KEYSTORE_PASSWORD_LABEL: &str = "siths-operator.io/keystore-password";
/// Secret key of the PKCS#12 key store of a certificate.
pub const KEYSTORE_P12: &str = "keystore.p12";
/// Secret key of the JKS key store of a certificate.
pub const KEYSTORE_JKS: &str = "keystore.jks";
/// Secret key of the PKCS#12 truststore of a certificate.
pub const TRUSTSTORE_P12: &str = "truststore.p12";
/// Secret key of the JKS truststore of a certificate.
pub const TRUSTSTORE_JKS: &str = "truststore.jks";
/// Alias of the private key entry in a certificate's key stores.
pub const KEYSTORE_ALIAS: &str = "certificate";
/// Annotation on an Ingress choosing its mode (`public`, `audit`, `ignore`).
pub const INGRESS_TLS_ANNOTATION: &str = "siths-operator.io/tls";
/// Annotation on an Ingress naming the PublicIssuer of its `public` mode.
pub const INGRESS_ISSUER_ANNOTATION: &str = "siths-operator.io/public-issuer";

/// Condition types.
pub mod condition {
    /// A DomainValidation holds.
    pub const VALIDATED: &str = "Validated";
    /// A SithsTrustBundle's ConfigMaps are current.
    pub const SYNCED: &str = "Synced";
    /// A ServiceCertificate's Secret holds a current certificate for the spec; an issuer
    /// can issue.
    pub const READY: &str = "Ready";
    /// Every name is covered by a Validated DomainValidation (or the gate is off).
    pub const DOMAIN_VALIDATED: &str = "DomainValidated";
    /// A revision is being issued, or why not.
    pub const ISSUING: &str = "Issuing";
    /// The Java key stores a ServiceCertificate asks for are in its Secret, or why not.
    pub const KEYSTORES: &str = "Keystores";
    /// A DomainValidation's `evidence.dnsTxtRecord` was looked up live, and what came back.
    pub const DNS_CHECKED: &str = "DnsChecked";
}

/// Reasons of a DomainValidation's live DNS TXT check (conditions `Validated` and
/// `DnsChecked`), the values of `status.dns.result` and the result label of the
/// `siths_dns_checks_total` metric.
pub mod dns {
    /// The record holds the expected value.
    pub const FOUND: &str = "DnsRecordFound";
    /// The record does not exist (NXDOMAIN or no TXT data).
    pub const MISSING: &str = "DnsRecordMissing";
    /// The record exists with other values only.
    pub const MISMATCH: &str = "DnsRecordMismatch";
    /// The lookup got no answer: timeout, unreachable nameserver, SERVFAIL or REFUSED.
    pub const FAILED: &str = "DnsCheckFailed";
    /// The record has not been looked up yet for the current spec.
    pub const PENDING: &str = "DnsCheckPending";
    /// Event action of the live check.
    pub const ACTION: &str = "DnsCheck";
}

/// Condition reasons of a ServiceCertificate: the gates' refusals, the issuance outcomes
/// and the states of `Issuing`.
pub mod reason {
    /// Purpose and issuer kind do not match (the route refuses).
    pub const WRONG_ROUTE: &str = "WrongRoute";
    /// The named issuer does not exist.
    pub const ISSUER_NOT_FOUND: &str = "IssuerNotFound";
    /// The named issuer exists but cannot issue.
    pub const ISSUER_NOT_READY: &str = "IssuerNotReady";
    /// The issuer's `allowedNamespaces` does not match the certificate's namespace.
    pub const NAMESPACE_NOT_ALLOWED: &str = "NamespaceNotAllowed";
    /// `hsaId` is not a valid HSA-id.
    pub const INVALID_HSA_ID: &str = "InvalidHsaId";
    /// A DNS name is not a valid host name.
    pub const INVALID_DNS_NAME: &str = "InvalidDnsName";
    /// A name is not covered by a Validated DomainValidation.
    pub const DOMAIN_NOT_VALIDATED: &str = "DomainNotValidated";
    /// `DomainValidated=False`: a name is not covered.
    pub const NOT_COVERED: &str = "NotCovered";
    /// `DomainValidated=True`: every name is covered.
    pub const COVERED: &str = "Covered";
    /// `DomainValidated=True`: the PublicIssuer turned the gate off.
    pub const GATE_DISABLED: &str = "GateDisabled";
    /// An older ServiceCertificate manages the same Secret.
    pub const SECRET_CONFLICT: &str = "SecretConflict";
    /// A UserFacing certificate's Secret is used by back-end (SITHS) traffic.
    pub const SHARED_WITH_BACKEND: &str = "SharedWithBackend";
    /// A certificate is being issued (no current one in the Secret yet).
    pub const ISSUING: &str = "Issuing";
    /// The operator issued the certificate in the Secret.
    pub const ISSUED: &str = "Issued";
    /// A certificate found in the Secret was taken over without an order.
    pub const ADOPTED: &str = "Adopted";
    /// A publicly trusted certificate placed by someone else was verified.
    pub const VERIFIED: &str = "Verified";
    /// The Secret holds a certificate that does not fit the spec.
    pub const SECRET_MISMATCH: &str = "SecretMismatch";
    /// A Ready certificate's Secret was changed.
    pub const SECRET_TAMPERED: &str = "SecretTampered";
    /// A Ready certificate's Secret was deleted.
    pub const SECRET_DELETED: &str = "SecretDeleted";
    /// `Issuing=False`: nothing to issue.
    pub const UP_TO_DATE: &str = "UpToDate";
    /// `Issuing=True`: renewal is due.
    pub const RENEWING: &str = "Renewing";
    /// Renewal is due and a person must act (manual public issuer).
    pub const RENEWAL_DUE: &str = "RenewalDue";
    /// A person asked for a new revision.
    pub const RENEWAL_REQUESTED: &str = "RenewalRequested";
    /// The order waits for a person's approval.
    pub const WAITING_FOR_APPROVAL: &str = "WaitingForApproval";
    /// The order waits for a person to import (or place) the certificate.
    pub const AWAITING_CERTIFICATE: &str = "AwaitingCertificate";
    /// The order was denied.
    pub const ORDER_DENIED: &str = "OrderDenied";
    /// The order was approved.
    pub const ORDER_APPROVED: &str = "OrderApproved";
    /// The order was created.
    pub const ORDER_CREATED: &str = "OrderCreated";
    /// The certificate obtained was refused by the check.
    pub const CERTIFICATE_REJECTED: &str = "CertificateRejected";
    /// A key or certificate operation failed on this input.
    pub const CERTIFICATE_OPERATION_FAILED: &str = "CertificateOperationFailed";
    /// cert-manager renews on its own.
    pub const DELEGATED_RENEWAL: &str = "DelegatedRenewal";
    /// The issuance source is not available in this build.
    pub const SOURCE_UNAVAILABLE: &str = "SourceUnavailable";
    /// A CertificateOrder cannot be read into the operator's type (an older or looser
    /// schema admitted it); it is named, skipped, and never overwritten.
    pub const ORDER_UNREADABLE: &str = "OrderUnreadable";
    /// An issuer's trust anchors (or a PublicIssuer's additional roots) cannot be used.
    pub const TRUST_ANCHORS_INVALID: &str = "TrustAnchorsInvalid";
    /// An order under the certificate's order name was not made by the operator for it.
    pub const ORDER_NOT_MADE_BY_OPERATOR: &str = "OrderNotMadeByOperator";
    /// The issuer's organisation number is invalid.
    pub const INVALID_ORGANIZATION_NUMBER: &str = "InvalidOrganizationNumber";
    /// A key store password Secret (or its key) does not exist.
    pub const KEYSTORE_PASSWORD_NOT_FOUND: &str = "KeystorePasswordNotFound";
    /// The Java key stores were (re)built.
    pub const KEYSTORES_WRITTEN: &str = "KeystoresWritten";
}

/// Event actions.
pub mod action {
    /// The domain-validation gate.
    pub const GATE: &str = "Gate";
    /// Adopting a certificate in place.
    pub const ADOPT: &str = "Adopt";
    /// Renewal.
    pub const RENEW: &str = "Renew";
    /// Verifying the Secret.
    pub const VERIFY: &str = "Verify";
    /// Placing an order.
    pub const ORDER: &str = "Order";
    /// Approving or denying an order.
    pub const APPROVE: &str = "Approve";
    /// Importing a certificate into an order.
    pub const IMPORT: &str = "Import";
    /// Issuing.
    pub const ISSUE: &str = "Issue";
    /// Building Java key stores.
    pub const KEYSTORE: &str = "Keystore";
}

/// What an event says, in one shape for every controller and decision: Normal or Warning,
/// reason, action and note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice<'a> {
    /// `Warning` instead of `Normal`.
    pub warning: bool,
    /// Machine-readable reason (see [`reason`]).
    pub reason: &'a str,
    /// What the operator did or tried (see [`action`]).
    pub action: &'a str,
    /// What happened, for people.
    pub note: String,
}

impl<'a> Notice<'a> {
    /// A `Normal` event.
    pub fn normal(reason: &'a str, action: &'a str, note: impl Into<String>) -> Self {
        Notice {
            warning: false,
            reason,
            action,
            note: note.into(),
        }
    }

    /// A `Warning` event.
    pub fn warning(reason: &'a str, action: &'a str, note: impl Into<String>) -> Self {
        Notice {
            warning: true,
            reason,
            action,
            note: note.into(),
        }
    }
}
