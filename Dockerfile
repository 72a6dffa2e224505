# Production image of the Patient Service. Docker does not run on our build machines:
# this file is kept correct by reading (README, "Containers").
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# The `node` devDependency pins Node for npm scripts on older machines; the image already
# has Node 24, so production installs skip dev dependencies.
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY gen ./gen
COPY src ./src
COPY scripts/migrate.ts ./scripts/migrate.ts
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD node -e "fetch('http://127.0.0.1:8080/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "src/main.ts"]
