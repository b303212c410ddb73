# SageMaker Processing container for clarify-images.
# Stub until the container issue: it builds the CLI; the Processing contract (reading
# /opt/ml/processing/input/config/analysis_config.json with no arguments) comes with that issue.
FROM node:20-slim
WORKDIR /opt/clarify-images
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY bin ./bin
COPY config-schemas ./config-schemas
RUN npm ci --ignore-scripts && npx tsc -p tsconfig.json && npm prune --omit=dev
USER node
ENTRYPOINT ["node", "/opt/clarify-images/bin/clarify-images.js"]
CMD ["--help"]
