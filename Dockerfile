# One image for every entry point of tcr-assistant (relay, functions worker and CLI, hosts-updater, webhook).
#
#   docker build -t tcr-assistant:0.1.0 .           (BuildKit: Docker 23+, buildx, nerdctl, buildctl)
#
# The chart runs `node /app/relay.cjs`, `node /app/functions.cjs worker`, `node /app/hosts-updater.cjs` and
# `node /app/webhook.cjs`.
# This project's machines cannot pull a base image; infra/image/build-image.ts builds this same file with
# BuildKit built from source, supplying NODE_IMAGE as a local named context with the same Node release, and
# the host's npm cache as the `npm-cache` context. Why that keeps the two images the same:
# docs/adr-011-one-image.md.

# The base of both stages. Keep NODE_VERSION and this tag on the same release (build-image.ts checks both).
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# npm's content cache to install from. Empty by default (npm downloads);
# `--build-context npm-cache=$HOME/.npm/_cacache` (buildctl: context:npm-cache) fills it, and
# NPM_CI_FLAGS=--offline then forbids any download.
FROM scratch AS npm-cache

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
ARG NPM_CI_FLAGS=""
# --ignore-scripts: no install script of any dependency runs during the build (esbuild and TypeScript
# resolve their native binaries through optional packages, which need none).
RUN --mount=type=bind,from=npm-cache,target=/tmp/npm-cache/_cacache,rw \
    npm ci --cache /tmp/npm-cache --ignore-scripts --no-audit --no-fund --loglevel=error ${NPM_CI_FLAGS}
COPY tsconfig.json ./
COPY shared ./shared
COPY relay ./relay
COPY hosts-updater ./hosts-updater
COPY functions ./functions
COPY webhook ./webhook
COPY infra/scripts/build-bundles.mjs ./infra/scripts/
# Every npm package is inlined into the bundles: the runtime stage gets these files and nothing else.
RUN --network=none ["node", "infra/scripts/build-bundles.mjs", "/out"]

FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="tcr-assistant" \
      org.opencontainers.image.description="Always-fresh Tencent Container Registry pull credentials for every namespace and ServiceAccount" \
      org.opencontainers.image.version="${VERSION}"
WORKDIR /app
COPY --from=build --chown=0:0 --chmod=0444 /out/ /app/
ENV NODE_ENV=production
# Non-root (the chart also sets runAsNonRoot and this uid); nothing is written at run time, so the chart runs
# it with a read-only root filesystem. Signals: Node is PID 1 and each entry point handles SIGTERM/SIGINT
# itself (stop watching or working, release the Lease, exit 0); no child processes, so no reaping is needed.
USER 65532:65532
ENTRYPOINT ["node"]
CMD ["/app/functions.cjs"]
