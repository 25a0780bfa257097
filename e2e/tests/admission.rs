//! Bad input is rejected at admission with a message a person can act on. The cases here
//! are the table in `docs/admission-errors.md`; the test fails if the two drift apart.

use anyhow::{Result, bail};
use kube::{
    Api, Client,
    api::{DynamicObject, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};

/// One invalid object: a create (or, with `update`, a valid create followed by this change).
struct Case {
    what: &'static str,
    kind: &'static str,
    body: &'static str,
    update: Option<&'static str>,
    message: &'static str,
}

const CERT_OK: &str = r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se"],"secretName":"a-tls","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#;
const ORDER_OK: &str = r#"{"certificateName":"a","revision":1,"issuerName":"region","dnsNames":["a.region.se"],"hsaId":"SE2321000016-A1","subject":"SERIALNUMBER=SE2321000016-A1, CN=a.region.se, O=Region, C=SE","csr":"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n","estimatedCostSek":750}"#;
const ORDER_APPROVED: &str = r#"{"certificateName":"a","revision":1,"issuerName":"region","dnsNames":["a.region.se"],"hsaId":"SE2321000016-A1","subject":"SERIALNUMBER=SE2321000016-A1, CN=a.region.se, O=Region, C=SE","csr":"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n","estimatedCostSek":750,"approval":{"decision":"Approved","by":"anna","at":"2026-12-01T10:00:00Z","reason":"budget 2026"}}"#;
const ISSUER_OK: &str = r#"{"organization":{"name":"Region","organizationNumber":"232100-0016"},"connection":{"type":"Direct"},"environment":"Test","backend":{"manual":{}}}"#;

const CASES: &[Case] = &[
    Case {
        what: "UserFacing certificate on a SithsIssuer",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"UserFacing","dnsNames":["www.region.se"],"secretName":"w","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "a UserFacing certificate must use a PublicIssuer",
    },
    Case {
        what: "ServerToServer certificate on a PublicIssuer",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se"],"secretName":"a","issuerRef":{"kind":"PublicIssuer","name":"telia"}}"#,
        update: None,
        message: "a ServerToServer certificate must use a SithsIssuer",
    },
    Case {
        what: "ServerToServer without hsaId",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","dnsNames":["a.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "hsaId is required for purpose ServerToServer",
    },
    Case {
        what: "HSA-id with å, ä, ö",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-ÅÄÖ","dnsNames":["a.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "hsaId must look like SE2321000016-ABC1",
    },
    Case {
        what: "HSA-id longer than 31 characters",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-ABCDEFGHIJKLMNOPQRS","dnsNames":["a.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "hsaId must look like SE2321000016-ABC1",
    },
    Case {
        what: "uppercase DNS name",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["Api.Region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "must be a lowercase DNS name",
    },
    Case {
        what: "DNS name with a trailing dot",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["api.region.se."],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "no trailing dot",
    },
    Case {
        what: "wildcard in the middle",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["api.*.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "a wildcard is allowed only as the whole leftmost label",
    },
    Case {
        what: "non-ASCII (IDN) name not in punycode",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["vårdcentral.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "punycode (xn--)",
    },
    Case {
        what: "an IP address as a DNS name",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["10.0.0.1"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "an IP address is not a DNS name",
    },
    Case {
        what: "no DNS names",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":[],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "dnsNames needs at least one DNS name",
    },
    Case {
        what: "the same DNS name twice",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se","a.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "Duplicate value",
    },
    Case {
        what: "RSA key of 4096 bits",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"},"privateKey":{"algorithm":"RSA","size":4096}}"#,
        update: None,
        message: "privateKey.size must be 2048 or 3072 for RSA",
    },
    Case {
        what: "renewBefore in words",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"},"renewBefore":"30 days"}"#,
        update: None,
        message: "renewBefore must be a number of days or hours",
    },
    Case {
        what: "invalid secretName",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se"],"secretName":"My_Secret","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "secretName must be a valid Secret name",
    },
    Case {
        what: "purpose changed after creation",
        kind: "ServiceCertificate",
        body: CERT_OK,
        update: Some(
            r#"{"purpose":"UserFacing","issuerRef":{"kind":"PublicIssuer","name":"telia"}}"#,
        ),
        message: "purpose cannot be changed",
    },
    Case {
        what: "localCA backend on a Production issuer",
        kind: "SithsIssuer",
        body: r#"{"organization":{"name":"Region","organizationNumber":"232100-0016"},"connection":{"type":"Direct"},"environment":"Production","backend":{"localCA":{"secretRef":{"name":"ca","namespace":"default"}}}}"#,
        update: None,
        message: "backend.localCA is for test and development clusters only",
    },
    Case {
        what: "two backends at once",
        kind: "SithsIssuer",
        body: r#"{"organization":{"name":"Region","organizationNumber":"232100-0016"},"connection":{"type":"Direct"},"environment":"Test","backend":{"manual":{},"localCA":{"secretRef":{"name":"ca","namespace":"default"}}}}"#,
        update: None,
        message: "set exactly one of backend.manual or backend.localCA",
    },
    Case {
        what: "no backend",
        kind: "SithsIssuer",
        body: r#"{"organization":{"name":"Region","organizationNumber":"232100-0016"},"connection":{"type":"Direct"},"environment":"Test","backend":{}}"#,
        update: None,
        message: "set exactly one of backend.manual or backend.localCA",
    },
    Case {
        what: "ThirdParty connection without an agent",
        kind: "SithsIssuer",
        body: r#"{"organization":{"name":"Vårdbolaget AB","organizationNumber":"556559-4230"},"connection":{"type":"ThirdParty"},"environment":"Test","backend":{"manual":{}}}"#,
        update: None,
        message: "connection.agent is required for type ThirdParty",
    },
    Case {
        what: "organisation number without hyphen",
        kind: "SithsIssuer",
        body: r#"{"organization":{"name":"Region","organizationNumber":"23210000160"},"connection":{"type":"Direct"},"environment":"Test","backend":{"manual":{}}}"#,
        update: None,
        message: "organisation number must be written NNNNNN-NNNN",
    },
    Case {
        what: "organisation number with third and fourth digits below 20",
        kind: "SithsIssuer",
        body: r#"{"organization":{"name":"Region","organizationNumber":"231000-0016"},"connection":{"type":"Direct"},"environment":"Test","backend":{"manual":{}}}"#,
        update: None,
        message: "third and fourth digits together must be 20 or more",
    },
    Case {
        what: "environment changed after creation",
        kind: "SithsIssuer",
        body: ISSUER_OK,
        update: Some(r#"{"environment":"Production"}"#),
        message: "environment cannot be changed after creation",
    },
    Case {
        what: "wildcard as the validated domain",
        kind: "DomainValidation",
        body: r#"{"domain":"*.region.se","owner":{"name":"Region","organizationNumber":"232100-0016"},"validatedFor":"232100-0016","evidence":{"formReference":"DV-1","submittedBy":"Anna","approvedOn":"2026-01-10"},"validUntil":"2030-01-01"}"#,
        update: None,
        message: "domain must not be a wildcard; set includeSubdomains: true instead",
    },
    Case {
        what: "validUntil not written YYYY-MM-DD",
        kind: "DomainValidation",
        body: r#"{"domain":"region.se","owner":{"name":"Region","organizationNumber":"232100-0016"},"validatedFor":"232100-0016","evidence":{"formReference":"DV-1","submittedBy":"Anna","approvedOn":"2026-01-10"},"validUntil":"31/12/2030"}"#,
        update: None,
        message: "must be a date written YYYY-MM-DD",
    },
    Case {
        what: "an approval's approver and time rewritten, the decision kept",
        kind: "CertificateOrder",
        body: ORDER_APPROVED,
        update: Some(
            r#"{"approval":{"decision":"Approved","by":"mallory","at":"2026-11-30T09:00:00Z","reason":"budget 2026"}}"#,
        ),
        message: "an approval record (decision, by, at, reason) cannot be changed or removed once made",
    },
    Case {
        what: "an approval removed",
        kind: "CertificateOrder",
        body: ORDER_APPROVED,
        update: Some(r#"{"approval":null}"#),
        message: "an approval record (decision, by, at, reason) cannot be changed or removed once made",
    },
    Case {
        what: "the CSR of an order changed",
        kind: "CertificateOrder",
        body: ORDER_OK,
        update: Some(
            r#"{"csr":"-----BEGIN CERTIFICATE REQUEST-----\nMIIC\n-----END CERTIFICATE REQUEST-----\n"}"#,
        ),
        message: "the request part of an order (certificateName, revision, issuerName, csr, dnsNames, hsaId, subject, estimatedCostSek) cannot be changed",
    },
    Case {
        what: "PublicIssuer with two sources",
        kind: "PublicIssuer",
        body: r#"{"manual":{},"certManager":{"issuerRef":{"name":"ca","kind":"ClusterIssuer"}},"organizationNumber":"232100-0016"}"#,
        update: None,
        message: "set exactly one of acme, certManager or manual",
    },
    Case {
        what: "PublicIssuer without organizationNumber while the gate is on",
        kind: "PublicIssuer",
        body: r#"{"manual":{}}"#,
        update: None,
        message: "organizationNumber is required while domainValidation is Required",
    },
    Case {
        what: "ACME directory over plain http",
        kind: "PublicIssuer",
        body: r#"{"acme":{"server":"http://acme.example/directory","privateKeySecretRef":{"name":"a","namespace":"b"}},"domainValidation":"Disabled"}"#,
        update: None,
        message: "acme.server must be an https:// URL",
    },
    Case {
        what: "ACME contact that is not an email address",
        kind: "PublicIssuer",
        body: r#"{"acme":{"email":"pki at region.se","privateKeySecretRef":{"name":"a","namespace":"b"}},"domainValidation":"Disabled"}"#,
        update: None,
        message: "acme.email must be an email address",
    },
    Case {
        what: "DNS-01 nameserver given as a host name",
        kind: "PublicIssuer",
        body: r#"{"acme":{"privateKeySecretRef":{"name":"a","namespace":"b"},"dns01":{"rfc2136":{"nameserver":"ns1.region.se","zone":"region.se","tsigKeyName":"acme","tsigSecretRef":{"name":"tsig","namespace":"b"}}}},"domainValidation":"Disabled"}"#,
        update: None,
        message: "rfc2136.nameserver must be an IP address with an optional port",
    },
    Case {
        what: "DNS-01 without the TSIG secret",
        kind: "PublicIssuer",
        body: r#"{"acme":{"privateKeySecretRef":{"name":"a","namespace":"b"},"dns01":{"rfc2136":{"nameserver":"10.0.0.53:53","zone":"region.se","tsigKeyName":"acme"}}},"domainValidation":"Disabled"}"#,
        update: None,
        message: "spec.acme.dns01.rfc2136.tsigSecretRef: Invalid value: rfc2136.tsigSecretRef is required",
    },
    Case {
        what: "DNS-01 with an unsupported TSIG algorithm",
        kind: "PublicIssuer",
        body: r#"{"acme":{"privateKeySecretRef":{"name":"a","namespace":"b"},"dns01":{"rfc2136":{"nameserver":"10.0.0.53","zone":"region.se","tsigKeyName":"acme","tsigAlgorithm":"hmac-md5","tsigSecretRef":{"name":"tsig","namespace":"b"}}}},"domainValidation":"Disabled"}"#,
        update: None,
        message: "rfc2136.tsigAlgorithm must be hmac-sha256, hmac-sha384 or hmac-sha512",
    },
    // Integers: every field has the bounds of its Rust type; the cost belongs to the operator.
    Case {
        what: "order revision beyond 32 bits",
        kind: "CertificateOrder",
        body: r#"{"certificateName":"a","revision":4294967296,"issuerName":"region","dnsNames":["a.region.se"],"subject":"CN=a.region.se","csr":"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"}"#,
        update: None,
        message: "spec.revision in body should be less than or equal to 4294967295",
    },
    Case {
        what: "order cost beyond 32 bits",
        kind: "CertificateOrder",
        body: r#"{"certificateName":"a","revision":1,"issuerName":"region","dnsNames":["a.region.se"],"subject":"CN=a.region.se","csr":"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n","estimatedCostSek":5000000000}"#,
        update: None,
        message: "spec.estimatedCostSek in body should be less than or equal to 4294967295",
    },
    Case {
        what: "order cost changed after creation",
        kind: "CertificateOrder",
        body: ORDER_OK,
        update: Some(r#"{"estimatedCostSek":0}"#),
        message: "the request part of an order (certificateName, revision, issuerName, csr, dnsNames, hsaId, subject, estimatedCostSek) cannot be changed",
    },
    Case {
        what: "key size beyond 32 bits",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"UserFacing","dnsNames":["www.region.se"],"secretName":"w","issuerRef":{"kind":"PublicIssuer","name":"telia"},"privateKey":{"algorithm":"RSA","size":4294967296}}"#,
        update: None,
        message: "spec.privateKey.size in body should be less than or equal to 4294967295",
    },
    // Organisation numbers: the Luhn check digit, wherever one is written.
    Case {
        what: "issuer organisation number with a wrong check digit",
        kind: "SithsIssuer",
        body: r#"{"organization":{"name":"Region","organizationNumber":"232100-0017"},"connection":{"type":"Direct"},"environment":"Test","backend":{"manual":{}}}"#,
        update: None,
        message: "organisation number has a wrong check digit",
    },
    Case {
        what: "agent organisation number with a wrong check digit",
        kind: "SithsIssuer",
        body: r#"{"organization":{"name":"Vårdbolaget AB","organizationNumber":"556559-4230"},"connection":{"type":"ThirdParty","agent":{"name":"Region","organizationNumber":"232100-0018"}},"environment":"Test","backend":{"manual":{}}}"#,
        update: None,
        message: "spec.connection.agent.organizationNumber: Invalid value: \"232100-0018\": organisation number has a wrong check digit",
    },
    Case {
        what: "domain owner organisation number with a wrong check digit",
        kind: "DomainValidation",
        body: r#"{"domain":"region.se","owner":{"name":"Region","organizationNumber":"232100-0019"},"validatedFor":"232100-0016","evidence":{"formReference":"DV-1","submittedBy":"Anna","approvedOn":"2026-01-10"},"validUntil":"2030-01-01","powerOfAttorney":{"reference":"FM-1","grantedBy":"232100-0019","validUntil":"2030-01-01"}}"#,
        update: None,
        message: "spec.owner.organizationNumber: Invalid value: \"232100-0019\": organisation number has a wrong check digit",
    },
    Case {
        what: "validatedFor with a wrong check digit",
        kind: "DomainValidation",
        body: r#"{"domain":"region.se","owner":{"name":"Region","organizationNumber":"232100-0016"},"validatedFor":"556559-4231","evidence":{"formReference":"DV-1","submittedBy":"Anna","approvedOn":"2026-01-10"},"validUntil":"2030-01-01","powerOfAttorney":{"reference":"FM-1","grantedBy":"232100-0016","validUntil":"2030-01-01"}}"#,
        update: None,
        message: "spec.validatedFor: Invalid value: \"556559-4231\": organisation number has a wrong check digit",
    },
    Case {
        what: "PublicIssuer organisation number with a wrong check digit",
        kind: "PublicIssuer",
        body: r#"{"manual":{},"organizationNumber":"202100-4186"}"#,
        update: None,
        message: "organisation number has a wrong check digit",
    },
    // Dates.
    Case {
        what: "a date that does not exist (30 February)",
        kind: "DomainValidation",
        body: r#"{"domain":"region.se","owner":{"name":"Region","organizationNumber":"232100-0016"},"validatedFor":"232100-0016","evidence":{"formReference":"DV-1","submittedBy":"Anna","approvedOn":"2026-01-10"},"validUntil":"2027-02-30"}"#,
        update: None,
        message: "must be a date written YYYY-MM-DD that exists on the calendar",
    },
    Case {
        what: "29 February outside a leap year",
        kind: "DomainValidation",
        body: r#"{"domain":"region.se","owner":{"name":"Region","organizationNumber":"232100-0016"},"validatedFor":"232100-0016","evidence":{"formReference":"DV-1","submittedBy":"Anna","approvedOn":"2027-02-29"},"validUntil":"2030-01-01"}"#,
        update: None,
        message: "spec.evidence.approvedOn: Invalid value: \"2027-02-29\": must be a date written YYYY-MM-DD that exists on the calendar",
    },
    Case {
        what: "validUntil before approvedOn",
        kind: "DomainValidation",
        body: r#"{"domain":"region.se","owner":{"name":"Region","organizationNumber":"232100-0016"},"validatedFor":"232100-0016","evidence":{"formReference":"DV-1","submittedBy":"Anna","approvedOn":"2026-01-10"},"validUntil":"2025-12-31"}"#,
        update: None,
        message: "validUntil must not be before evidence.approvedOn",
    },
    Case {
        what: "an approval time that is not RFC 3339",
        kind: "CertificateOrder",
        body: r#"{"certificateName":"a","revision":1,"issuerName":"region","dnsNames":["a.region.se"],"subject":"CN=a.region.se","csr":"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n","approval":{"decision":"Approved","by":"anna","at":"yesterday"}}"#,
        update: None,
        message: "approval.at must be an RFC 3339 time",
    },
    // DomainValidation: agent and owner.
    Case {
        what: "another owner without a power of attorney",
        kind: "DomainValidation",
        body: r#"{"domain":"boka.vardbolaget.se","owner":{"name":"Vårdbolaget Boka AB","organizationNumber":"202100-4185"},"validatedFor":"556559-4230","evidence":{"formReference":"DV-1","submittedBy":"Anna","approvedOn":"2026-01-10"},"validUntil":"2030-01-01"}"#,
        update: None,
        message: "spec.powerOfAttorney: Invalid value: powerOfAttorney is required when the owner",
    },
    Case {
        what: "a power of attorney granted by the agent itself",
        kind: "DomainValidation",
        body: r#"{"domain":"boka.vardbolaget.se","owner":{"name":"Vårdbolaget Boka AB","organizationNumber":"202100-4185"},"validatedFor":"556559-4230","evidence":{"formReference":"DV-1","submittedBy":"Anna","approvedOn":"2026-01-10"},"validUntil":"2030-01-01","powerOfAttorney":{"reference":"FM-1","grantedBy":"556559-4230","validUntil":"2030-01-01"}}"#,
        update: None,
        message: "powerOfAttorney.grantedBy must be the owner's organisation number",
    },
    Case {
        what: "a DNS TXT record name that is not a DNS name",
        kind: "DomainValidation",
        body: r#"{"domain":"region.se","owner":{"name":"Region","organizationNumber":"232100-0016"},"validatedFor":"232100-0016","evidence":{"formReference":"DV-1","submittedBy":"Anna","approvedOn":"2026-01-10","dnsTxtRecord":{"name":"siths validation at region.se","value":"x"}},"validUntil":"2030-01-01"}"#,
        update: None,
        message: "dnsTxtRecord.name must be a lowercase DNS name",
    },
    Case {
        what: "a DNS TXT record outside the validated domain",
        kind: "DomainValidation",
        body: r#"{"domain":"region.se","owner":{"name":"Region","organizationNumber":"232100-0016"},"validatedFor":"232100-0016","evidence":{"formReference":"DV-1","submittedBy":"Anna","approvedOn":"2026-01-10","dnsTxtRecord":{"name":"_siths-validation.notregion.se","value":"x"}},"validUntil":"2030-01-01"}"#,
        update: None,
        message: "spec.evidence.dnsTxtRecord.name: Invalid value: evidence.dnsTxtRecord.name must be the domain or a name below it",
    },
    // Names: the real DNS-1123 rules.
    Case {
        what: "secretName with an empty part (www..tls)",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se"],"secretName":"www..tls","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "secretName must be a valid Secret name",
    },
    Case {
        what: "secretName with a part starting with a hyphen (www.-tls)",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se"],"secretName":"www.-tls","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "secretName must be a valid Secret name",
    },
    Case {
        what: "configMapName with an empty part (siths..ca)",
        kind: "SithsTrustBundle",
        body: r#"{"sources":{"production":{}},"target":{"configMapName":"siths..ca","namespaceSelector":{}}}"#,
        update: None,
        message: "configMapName must be a valid ConfigMap name",
    },
    Case {
        what: "a ConfigMap reference in namespace PKI_System",
        kind: "SithsTrustBundle",
        body: r#"{"sources":{"additional":[{"name":"extra-ca","namespace":"PKI_System"}]},"target":{"namespaceSelector":{}}}"#,
        update: None,
        message: "namespace must be a valid namespace name",
    },
    Case {
        what: "an issuer name that is not an object name",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"Region Exempel"}}"#,
        update: None,
        message: "name must be a valid object name",
    },
    // Orders.
    Case {
        what: "order hsaId that is not an HSA-id",
        kind: "CertificateOrder",
        body: r#"{"certificateName":"a","revision":1,"issuerName":"region","dnsNames":["a.region.se"],"hsaId":"journal-api","subject":"CN=a.region.se","csr":"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"}"#,
        update: None,
        message: "hsaId must look like SE2321000016-ABC1",
    },
    Case {
        what: "order csr that is not a CSR",
        kind: "CertificateOrder",
        body: r#"{"certificateName":"a","revision":1,"issuerName":"region","dnsNames":["a.region.se"],"subject":"CN=a.region.se","csr":"hello"}"#,
        update: None,
        message: "csr must be one PEM certificate signing request",
    },
    Case {
        what: "a certificate where the CSR belongs",
        kind: "CertificateOrder",
        body: r#"{"certificateName":"a","revision":1,"issuerName":"region","dnsNames":["a.region.se"],"subject":"CN=a.region.se","csr":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}"#,
        update: None,
        message: "csr must be one PEM certificate signing request",
    },
    // Selectors.
    Case {
        what: "a namespace selector with operator Equals",
        kind: "SithsTrustBundle",
        body: r#"{"sources":{"production":{}},"target":{"namespaceSelector":{"matchExpressions":[{"key":"team","operator":"Equals","values":["a"]}]}}}"#,
        update: None,
        message: "a matchExpressions operator must be In or NotIn (with values) or Exists or DoesNotExist",
    },
    Case {
        what: "an issuer's allowedNamespaces with In and no values",
        kind: "SithsIssuer",
        body: r#"{"organization":{"name":"Region","organizationNumber":"232100-0016"},"connection":{"type":"Direct"},"environment":"Test","backend":{"manual":{}},"allowedNamespaces":{"matchExpressions":[{"key":"team","operator":"In"}]}}"#,
        update: None,
        message: "a matchExpressions operator must be In or NotIn (with values) or Exists or DoesNotExist",
    },
    Case {
        what: "keystores with neither pkcs12 nor jks",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se"],"secretName":"a-tls","issuerRef":{"kind":"SithsIssuer","name":"region"},"keystores":{"truststore":true}}"#,
        update: None,
        message: "keystores needs pkcs12, jks or both",
    },
    Case {
        what: "a keystore password Secret name with an underscore",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se"],"secretName":"a-tls","issuerRef":{"kind":"SithsIssuer","name":"region"},"keystores":{"pkcs12":{"passwordSecretRef":{"name":"key_store"}}}}"#,
        update: None,
        message: "name must be a valid object name",
    },
    Case {
        what: "a truststore jksKey equal to its key",
        kind: "SithsTrustBundle",
        body: r#"{"sources":{"production":{}},"target":{"configMapName":"siths-ca","namespaceSelector":{},"truststore":{"key":"trust.p12","jksKey":"trust.p12"}}}"#,
        update: None,
        message: "jksKey must differ from key",
    },
    Case {
        what: "a truststore key with a slash",
        kind: "SithsTrustBundle",
        body: r#"{"sources":{"production":{}},"target":{"configMapName":"siths-ca","namespaceSelector":{},"truststore":{"key":"java/truststore.p12"}}}"#,
        update: None,
        message: "must be a valid data key",
    },
];

/// Valid objects near the edges above: each must be accepted.
const ACCEPTED: &[(&str, &str, &str)] = &[
    (
        "UserFacing certificate with RSA 4096",
        "ServiceCertificate",
        r#"{"purpose":"UserFacing","dnsNames":["www.region.se"],"secretName":"www.tls","issuerRef":{"kind":"PublicIssuer","name":"telia"},"privateKey":{"algorithm":"RSA","size":4096}}"#,
    ),
    (
        "29 February in a leap year",
        "DomainValidation",
        r#"{"domain":"region.se","owner":{"name":"Region","organizationNumber":"232100-0016"},"validatedFor":"232100-0016","evidence":{"formReference":"DV-1","submittedBy":"Anna","approvedOn":"2028-02-29"},"validUntil":"2028-02-29"}"#,
    ),
    (
        "another owner with its power of attorney and a TXT record name with _",
        "DomainValidation",
        r#"{"domain":"boka.vardbolaget.se","owner":{"name":"Vårdbolaget Boka AB","organizationNumber":"202100-4185"},"validatedFor":"556559-4230","evidence":{"formReference":"DV-1","submittedBy":"Anna","approvedOn":"2026-01-10","dnsTxtRecord":{"name":"_siths-validation.boka.vardbolaget.se","value":"x"}},"validUntil":"2030-01-01","powerOfAttorney":{"reference":"FM-1","grantedBy":"202100-4185","validUntil":"2030-01-01"}}"#,
    ),
    (
        "an order approved at an RFC 3339 time with fractions and an offset",
        "CertificateOrder",
        r#"{"certificateName":"a","revision":4294967295,"issuerName":"region","dnsNames":["a.region.se"],"subject":"CN=a.region.se","csr":"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n","estimatedCostSek":4294967295,"approval":{"decision":"Approved","by":"anna","at":"2026-05-04T11:30:00.123456789+02:00"}}"#,
    ),
    (
        "a trust bundle selecting with In, Exists and matchLabels",
        "SithsTrustBundle",
        r#"{"sources":{"production":{},"additional":[{"name":"extra.ca","namespace":"pki-system"}]},"target":{"configMapName":"siths.ca","namespaceSelector":{"matchLabels":{"a":"b"},"matchExpressions":[{"key":"team","operator":"In","values":["a"]},{"key":"siths","operator":"Exists"}]}}}"#,
    ),
    (
        "a certificate with a legacy PKCS#12 keystore, a JKS keystore and truststores",
        "ServiceCertificate",
        r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se"],"secretName":"a-tls","issuerRef":{"kind":"SithsIssuer","name":"region"},"keystores":{"pkcs12":{"passwordSecretRef":{"name":"ks.password","key":"pw"},"profile":"Legacy"},"jks":{"passwordSecretRef":{"name":"ks.password"}},"truststore":true}}"#,
    ),
    (
        "a trust bundle with PKCS#12 and JKS truststores and a password Secret",
        "SithsTrustBundle",
        r#"{"sources":{"production":{}},"target":{"configMapName":"siths-ca","namespaceSelector":{},"truststore":{"jksKey":"truststore.jks","passwordSecretRef":{"name":"trust-password","namespace":"pki-system"}}}}"#,
    ),
    (
        "PublicIssuer with a valid organisation number",
        "PublicIssuer",
        r#"{"manual":{},"organizationNumber":"202100-4185"}"#,
    ),
];

/// Cases whose rule sits on another field than the one the message is about: the apiserver
/// names this field (CEL `fieldPath`).
const FIELD_PATHS: &[(&str, &str)] = &[
    (
        "UserFacing certificate on a SithsIssuer",
        "spec.issuerRef.kind: ",
    ),
    (
        "ServerToServer certificate on a PublicIssuer",
        "spec.issuerRef.kind: ",
    ),
    ("RSA key of 4096 bits", "spec.privateKey.size: "),
    ("validUntil before approvedOn", "spec.validUntil: "),
    (
        "a power of attorney granted by the agent itself",
        "spec.powerOfAttorney.grantedBy: ",
    ),
    (
        "keystores with neither pkcs12 nor jks",
        "spec.keystores.pkcs12: ",
    ),
    (
        "a truststore jksKey equal to its key",
        "spec.target.truststore.jksKey: ",
    ),
    (
        "a namespace selector with operator Equals",
        "spec.target.namespaceSelector.matchExpressions[0].operator: ",
    ),
];

/// What the apiserver appends when an OpenAPI schema check failed: the CEL rules (with the
/// messages that say what to do) were then not run. Only the cases listed here may show it;
/// each is a bound the schema must keep (integer ranges, set semantics).
const NOT_CHECKED: &str = "some validation rules were not checked because the object was invalid";
const SCHEMA_ONLY: &[&str] = &[
    "the same DNS name twice",
    "order revision beyond 32 bits",
    "order cost beyond 32 bits",
    "key size beyond 32 bits",
];

fn api(client: &Client, kind: &str, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("siths-operator.io", "v1alpha1", kind);
    let ar = ApiResource::from_gvk(&gvk);
    match kind {
        "SithsIssuer" | "DomainValidation" | "PublicIssuer" | "SithsTrustBundle" => {
            Api::all_with(client.clone(), &ar)
        }
        _ => Api::namespaced_with(client.clone(), ns, &ar),
    }
}

fn object(kind: &str, name: &str, spec: &str) -> Result<DynamicObject> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "siths-operator.io/v1alpha1",
        "kind": kind,
        "metadata": { "name": name },
        "spec": serde_json::from_str::<serde_json::Value>(spec)?,
    }))?)
}

