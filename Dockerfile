# The sluice image docker-compose.yml runs: the CLI compiled to dist/, production dependencies only.
# It needs no JDK: it points at a Kafka cluster (KAFKA_BROKERS) instead of starting a local broker.
FROM node:20-bookworm-slim AS build
WORKDIR /sluice-src
COPY . .
# npm 11 honours package.json's allowScripts (no dependency install scripts run); npm ci compiles
# dist/ (prepare) and applies patches/ (postinstall); then the dev tools go.
RUN npm install -g npm@11 && npm ci && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /opt/sluice
COPY --from=build /sluice-src /opt/sluice
ENV NODE_ENV=production SLUICE_DATA_DIR=/sluice
VOLUME /sluice
EXPOSE 9464 8081
ENTRYPOINT ["node", "--max-semi-space-size=128", "--heap-growing-percent=50", "--initial-old-space-size=512", "bin/sluice.js"]
CMD ["up", "--demo", "--topology", "examples/fraud"]
