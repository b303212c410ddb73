/**
 * Shadow endpoints, as SageMaker Clarify makes them from `predictor.model_name`: an endpoint
 * config and an endpoint named from `endpoint_name_prefix` (default `sm-clarify`), created before
 * the first image, waited for until InService (bounded, with progress), and deleted when the job
 * ends, fails or is stopped. Everything created is tagged, so a later run of the same job (same
 * output, same shard) finds and removes what a crash left behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SageMakerClient } from '@aws-sdk/client-sagemaker';
import { type AnalysisConfig, awsRegion } from '../config/config.js';
import { ConfigError, errorMessage } from '../errors.js';

export const DEFAULT_ENDPOINT_PREFIX = 'sm-clarify';
const TAG_CREATOR = 'clarify-images:created-by';
const TAG_JOB = 'clarify-images:job';

type SageMakerSdk = typeof import('@aws-sdk/client-sagemaker');
let loadedSdk: SageMakerSdk | undefined;
/** The control-plane SDK, loaded on first use: only model_name configs need it, and it costs ~0.1 s at every start. */
async function sageMakerSdk(): Promise<SageMakerSdk> {
  return (loadedSdk ??= await import('@aws-sdk/client-sagemaker'));
}

export interface ShadowEndpointOptions {
  /** Identifies this job (its output and shard) so a later run can remove what a crash left. */
  readonly jobKey: string;
  readonly region?: string;
  readonly log?: (line: string) => void;
  readonly pollIntervalMs?: number;
  readonly timeoutMs?: number;
  /** Aborted: stop waiting, delete what was created. */
  readonly signal?: AbortSignal;
  readonly client?: SageMakerClient;
}

/** A call the role may not make: names the IAM action, so the fix is one line of policy. */
export class PermissionError extends Error {
  constructor(action: string, purpose: string, message: string) {
    super(`the job's role lacks permission sagemaker:${action} (needed to ${purpose}): ${message}`);
    this.name = 'PermissionError';
  }
}

interface SdkError {
  name?: string;
  message?: string;
}

const isNotFound = (error: unknown): boolean => /could not find|not found|does not exist/i.test((error as SdkError).message ?? '');

async function call<T>(action: string, purpose: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    const e = error as SdkError;
    if (e.name === 'AccessDeniedException' || /not authorized to perform/i.test(e.message ?? '')) throw new PermissionError(action, purpose, e.message ?? String(error));
    throw error;
  }
}

/** A stable key for a job: where it writes, and which shard it is. */
export function shadowJobKey(outputUri: string, shard?: { index: number; count: number }): string {
  return createHash('sha1').update(`${outputUri}\u0000${shard ? `${shard.index}/${shard.count}` : ''}`).digest('hex').slice(0, 16);
}

/** `<prefix>-<time>-<random>`: unique, at most 63 characters, as SageMaker allows. */
export function shadowEndpointName(prefix: string, now = Date.now()): string {
  return `${prefix}-${now.toString(36)}-${randomBytes(3).toString('hex')}`.slice(0, 63);
}

export class ShadowEndpoint {
  private deleted = false;
  private constructor(
    readonly name: string,
    private readonly client: SageMakerClient,
    private readonly log: (line: string) => void,
    private readonly ownClient: boolean,
  ) {}

  /** Creates the endpoint config and endpoint from predictor.model_name and waits until InService. */
  static async create(config: AnalysisConfig, options: ShadowEndpointOptions): Promise<ShadowEndpoint> {
    const predictor = config.predictor;
    const modelName = predictor.model_name;
    if (!modelName) throw new ConfigError([{ path: 'predictor.model_name', message: 'is required to create a shadow endpoint' }]);
    if (!predictor.instance_type) throw new ConfigError([{ path: 'predictor.instance_type', message: 'is required with predictor.model_name (the shadow endpoint runs on it)' }]);
    const log = options.log ?? (() => undefined);
    const sm = await sageMakerSdk();
    const client = options.client ?? new sm.SageMakerClient({ region: awsRegion(options.region) });
    const prefix = predictor.endpoint_name_prefix ?? DEFAULT_ENDPOINT_PREFIX;
    await removeLeftovers(client, prefix, options.jobKey, log);
    const name = shadowEndpointName(prefix);
    const endpoint = new ShadowEndpoint(name, client, log, options.client === undefined);
    const tags = [
      { Key: TAG_CREATOR, Value: 'clarify-images' },
      { Key: TAG_JOB, Value: options.jobKey },
    ];
    try {
      await call('CreateEndpointConfig', `create the shadow endpoint's config for model ${modelName}`, () =>
        client.send(
          new sm.CreateEndpointConfigCommand({
            EndpointConfigName: name,
            ProductionVariants: [
              {
                VariantName: 'AllTraffic',
                ModelName: modelName,
                InitialInstanceCount: predictor.initial_instance_count ?? 1,
                InstanceType: predictor.instance_type as never,
                InitialVariantWeight: 1,
                ...(predictor.accelerator_type ? { AcceleratorType: predictor.accelerator_type as never } : {}),
              },
            ],
            Tags: tags,
          }),
        ),
      );
      await call('CreateEndpoint', `create the shadow endpoint for model ${modelName}`, () => client.send(new sm.CreateEndpointCommand({ EndpointName: name, EndpointConfigName: name, Tags: tags })));
      log(`shadow endpoint ${name}: creating from model ${modelName} (${predictor.initial_instance_count ?? 1} × ${predictor.instance_type})`);
      await endpoint.waitInService(options);
      return endpoint;
    } catch (error) {
      await endpoint.delete();
      throw error;
    }
  }