#[tokio::test]
async fn invalid_objects_are_rejected_at_admission_with_an_actionable_message() -> Result<()> {
    let client = e2e::shared().client().await?;
    let ns = e2e::test_namespace(&client, "admission").await?;
    let docs = std::fs::read_to_string(
        e2e::controlplane::workspace_root().join("docs/admission-errors.md"),
    )?;
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let api = api(&client, case.kind, &ns);
        let name = format!("{ns}-case-{i}");
        let result = match case.update {
            None => api
                .create(
                    &PostParams::default(),
                    &object(case.kind, &name, case.body)?,
                )
                .await
                .map(|_| ()),
            Some(change) => {
                api.create(
                    &PostParams::default(),
                    &object(case.kind, &name, case.body)?,
                )
                .await?;
                let patch = serde_json::json!({ "spec": serde_json::from_str::<serde_json::Value>(change)? });
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Ok(()) => failures.push(format!("{}: accepted", case.what)),
            Err(kube::Error::Api(status)) => {
                if status.code != 422 || !status.message.contains(case.message) {
                    failures.push(format!(
                        "{}: got {} {:?}, expected a message containing {:?}",
                        case.what, status.code, status.message, case.message
                    ));
                }
                if status.message.contains(NOT_CHECKED) && !SCHEMA_ONLY.contains(&case.what) {
                    failures.push(format!(
                        "{}: the actionable message was hidden behind a schema error: {:?}",
                        case.what, status.message
                    ));
                }
                if let Some((_, field)) = FIELD_PATHS.iter().find(|(w, _)| *w == case.what)
                    && !status.message.contains(field)
                {
                    failures.push(format!(
                        "{}: expected the message to name {field:?}: {:?}",
                        case.what, status.message
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.what)),
        }
        if !docs.contains(case.message) || !docs.contains(case.what) {
            failures.push(format!(
                "{}: missing from docs/admission-errors.md",
                case.what
            ));
        }
    }
    for (i, (what, kind, body)) in ACCEPTED.iter().enumerate() {
        let name = format!("{ns}-ok-{i}");
        if let Err(e) = api(&client, kind, &ns)
            .create(&PostParams::default(), &object(kind, &name, body)?)
            .await
        {
            failures.push(format!("{what}: rejected: {e}"));
        }
        if !docs.contains(what) {
            failures.push(format!("{what}: missing from docs/admission-errors.md"));
        }
    }
    for what in SCHEMA_ONLY.iter().chain(FIELD_PATHS.iter().map(|(w, _)| w)) {
        assert!(
            CASES.iter().any(|c| c.what == *what),
            "{what} is not a case"
        );
    }
    assert!(CASES.len() >= 50);
    if !failures.is_empty() {
        bail!(
            "{} of {} cases failed:\n{}",
            failures.len(),
            CASES.len(),
            failures.join("\n")
        );
    }
    Ok(())
}

/// One rule, two places that must agree: for each value, the apiserver (CEL and schema
/// generated from `operator/src/api/`) accepts it exactly when the operator's Rust check
/// does (organisation numbers with their Luhn digit, calendar dates, DNS-1123 names, HSA-ids).
#[tokio::test]
async fn admission_and_the_operators_own_checks_agree() -> Result<()> {
    use siths_operator::policy::{domain_validation::parse_date, identifiers, names};
    let client = e2e::shared().client().await?;
    let ns = e2e::test_namespace(&client, "agree").await?;
    let mut disagree = Vec::new();
    let mut n = 0;
    let mut accepted = |kind: &'static str, spec: String| {
        n += 1;
        let name = format!("{ns}-agree-{n}");
        let api = api(&client, kind, &ns);
        async move {
            match api
                .create(&PostParams::default(), &object(kind, &name, &spec)?)
                .await
            {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 422 => Ok(false),
                Err(e) => Err(anyhow::Error::from(e)),
            }
        }
    };
    for number in [
        "232100-0016",
        "556559-4230",
        "202100-4185",
        "212000-0142",
        "232100-0017",
        "556559-4231",
        "202100-4186",
        "556559-4239",
        "231000-0016",
        "2321000016x",
    ] {
        let cel = accepted(
            "PublicIssuer",
            format!(r#"{{"manual":{{}},"organizationNumber":"{number}"}}"#),
        )
        .await?;
        let rust = identifiers::validate_organization_number(number).is_ok();
        if cel != rust {
            disagree.push(format!(
                "organisation number {number}: admission {cel}, Rust {rust}"
            ));
        }
    }
    for date in [
        "2024-02-29",
        "2000-02-29",
        "2100-02-29",
        "2027-02-29",
        "2027-02-28",
        "2027-02-30",
        "2027-04-31",
        "2027-12-31",
        "2027-13-01",
        "2027-00-10",
    ] {
        let cel = accepted(
            "DomainValidation",
            format!(
                r#"{{"domain":"region.se","owner":{{"name":"R","organizationNumber":"232100-0016"}},"validatedFor":"232100-0016","evidence":{{"formReference":"X","submittedBy":"Y","approvedOn":"2000-01-01"}},"validUntil":"{date}"}}"#
            ),
        )
        .await?;
        let rust = parse_date("validUntil", date).is_ok();
        if cel != rust {
            disagree.push(format!("date {date}: admission {cel}, Rust {rust}"));
        }
    }
    for secret in [
        "a", "a.b", "a-b.c-d", "0.0", "www..tls", "www.-tls", "-a", "a-", "A", "a_b", "a.b-", ".a",
    ] {
        let cel = accepted(
            "ServiceCertificate",
            format!(
                r#"{{"purpose":"UserFacing","dnsNames":["www.region.se"],"secretName":"{secret}","issuerRef":{{"kind":"PublicIssuer","name":"telia"}}}}"#
            ),
        )
        .await?;
        let rust = names::is_dns1123_subdomain(secret);
        if cel != rust {
            disagree.push(format!("secretName {secret}: admission {cel}, Rust {rust}"));
        }
    }
    for hsa in [
        "SE2321000016-ABC1",
        "SE162321000255-O16560",
        "TSTNMT2321000156-1019",
        "SE2321000016-ABCDEFGHIJKLMNOPQR",
        "SE2321000016-ABCDEFGHIJKLMNOPQRS",
        "journal-api",
        "SE2321000016-ÅÄÖ",
        "SE232100001-A",
    ] {
        let cel = accepted(
            "ServiceCertificate",
            format!(
                r#"{{"purpose":"ServerToServer","hsaId":"{hsa}","dnsNames":["a.region.se"],"secretName":"a","issuerRef":{{"kind":"SithsIssuer","name":"region"}}}}"#
            ),
        )
        .await?;
        let rust = identifiers::validate_hsa_id(hsa).is_ok();
        if cel != rust {
            disagree.push(format!("hsaId {hsa}: admission {cel}, Rust {rust}"));
        }
    }
    if !disagree.is_empty() {
        bail!(
            "admission and the operator disagree:\n{}",
            disagree.join("\n")
        );
    }
    Ok(())
}
