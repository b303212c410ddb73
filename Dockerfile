# clarify-images as a SageMaker Processing container.
#   docker build -t clarify-images .
#   docker run clarify-images                 # the Processing contract (see README "SageMaker Processing")
#   docker run clarify-images run --help      # any other command: arguments replace CMD
# Three stages: compile, install production dependencies, then copy only what runs into a slim
# image. The bundled models (TensorFlow.js, face-api weights) are optional peer dependencies and are
# not installed: the job never uses them.
FROM node:20-slim AS build
WORKDIR /build
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --ignore-scripts
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npx tsc -p tsconfig.json

FROM node:20-slim AS deps
WORKDIR /deps
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:20-slim
ENV NODE_ENV=production \
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
WORKDIR /opt/clarify-images
# The heatmaps' labels are drawn by librsvg with the system's fonts; slim images have none.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core && rm -rf /var/lib/apt/lists/*
COPY package.json ./
COPY --from=deps /deps/node_modules ./node_modules
COPY --from=build /build/dist/src ./dist/src
COPY bin ./bin
COPY config-schemas ./config-schemas
COPY examples ./examples
# Runs as root, like SageMaker's own Processing containers: SageMaker creates the mounted
# /opt/ml/processing/output owned by root, so a non-root USER cannot write the results there
# (aws/sagemaker-python-sdk#4764). The job writes only below /opt/ml/processing (its output and a
# staging folder beside it) and /opt/ml/output.
RUN mkdir -p /opt/ml/processing/output /opt/ml/output
# With no arguments (as SageMaker Processing runs it): the Processing contract. Arguments replace CMD.
ENTRYPOINT ["node", "/opt/clarify-images/bin/clarify-images.js"]
CMD ["processing"]
