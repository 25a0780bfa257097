# The documented alternative to `cargo xtask image` (which needs no Docker and is what CI
# builds and tests): the same image. One statically linked binary at /siths-operator,
# /etc/passwd and /etc/group with the non-root user 65532 ("nonroot"), an empty /tmp
# (1777), nothing else: no shell, no CA bundle (the binary carries webpki-roots and uses
# the cluster's CA for the API server). User 65532:65532, entrypoint /siths-operator,
# the OCI labels source, version, revision and licenses.
# Build: docker build --build-arg REVISION=$(git rev-parse HEAD) -t ghcr.io/siths-operator/siths-operator:0.1.0 .
FROM docker.io/library/rust:1.95-bookworm AS build
# A C toolchain for aws-lc-rs (the one rustls crypto provider).
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# glibc with +crt-static links statically: the binary needs no libc at run time.
RUN RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked \
      -p siths-operator --bin siths-operator --target x86_64-unknown-linux-gnu \
    && mkdir -p /rootfs/etc /rootfs/tmp \
    && cp target/x86_64-unknown-linux-gnu/release/siths-operator /rootfs/siths-operator \
    && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /rootfs/etc/passwd \
    && printf 'root:x:0:\nnonroot:x:65532:\n' > /rootfs/etc/group \
    && chmod 1777 /rootfs/tmp

FROM scratch
ARG REVISION=unknown
COPY --from=build /rootfs/ /
LABEL org.opencontainers.image.source="https://github.com/siths-operator/siths-operator" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# The chart's pod securityContext runs as the same user (65532, "nonroot").
USER 65532:65532
ENTRYPOINT ["/siths-operator"]
