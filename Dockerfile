# node-auditor: the build stage runs the same `npm ci` (which builds the bundle in `prepare`)
# as CI; the runtime stage is Debian's slim image with journalctl, the node binary and one
# bundled file (plus the CVE table the cve check reads beside it). Not the node image: its npm,
# corepack, yarn and C headers are 80 MiB the agent never uses (bench/RESULTS.md, "Image").
# The build image's Node is the release the tests run on: package-lock.json's `node` package
# (npm scripts use it), pinned to the same version here (test/deploy/dockerfile.test.ts).
FROM node:24.21.0-bookworm-slim AS build
WORKDIR /src
COPY . .
RUN npm ci --no-audit --no-fund

FROM debian:bookworm-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="node-auditor" \
      org.opencontainers.image.description="Per-node Kubernetes health and security auditing agent: says why a node is NotReady or exposed." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/node-auditor/node-auditor"
# The logs check follows the host's journal with journalctl --directory (the host's
# /var/log/journal mounted under /host); Debian ships journalctl only in the systemd package.
# No daemon runs: the agent is the container's only process.
# The user `node` (uid 1000) the node image has, for the USER below.
RUN apt-get update \
 && apt-get install -y --no-install-recommends systemd \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 1000 --user-group --no-create-home --shell /usr/sbin/nologin node
# The build stage's Node, the release the tests ran on: one self-contained binary (glibc and
# libstdc++ are in the base; ICU, OpenSSL and the CA store are built in).
COPY --from=build /usr/local/bin/node /usr/local/bin/node
COPY --from=build /src/dist/node-auditor.cjs /src/dist/node-auditor.cjs.map /src/dist/kubernetes-cves.json /app/
# Non-root by default: the sysctl, kubelet-cert and security checks read what any user may.
# The process checks (other users' /proc/<pid>/fd), the journal and remediation need root:
# the chart sets runAsUser for what is enabled (chart/README.md).
USER node
ENTRYPOINT ["node", "/app/node-auditor.cjs"]
CMD ["run", "--host-root", "/host"]
