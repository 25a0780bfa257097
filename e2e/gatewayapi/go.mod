// Test infrastructure only: pins the upstream Gateway API module whose standard-channel CRDs (config/crd/standard/)
// the e2e tests install. No Go code is built from it.
module siths-operator.io/e2e/gatewayapi

go 1.26

require sigs.k8s.io/gateway-api v1.6.3
