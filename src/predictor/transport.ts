/**
 * How one request reaches a model: InvokeEndpoint through the SageMaker Runtime SDK client, or
 * POST /invocations on a server speaking the SageMaker container contract.
 */
import http from 'node:http';
import https from 'node:https';
import { InvokeEndpointCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { awsRegion } from '../config/config.js';

export interface InvokeRequest {
  readonly body: Uint8Array;
  readonly contentType: string;
  readonly accept: string;
  readonly customAttributes?: string;
  readonly targetModel?: string;
}

export interface InvokeResponse {
  readonly body: Uint8Array;
  readonly contentType?: string;
}

/** A failed call, classified so the invoker knows whether to try again. */
export class EndpointError extends Error {
  readonly status: number | undefined;
  readonly code: string | undefined;
  readonly retryable: boolean;
  constructor(message: string, details: { status?: number; code?: string; retryable: boolean; cause?: unknown }) {
    super(message, { cause: details.cause });
    this.name = 'EndpointError';
    this.status = details.status;
    this.code = details.code;
    this.retryable = details.retryable;
  }
}

export interface EndpointTransport {
  /** For logs and the summary: which endpoint this is. */
  readonly description: string;
  invoke(request: InvokeRequest): Promise<InvokeResponse>;
  /**
   * A cheap liveness check before the first image, where the route has one (the container
   * contract's GET /ping). Rejects with an EndpointError when the endpoint cannot serve.
   */
  ping?(): Promise<void>;
  close(): void;
}

const RETRYABLE_CODES = new Set([
  'ThrottlingException',
  'ServiceUnavailable',
  'InternalFailure',
  'InternalDependencyException',
  'ModelNotReadyException',
  'TimeoutError',
  'RequestTimeout',
]);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/** Throttling (429), server errors (5xx) and network failures are worth retrying; 424 and other 4xx are not. */
export function isRetryable(status: number | undefined, code: string | undefined): boolean {
  if (code && (RETRYABLE_CODES.has(code) || NETWORK_CODES.has(code))) return true;
  if (status === undefined) return code === undefined; // unknown failure without a status: likely transport
  return status === 429 || status >= 500;
}

function snippet(bytes: Uint8Array, max = 200): string {
  return Buffer.from(bytes.subarray(0, max)).toString('utf8');
}

interface SdkErrorShape {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  OriginalStatusCode?: number;
  OriginalMessage?: string;
}

export class SageMakerRuntimeTransport implements EndpointTransport {
  readonly description: string;
  private readonly client: SageMakerRuntimeClient;
  private readonly deadlineMs: number;
  constructor(
    private readonly endpointName: string,
    options: { region?: string; maxSockets: number; requestTimeoutMs: number },
  ) {
    this.description = `SageMaker endpoint ${endpointName}`;
    this.deadlineMs = options.requestTimeoutMs;
    this.client = new SageMakerRuntimeClient({
      region: awsRegion(options.region),
      maxAttempts: 1, // retries are ours, with jitter and shared accounting
      requestHandler: {
        requestTimeout: options.requestTimeoutMs,
        httpsAgent: new https.Agent({ keepAlive: true, maxSockets: options.maxSockets }),
        httpAgent: new http.Agent({ keepAlive: true, maxSockets: options.maxSockets }),
      },
    });
  }

  async invoke(request: InvokeRequest): Promise<InvokeResponse> {
    // A deadline for the whole answer, not an idle timeout: a trickling endpoint cannot hold a call.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.deadlineMs);
    try {
      const response = await this.client.send(
        new InvokeEndpointCommand({
          EndpointName: this.endpointName,
          Body: request.body,
          ContentType: request.contentType,
          Accept: request.accept,
          CustomAttributes: request.customAttributes,
          TargetModel: request.targetModel,
        }),
        { abortSignal: deadline.signal },
      );
      return { body: response.Body ?? new Uint8Array(), contentType: response.ContentType };
    } catch (error) {
      if (deadline.signal.aborted) {
        throw new EndpointError(`no complete answer from ${this.endpointName} within ${this.deadlineMs} ms (clarify_images.request_timeout_ms)`, { code: 'TimeoutError', retryable: true, cause: error });
      }
      const e = error as SdkErrorShape;
      const status = e.$metadata?.httpStatusCode;
      const code = e.code ?? e.name;
      const original = e.OriginalStatusCode ? ` (model answered ${e.OriginalStatusCode}: ${e.OriginalMessage ?? ''})` : '';
      throw new EndpointError(`${code ?? 'error'}${status ? ` ${status}` : ''}: ${e.message ?? String(error)}${original}`, {
        status,
        code,
        retryable: isRetryable(status, code),
        cause: error,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.client.destroy();
  }
}

export class ContainerHttpTransport implements EndpointTransport {
  readonly description: string;
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;
  constructor(baseUrl: string, options: { maxSockets: number; requestTimeoutMs: number; maxResponseBytes?: number }) {
    const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
    this.url = new URL('invocations', base);
    this.description = `container endpoint ${this.url.href}`;
    const Agent = this.url.protocol === 'https:' ? https.Agent : http.Agent;
    this.agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets });
    this.timeoutMs = options.requestTimeoutMs;
    this.maxResponseBytes = options.maxResponseBytes ?? 16 * 1024 * 1024;
  }

  invoke(request: InvokeRequest): Promise<InvokeResponse> {
    const headers: Record<string, string | number> = {
      'Content-Type': request.contentType,
      Accept: request.accept,
      'Content-Length': request.body.length,
    };
    if (request.customAttributes !== undefined) headers['X-Amzn-SageMaker-Custom-Attributes'] = request.customAttributes;
    if (request.targetModel !== undefined) headers['X-Amzn-SageMaker-Target-Model'] = request.targetModel;
    const send = this.url.protocol === 'https:' ? https.request : http.request;
    return new Promise<InvokeResponse>((resolve, reject) => {
      let received = 0;
      const req = send(this.url, { method: 'POST', headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          // Bounded memory: an endless or huge answer is cut off, not buffered.
          if (received > this.maxResponseBytes) {
            req.destroy(Object.assign(new Error(`the answer is larger than ${this.maxResponseBytes} bytes (clarify_images.max_response_bytes)`), { code: 'ERESPONSETOOLARGE' }));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (error: NodeJS.ErrnoException) =>
          reject(new EndpointError(`response failed: ${error.message}`, { code: error.code, retryable: true, cause: error })),
        );
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            resolve({ body, contentType: res.headers['content-type'] });
          } else {
            reject(
              new EndpointError(`HTTP ${status} from ${this.url.href}: ${snippet(body)}`, {
                status,
                retryable: isRetryable(status, undefined),
              }),
            );
          }
        });
      });
      // A deadline for the whole answer, not an idle timeout: a trickling endpoint cannot hold a call.
      const deadline = setTimeout(
        () => req.destroy(Object.assign(new Error(`no complete answer within ${this.timeoutMs} ms (clarify_images.request_timeout_ms)`), { code: 'ETIMEDOUT' })),
        this.timeoutMs,
      );
      req.on('close', () => clearTimeout(deadline));
      req.on('error', (error: NodeJS.ErrnoException) =>
        reject(new EndpointError(`request to ${this.url.href} failed: ${error.message}`, { code: error.code, retryable: error.code !== 'ERESPONSETOOLARGE', cause: error })),
      );
      req.end(request.body);
    });
  }

  /** GET /ping: 200 means ready. A server without the route (404) is let through: its calls decide. */
  ping(): Promise<void> {
    const url = new URL('ping', this.url);
    const get = url.protocol === 'https:' ? https.get : http.get;
    return new Promise<void>((resolve, reject) => {
      const req = get(url, { agent: this.agent }, (res) => {
        res.resume();
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if ((status >= 200 && status < 300) || status === 404) resolve();
          else reject(new EndpointError(`GET ${url.href} answered HTTP ${status}: the model server is not ready`, { status, retryable: false }));
        });
      });
      const deadline = setTimeout(
        () => req.destroy(Object.assign(new Error(`no answer within ${this.timeoutMs} ms (clarify_images.request_timeout_ms)`), { code: 'ETIMEDOUT' })),
        this.timeoutMs,
      );
      req.on('close', () => clearTimeout(deadline));
      req.on('error', (error: NodeJS.ErrnoException) => reject(new EndpointError(`GET ${url.href} failed: ${error.message}`, { code: error.code, retryable: false, cause: error })));
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
