/** Config objects for tests, in the shape users write them. */
import { writeFile } from 'node:fs/promises';
import type { AnalysisConfig } from '../../src/config/config.js';
import { validateConfig } from '../../src/config/config.js';

export type RawConfig = Record<string, unknown>;

/** What the SageMaker Python SDK writes for an image classification explainability job. */
export function sdkClassificationConfig(): RawConfig {
  return {
    dataset_type: 'application/x-image',
    probability_threshold: 0.5,
    methods: {
      shap: {
        use_logit: false,
        save_local_shap_values: true,
        num_samples: 500,
        image_config: {
          model_type: 'IMAGE_CLASSIFICATION',
          num_segments: 20,
          segment_compactness: 5,
          feature_extraction_method: 'segmentation',
        },
      },
      report: { name: 'report', title: 'Analysis Report' },
    },
    predictor: {
      model_name: 'my-model',
      instance_type: 'ml.m5.xlarge',
      initial_instance_count: 1,
      content_type: 'image/jpeg',
      label_headers: ['red', 'green', 'blue'],
    },
  };
}

export function classificationConfig(endpointUrl: string, overrides: { predictor?: RawConfig; clarify_images?: RawConfig } = {}): AnalysisConfig {
  return validateConfig({
    dataset_type: 'application/x-image',
    methods: { shap: { image_config: { model_type: 'IMAGE_CLASSIFICATION' } } },
    predictor: { label_headers: ['red', 'green', 'blue'], content_type: 'image/png', ...overrides.predictor },
    clarify_images: { endpoint_url: endpointUrl, retry_base_delay_ms: 5, retry_max_delay_ms: 50, max_concurrency: 4, ...overrides.clarify_images },
  });
}

/**
 * Writes a config file for the test endpoint's colour-share classifier (labels red, green, blue;
 * PNG payloads; the answer's `prediction` list): the CLI tests' common case.
 */
export async function writeColourShareConfig(
  file: string,
  options: { samples?: number; segments?: number; shap?: RawConfig; predictor?: RawConfig; clarify_images?: RawConfig } = {},
): Promise<string> {
  await writeFile(
    file,
    JSON.stringify({
      dataset_type: 'application/x-image',
      methods: { shap: { num_samples: options.samples ?? 6, ...options.shap, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: options.segments ?? 4 } } },
      predictor: { content_type: 'image/png', probability: 'prediction', label_headers: ['red', 'green', 'blue'], ...options.predictor },
      clarify_images: { ...options.clarify_images },
    }),
  );
  return file;
}
