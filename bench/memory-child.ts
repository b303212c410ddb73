/**
 * One job in its own process, for the memory benchmark: prints {"maxRssMb": …, "images": …}.
 * Usage: node memory-child.js DATASET_URI OUTPUT_DIR ENDPOINT_URL
 */
import { validateConfig } from '../src/config/config.js';
import { runJob } from '../src/job.js';

const [datasetUri, outputUri, endpointUrl] = process.argv.slice(2) as [string, string, string];
const config = validateConfig({
  dataset_type: 'application/x-image',
  methods: { shap: { num_samples: 6, seed: 1, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: 6, segment_compactness: 10 } } },
  predictor: { content_type: 'application/x-npy', probability: 'prediction', label_headers: ['a', 'b', 'c'] },
  clarify_images: { endpoint_url: endpointUrl, max_concurrency: 16 },
});
const { summary } = await runJob(config, { datasetUri, outputUri });
process.stdout.write(`${JSON.stringify({ maxRssMb: process.resourceUsage().maxRSS / 1024, images: summary.images.succeeded, failed: summary.images.failed })}\n`);