  private async waitInService(options: ShadowEndpointOptions): Promise<void> {
    const started = Date.now();
    const timeoutMs = options.timeoutMs ?? 30 * 60_000;
    const interval = options.pollIntervalMs ?? 15_000;
    let lastStatus = '';
    const sm = await sageMakerSdk();
    for (;;) {
      if (options.signal?.aborted) throw new Error(`stopped while shadow endpoint ${this.name} was being created`);
      const described = await call('DescribeEndpoint', `wait for the shadow endpoint ${this.name}`, () => this.client.send(new sm.DescribeEndpointCommand({ EndpointName: this.name })));
      const status = described.EndpointStatus ?? 'Unknown';
      const elapsed = Math.round((Date.now() - started) / 1000);
      if (status !== lastStatus || elapsed % 60 < interval / 1000) this.log(`shadow endpoint ${this.name}: ${status} (${elapsed} s)`);
      lastStatus = status;
      if (status === 'InService') return;
      if (status === 'Failed' || status === 'OutOfService' || status === 'Deleting') {
        throw new Error(`shadow endpoint ${this.name} is ${status}${described.FailureReason ? `: ${described.FailureReason}` : ''}`);
      }
      if (Date.now() - started > timeoutMs) throw new Error(`shadow endpoint ${this.name} was not InService after ${Math.round(timeoutMs / 1000)} s (last status ${status})`);
      await sleep(interval, undefined, { signal: options.signal }).catch(() => undefined);
    }
  }

  /** Deletes the endpoint and its config; safe to call more than once, and after a failed create. */
  async delete(): Promise<void> {
    if (this.deleted) return;
    this.deleted = true;
    await deleteEndpointAndConfig(this.client, this.name, this.log);
    if (this.ownClient) this.client.destroy();
  }
}

async function deleteEndpointAndConfig(client: SageMakerClient, name: string, log: (line: string) => void): Promise<void> {
  const sm = await sageMakerSdk();
  const problems: string[] = [];
  for (const [action, send] of [
    ['DeleteEndpoint', () => client.send(new sm.DeleteEndpointCommand({ EndpointName: name }))],
    ['DeleteEndpointConfig', () => client.send(new sm.DeleteEndpointConfigCommand({ EndpointConfigName: name }))],
  ] as const) {
    try {
      await call(action, `delete the shadow endpoint ${name}`, send);
    } catch (error) {
      if (!isNotFound(error)) problems.push(errorMessage(error));
    }
  }
  if (problems.length > 0) log(`shadow endpoint ${name}: could not delete everything (${problems.join('; ')}); a later run of this job removes it`);
  else log(`shadow endpoint ${name}: deleted`);
}

/** Endpoints (and endpoint configs) this job created in an earlier run that did not get to delete them (a crash, a second signal). */
async function removeLeftovers(client: SageMakerClient, prefix: string, jobKey: string, log: (line: string) => void): Promise<void> {
  const sm = await sageMakerSdk();
  const purpose = 'look for shadow endpoints an earlier run left behind';
  const ours = async (arn: string | undefined): Promise<boolean> => {
    if (!arn) return false;
    const tags = await call('ListTags', purpose, () => client.send(new sm.ListTagsCommand({ ResourceArn: arn })));
    const tag = (key: string): string | undefined => tags.Tags?.find((t) => t.Key === key)?.Value;
    return tag(TAG_CREATOR) === 'clarify-images' && tag(TAG_JOB) === jobKey;
  };
  const leftovers = new Set<string>();
  let token: string | undefined;
  do {
    const page = await call('ListEndpoints', purpose, () => client.send(new sm.ListEndpointsCommand({ NameContains: prefix, NextToken: token })));
    for (const e of page.Endpoints ?? []) if (e.EndpointName?.startsWith(`${prefix}-`) && (await ours(e.EndpointArn))) leftovers.add(e.EndpointName);
    token = page.NextToken;
  } while (token);
  // A crash between creating the config and the endpoint leaves a config alone.
  do {
    const page = await call('ListEndpointConfigs', purpose, () => client.send(new sm.ListEndpointConfigsCommand({ NameContains: prefix, NextToken: token })));
    for (const c of page.EndpointConfigs ?? []) if (c.EndpointConfigName?.startsWith(`${prefix}-`) && (await ours(c.EndpointConfigArn))) leftovers.add(c.EndpointConfigName);
    token = page.NextToken;
  } while (token);
  for (const name of leftovers) {
    log(`shadow endpoint ${name}: left behind by an earlier run of this job; deleting it`);
    await deleteEndpointAndConfig(client, name, log);
  }
}
