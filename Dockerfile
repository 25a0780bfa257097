# The siths-operator image the Helm chart runs: a static (musl) binary on distroless,
# as a non-root user. Build: docker build -t ghcr.io/siths-operator/siths-operator:0.1.0 .
FROM docker.io/library/rust:1.95-alpine AS build
# A C toolchain for aws-lc-rs (the one rustls crypto provider).
RUN apk add --no-cache build-base cmake perl
WORKDIR /src
COPY . .
# musl targets link statically by default: the binary needs no libc at run time.
RUN cargo build --release --locked -p siths-operator --bin siths-operator \
    && cp target/release/siths-operator /siths-operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /siths-operator /siths-operator
# The chart's pod securityContext runs as the same user (65532, "nonroot").
USER 65532:65532
ENTRYPOINT ["/siths-operator"]
