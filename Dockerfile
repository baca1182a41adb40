FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY channels ./channels
COPY workers ./workers
COPY bench ./bench
COPY config ./config
RUN npm ci --no-audit --no-fund && npm prune --omit=dev
ENV NODE_ENV=production
# src/node-flags.ts: a smaller young generation, ~14 MB less RSS per process, no CPU cost
ENV NODE_OPTIONS=--max-semi-space-size=8
EXPOSE 8080
CMD ["node", "dist/src/cli/main.js", "start"]
