/**
 * Pre-check the endpoint: send one image exactly as the job would, show the request, the raw
 * answer, what `probability` extracted, and whether that fits the model type.
 */
import { type AnalysisConfig, DEFAULT_DATASET_URI, listingBudgetBytes } from '../config/config.js';
import { isImageKey, openDataset } from '../dataset/dataset.js';
import { ConfigError, errorMessage } from '../errors.js';
import { decodeImage, describeDecodeError } from '../image/decode.js';
import { encodeImage, encodeNpyBatch } from '../image/encode.js';
import { splitBatchAnswer } from '../predictor/batcher.js';
import { contentTypeRefusal, createInvoker, Predictor, wireBody, wireHeaders } from '../predictor/predictor.js';
import { ResponseError } from '../predictor/parse.js';
import { firstJsonValue, recogniseAnswer, type RecognisedShape } from '../predictor/recognise.js';
import { readUri } from '../storage/storage.js';
import { awsNodeNotice, type Command, EXIT_FAILURES, EXIT_OK, EXIT_USAGE, loadRunnableConfig, optionalString, printConfigError, requireString } from './command.js';

/** The config lines that read a recognised answer, as JSON a user can paste. */
function printShape(shape: RecognisedShape, config: AnalysisConfig, io: { out(text: string): void }): void {
  io.out(`Answer shape: ${shape.name}.`);
  const lines: string[] = [];
  for (const [key, value] of Object.entries(shape.predictor)) {
    if (JSON.stringify(config.predictor[key as keyof AnalysisConfig['predictor']]) !== JSON.stringify(value)) lines.push(`  "predictor.${key}": ${JSON.stringify(value)}`);
  }
  for (const [key, value] of Object.entries(shape.clarifyImages)) {
    if (JSON.stringify(config.clarify_images[key as keyof AnalysisConfig['clarify_images']]) !== JSON.stringify(value)) lines.push(`  "clarify_images.${key}": ${JSON.stringify(value)}`);
  }
  // label_headers may be any subset of the model's labels; suggest them only when none is there.
  if (shape.labels && !config.predictor.label_headers.some((h) => shape.labels?.includes(h))) {
    lines.push(`  "predictor.label_headers": ${JSON.stringify(shape.labels.slice(0, 20))}${shape.labels.length > 20 ? ` … (${shape.labels.length} labels)` : ''}`);
  }
  if (lines.length > 0) io.out(`These config lines read it:\n${lines.join('\n')}`);
}

async function firstImage(config: AnalysisConfig, datasetUri: string): Promise<{ uri: string; bytes: Buffer }> {
  const storage = await openDataset(datasetUri, { region: config.clarify_images.region }, listingBudgetBytes(config));
  for await (const object of storage.list()) {
    if (isImageKey(object.key === '' ? datasetUri : object.key)) return { uri: storage.uri(object.key), bytes: await storage.read(object.key) };
  }
  throw new ConfigError([{ path: 'dataset_uri', message: `no image under ${datasetUri}; give one with --image` }]);
}

