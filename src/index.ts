/** Public API: the job and its stages, for embedding and tests. */
export * from './config/config.js';
export * from './errors.js';
export { runJob, type JobOptions, type JobResult } from './job.js';
export { listImages, isImageKey, type DatasetImage } from './dataset/dataset.js';
export { decodeImage } from './image/decode.js';
export { encodeImage, encodeNpyBatch } from './image/encode.js';
export { encodeNpy, decodeNpy, npyHeader } from './image/npy.js';
export { createRgbImage, asNdarray, type RgbImage } from './image/rgb.js';
export { parseClassScores, parseDetections, selectDetections, type ClassScore, type Detection, type Box } from './predictor/parse.js';
export { Predictor, createInvoker, createTransport, type Prediction } from './predictor/predictor.js';
export { EndpointInvoker, type RetryPolicy } from './predictor/invoker.js';
export { ContainerHttpTransport, SageMakerRuntimeTransport, EndpointError, type EndpointTransport } from './predictor/transport.js';
export { openStorage, createS3Client, type Storage } from './storage/storage.js';
export { parseLocation, type Location } from './storage/location.js';
