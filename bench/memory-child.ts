/**
 * One job in its own process, for the memory benchmarks: prints {"maxRssMb": …, "images": …, "failed": …}.
 * Usage: node memory-child.js DATASET_URI OUTPUT_DIR ENDPOINT_URL [CONFIG_JSON]
 * CONFIG_JSON: {"shap": {…}, "clarify_images": {…}} merged over the small-image defaults; "labels": N
 * answers N labels (the endpoint must answer as many; default 3).
 */
import { validateConfig } from '../src/config/config.js';
import { runJob } from '../src/job.js';
import { vmHwmMb } from './peak-rss.js';

const [datasetUri, outputUri, endpointUrl, extraJson] = process.argv.slice(2) as [string, string, string, string | undefined];
const extra = (extraJson ? JSON.parse(extraJson) : {}) as { shap?: Record<string, unknown>; image_config?: Record<string, unknown>; clarify_images?: Record<string, unknown>; labels?: number };
const config = validateConfig({
  dataset_type: 'application/x-image',
  methods: {
    shap: { num_samples: 6, seed: 1, ...extra.shap, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: 6, segment_compactness: 10, ...extra.image_config } },
  },
  predictor: { content_type: 'application/x-npy', probability: 'prediction', label_headers: Array.from({ length: extra.labels ?? 3 }, (_, k) => `label-${k}`) },
  clarify_images: { endpoint_url: endpointUrl, max_concurrency: 16, ...extra.clarify_images },
});
const { summary } = await runJob(config, { datasetUri, outputUri });
process.stdout.write(
  `${JSON.stringify({ maxRssMb: (await vmHwmMb(process.pid)) ?? process.resourceUsage().maxRSS / 1024, images: summary.images.succeeded, failed: summary.images.failed, failures: summary.failures.map((f) => f.message) })}\n`,
);