export const precheckCommand: Command = {
  summary: 'send one image as the job would and check the answer fits the model type',
  usage: `clarify-images precheck --config FILE [--image FILE_OR_URI] [--dataset-uri URI]

  --config FILE     analysis_config.json
  --image URI       the image to send (local path or s3://bucket/key); default: the first image of the dataset
  --dataset-uri URI overrides dataset_uri when picking the first image
  -h, --help        show this help

Prints the request (endpoint, headers, payload size), the raw answer, what predictor.probability
extracted, and a verdict. Exit 0 when the answer fits the model type, 1 when it does not (or the
call failed), 2 on a config or usage error.`,
  options: { config: { type: 'string' }, image: { type: 'string' }, 'dataset-uri': { type: 'string' } },
  async run(values, io) {
    const file = requireString(values, 'config');
    const config = await loadRunnableConfig(file, io);
    if (!config) return EXIT_USAGE;
    awsNodeNotice(config, [optionalString(values, 'image'), optionalString(values, 'dataset-uri')], io);
    let source: { uri: string; bytes: Buffer };
    try {
      const image = optionalString(values, 'image');
      source = image
        ? { uri: image, bytes: await readUri(image, { region: config.clarify_images.region }) }
        : await firstImage(config, optionalString(values, 'dataset-uri') ?? config.dataset_uri ?? DEFAULT_DATASET_URI);
    } catch (error) {
      if (error instanceof ConfigError) {
        printConfigError(error, io, file);
        return EXIT_USAGE;
      }
      io.err(`cannot read the image: ${errorMessage(error)}`);
      return EXIT_USAGE;
    }
    const { predictor: p, clarify_images: ext, methods } = config;
    let rgb;
    try {
      rgb = await decodeImage(source.bytes, { maxPixels: ext.max_image_pixels });
    } catch (error) {
      io.err(`cannot decode ${source.uri}: ${describeDecodeError(error)}`);
      return EXIT_FAILURES;
    }
    const payload = await encodeImage(rgb, p.content_type, { jpegQuality: ext.jpeg_quality });
    const invoker = createInvoker(config);
    const predictor = new Predictor(config, invoker);
    io.out(`Image: ${source.uri} (${rgb.width}×${rgb.height})`);
    io.out(`Request: ${invoker.transport.description}`);
    const headers = wireHeaders(config);
    io.out(`  Content-Type: ${headers.contentType}${headers.contentType !== p.content_type ? ` (payload encoded as ${p.content_type})` : ''}`);
    io.out(`  Accept: ${headers.accept}${headers.accept !== p.accept_type ? ` (read as ${p.accept_type})` : ''}`);
    if (p.custom_attributes !== undefined) io.out(`  CustomAttributes: ${p.custom_attributes}`);
    if (p.target_model !== undefined) io.out(`  TargetModel: ${p.target_model}`);
    io.out(`  Body: ${ext.wire_encoding === 'base64' ? `${wireBody(payload, 'base64').length} bytes of base64 text (the ${payload.length}-byte ${p.content_type} payload)` : `${payload.length} bytes`}`);
    /** The explanation sends masked images as (N, H, W, 3) batches: send one of 2 and read it the same way. */
    const checkBatch = async (): Promise<number> => {
      const batch = encodeNpyBatch([rgb, rgb]);
      io.out(`Batch request, as the explanation sends masked images (batch_size ${ext.batch_size}): (2, ${rgb.height}, ${rgb.width}, 3), ${batch.length} bytes`);
      try {
        const response = await predictor.invokeRaw(batch);
        const text = Buffer.from(response.body).toString('utf8');
        io.out(`  ${text.length > 500 ? `${text.slice(0, 500)} … (${text.length - 500} more characters)` : text}`);
        const bodies = splitBatchAnswer(response.body, p.accept_type, 2);
        for (const body of bodies) predictor.interpret(body, rgb.width, rgb.height);
        io.out(`VERDICT: OK for batches too: 2 answers, each read as above.`);
        return EXIT_OK;
      } catch (error) {
        io.out(`VERDICT: the batch answer does not fit: ${errorMessage(error)}. Set clarify_images.batch_size to 1, or make the endpoint answer a list with one answer per image.`);
        return EXIT_FAILURES;
      }
    };
    try {
      const response = await predictor.invokeRaw(payload);
      const text = Buffer.from(response.body).toString('utf8');
      io.out(`Response: ${response.body.length} bytes${response.contentType ? `, Content-Type ${response.contentType}` : ''}`);
      io.out(`  ${text.length > 2000 ? `${text.slice(0, 2000)} … (${text.length - 2000} more characters)` : text}`);
      const expression = p.probability === undefined ? '(none: the whole answer)' : JSON.stringify(p.probability);
      const shape = recogniseAnswer(firstJsonValue(response.body), methods.shap.image_config.model_type);
      if (shape) printShape(shape, config, io);
      try {
        const prediction = predictor.interpret(response.body, rgb.width, rgb.height);
        io.out(`Extracted with probability ${expression}:`);
        if (prediction.kind === 'classification') {
          for (const s of prediction.scores) io.out(`  ${s.label}: ${s.score}`);
          io.out(`VERDICT: OK for ${methods.shap.image_config.model_type}: ${prediction.scores.length} scores, one per label_headers entry; predicted "${prediction.predicted.label}".`);
        } else {
          for (const d of prediction.all) io.out(`  ${d.label} (class ${d.classIndex}): ${d.score} box [${d.box.x0}, ${d.box.y0}, ${d.box.x1}, ${d.box.y1}]`);
          io.out(
            `VERDICT: OK for ${methods.shap.image_config.model_type}: ${prediction.all.length} detections, ${prediction.objects.length} at or above probability_threshold ${config.probability_threshold} would be explained.`,
          );
        }
        if (ext.batch_size > 1) return await checkBatch();
        return EXIT_OK;
      } catch (error) {
        // The lines that read a recognised shape are printed above; the verdict does not say them again.
        const cause = error instanceof Error ? error.cause : undefined;
        const hint = shape && cause instanceof ResponseError ? cause.hint : '';
        io.out(`VERDICT: the answer does not fit ${methods.shap.image_config.model_type}: ${hint ? errorMessage(error).replace(hint, '') : errorMessage(error)}`);
        return EXIT_FAILURES;
      }
    } catch (error) {
      // The refusal's advice, which the failure carries at its end, goes on its own line.
      const refused = contentTypeRefusal(error, headers.contentType);
      io.out(`VERDICT: the call failed: ${refused ? errorMessage(error).replace(`; ${refused}`, '') : errorMessage(error)}`);
      if (refused) io.out(`HINT: ${refused}.`);
      return EXIT_FAILURES;
    } finally {
      invoker.close();
    }
  },
};
