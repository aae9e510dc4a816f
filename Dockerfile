# syntax=docker/dockerfile:1
#
# The wa-operator image: `node dist/operator/wa-operator.cjs`, the operator bundled with the
# packages it uses (scripts/bundle-operator.ts); no node_modules at run time.
#
#   make image   (docker, podman or buildah; IMAGE=REGISTRY/wa-operator:TAG to name it)
#   docker build --build-arg VERSION=0.2.0 -t ghcr.io/wa-operator/wa-operator:0.2.0 .
#
# Base image: node:<version>-bookworm-slim in both stages, not distroless nodejs24.
# - The entrypoint contract is `node dist/operator/wa-operator.cjs`: `node` resolved on PATH
#   (/usr/local/bin/node here; distroless keeps it at /nodejs/bin/node, off PATH).
# - Build and runtime use the very same Node binary, the one the bundle is built for.
# - The hardening distroless gives by construction is applied here instead: npm, npx
#   and corepack are removed from the final stage (no package manager at run time),
#   the process runs as uid 65532 (distroless's `nonroot`) with a read-only root
#   filesystem, and the Deployment drops every capability and uses RuntimeDefault
#   seccomp. Debian slim keeps a shell for `kubectl exec` while investigating.
# The version matches hack/node.sh, which pins the Node the tests run on
# (test/unit/dockerfile.test.ts checks that they agree).
ARG NODE_VERSION=24.21.0
# Both stages start from NODE_IMAGE. The release workflow passes it pinned to the digest it
# resolved for this tag (node:<version>-bookworm-slim@sha256:...), so a release is built
# from the bytes its provenance names even if the tag moves; a local build takes the tag.
ARG NODE_IMAGE=node:${NODE_VERSION}-bookworm-slim
# The operator's version (package.json's; `make image` passes it) and the commit built,
# for the image's OCI labels.
ARG VERSION=0.2.0
ARG REVISION=unknown

FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
# Dependencies first: this layer is reused until package*.json change.
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci
COPY tsconfig.json ./
COPY scripts/bundle-operator.ts ./scripts/bundle-operator.ts
COPY src ./src
# One file with what the operator uses of its packages (tree-shaken: none of zod's
# other locales, no OpenTelemetry SDK until tracing asks for it), and source maps.
RUN npm run bundle

FROM ${NODE_IMAGE}
ARG VERSION
ARG REVISION
LABEL org.opencontainers.image.title="wa-operator" \
      org.opencontainers.image.description="A Kubernetes operator that runs WhatsApp numbers declaratively across WAHA, Meta Cloud API, Wappfy, Whapi and WAPIZ." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# No package manager at run time: less to patch, less for an intruder to use.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
      /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*
WORKDIR /app
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
# The commit built, as wa_operator_build_info's revision label.
ENV WA_OPERATOR_REVISION=${REVISION}
# Owned by root and read-only to the process.
COPY --from=build /app/dist/operator ./dist/operator
# Nothing is written outside /tmp (the Deployment mounts an emptyDir there), so the
# root filesystem can be read-only. uid/gid 65532 need no passwd entry.
USER 65532:65532
EXPOSE 8080
# A young generation of at most 8 MB a semi-space: V8 otherwise grows it to 64 MB each under a
# burst of passes and keeps it, about 100 MB of RSS at 2,000 instances for no measurable CPU
# (npm run bench:e2e, which starts the operator with these very arguments).
ENTRYPOINT ["node", "--max-semi-space-size=8", "dist/operator/wa-operator.cjs"]
