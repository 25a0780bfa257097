// Test infrastructure only: the cert-manager Go module, whose deploy/crds/ holds the plain
// CustomResourceDefinitions the e2e tests install (e2e/src/certmanager.rs). Nothing here is
// part of the operator.
module siths-operator.io/e2e/certmanager

go 1.26.0

require github.com/cert-manager/cert-manager v1.21.2
