/**
 * A local server speaking the SageMaker control-plane protocol (AWS JSON 1.1: POST / with
 * `X-Amz-Target: SageMaker.<Action>`), reached by the real @aws-sdk/client-sagemaker through
 * AWS_ENDPOINT_URL_SAGEMAKER. It keeps endpoint configs and endpoints with their tags, moves a new
 * endpoint Creating → InService (or Failed) after a number of DescribeEndpoint calls, refuses the
 * actions it is told the role lacks, and records every action, so tests can check that nothing is
 * left behind. The runtime (InvokeEndpoint) is the endpoint-server's; `inService` tells it which
 * endpoints may answer.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

interface Tag {
  Key: string;
  Value: string;
}

interface EndpointState {
  name: string;
  configName: string;
  status: 'Creating' | 'InService' | 'Failed' | 'Deleting';
  describes: number;
  tags: Tag[];
  created: number;
}

export interface ControlPlaneOptions {
  /** DescribeEndpoint calls answered Creating before the endpoint is InService (default 2). */
  creatingDescribes?: number;
  /** Models whose endpoints end Failed, with this reason. */
  failingModels?: Record<string, string>;
  /** Actions answered with AccessDeniedException. */
  deniedActions?: string[];
  /** Models that exist (CreateEndpointConfig of another fails as SageMaker does). */
  models?: string[];
}

export interface ControlPlane {
  readonly url: string;
  readonly actions: string[];
  readonly endpoints: Map<string, EndpointState>;
  readonly configs: Map<string, { name: string; model: string; tags: Tag[] }>;
  readonly variants: { model: string; instanceType: string; count: number; accelerator?: string }[];
  inService(name: string): boolean;
  /** Pretend an earlier run crashed: an endpoint and config that nobody deletes. */
  seedLeftover(name: string, tags: Tag[]): void;
  env(): Record<string, string>;
  stop(): Promise<void>;
}

const ARN = (kind: string, name: string): string => `arn:aws:sagemaker:us-east-1:123456789012:${kind}/${name.toLowerCase()}`;

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const actions: string[] = [];
  const endpoints = new Map<string, EndpointState>();
  const configs = new Map<string, { name: string; model: string; tags: Tag[] }>();
  const variants: ControlPlane['variants'] = [];
  const tagsByArn = (arn: string): Tag[] | undefined => {
    for (const e of endpoints.values()) if (ARN('endpoint', e.name) === arn) return e.tags;
    for (const c of configs.values()) if (ARN('endpoint-config', c.name) === arn) return c.tags;
    return undefined;
  };

  const handle = (action: string, input: Record<string, unknown>): { status: number; body: unknown } => {
    const error = (type: string, message: string, status = 400) => ({ status, body: { __type: type, message } });
    if (options.deniedActions?.includes(action)) {
      return error('AccessDeniedException', `User: arn:aws:sts::123456789012:assumed-role/ProcessingRole/job is not authorized to perform: sagemaker:${action}`);
    }
    switch (action) {
      case 'CreateEndpointConfig': {
        const name = input['EndpointConfigName'] as string;
        const variant = (input['ProductionVariants'] as Record<string, unknown>[])[0]!;
        const model = variant['ModelName'] as string;
        if (options.models && !options.models.includes(model)) return error('ValidationException', `Could not find model "${ARN('model', model)}".`);
        if (configs.has(name)) return error('ValidationException', `Cannot create already existing endpoint configuration "${ARN('endpoint-config', name)}".`);
        configs.set(name, { name, model, tags: (input['Tags'] as Tag[]) ?? [] });
        variants.push({ model, instanceType: variant['InstanceType'] as string, count: variant['InitialInstanceCount'] as number, accelerator: variant['AcceleratorType'] as string | undefined });
        return { status: 200, body: { EndpointConfigArn: ARN('endpoint-config', name) } };
      }
      case 'CreateEndpoint': {
        const name = input['EndpointName'] as string;
        const configName = input['EndpointConfigName'] as string;
        if (!configs.has(configName)) return error('ValidationException', `Could not find endpoint configuration "${ARN('endpoint-config', configName)}".`);
        if (endpoints.has(name)) return error('ValidationException', `Cannot create already existing endpoint "${ARN('endpoint', name)}".`);
        endpoints.set(name, { name, configName, status: 'Creating', describes: 0, tags: (input['Tags'] as Tag[]) ?? [], created: Date.now() / 1000 });
        return { status: 200, body: { EndpointArn: ARN('endpoint', name) } };
      }
      case 'DescribeEndpoint': {
        const e = endpoints.get(input['EndpointName'] as string);
        if (!e) return error('ValidationException', `Could not find endpoint "${ARN('endpoint', String(input['EndpointName']))}".`);
        e.describes += 1;
        const failure = options.failingModels?.[configs.get(e.configName)?.model ?? ''];
        if (e.status === 'Creating' && e.describes > (options.creatingDescribes ?? 2)) e.status = failure ? 'Failed' : 'InService';
        return {
          status: 200,
          body: {
            EndpointName: e.name,
            EndpointArn: ARN('endpoint', e.name),
            EndpointConfigName: e.configName,
            EndpointStatus: e.status,
            ...(e.status === 'Failed' ? { FailureReason: failure } : {}),
            CreationTime: e.created,
            LastModifiedTime: e.created,
          },
        };
      }
      case 'DeleteEndpoint': {
        const name = input['EndpointName'] as string;
        if (!endpoints.delete(name)) return error('ValidationException', `Could not find endpoint "${ARN('endpoint', name)}".`);
        return { status: 200, body: {} };
      }
      case 'DeleteEndpointConfig': {
        const name = input['EndpointConfigName'] as string;
        if (!configs.delete(name)) return error('ValidationException', `Could not find endpoint configuration "${ARN('endpoint-config', name)}".`);
        return { status: 200, body: {} };
      }
      case 'ListEndpoints': {
        const contains = (input['NameContains'] as string | undefined) ?? '';
        const list = [...endpoints.values()].filter((e) => e.name.includes(contains));
        return {
          status: 200,
          body: { Endpoints: list.map((e) => ({ EndpointName: e.name, EndpointArn: ARN('endpoint', e.name), EndpointStatus: e.status, CreationTime: e.created, LastModifiedTime: e.created })) },
        };
      }
      case 'ListEndpointConfigs': {
        const contains = (input['NameContains'] as string | undefined) ?? '';
        const list = [...configs.values()].filter((c) => c.name.includes(contains));
        return { status: 200, body: { EndpointConfigs: list.map((c) => ({ EndpointConfigName: c.name, EndpointConfigArn: ARN('endpoint-config', c.name), CreationTime: 0 })) } };
      }
      case 'ListTags': {
        const tags = tagsByArn(input['ResourceArn'] as string);
        if (!tags) return error('ValidationException', `Could not find resource ${String(input['ResourceArn'])}`);
        return { status: 200, body: { Tags: tags } };
      }
      default:
        return error('UnknownOperationException', `${action} is not implemented by the test control plane`);
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const action = target.startsWith('SageMaker.') ? target.slice('SageMaker.'.length) : '';
      let input: Record<string, unknown> = {};
      try {
        input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      } catch {
        // an empty or broken body answers as a validation error below
      }
      actions.push(action);
      const { status, body } = handle(action, input);
      res.writeHead(status, { 'Content-Type': 'application/x-amz-json-1.1', 'x-amzn-RequestId': `req-${actions.length}` }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    actions,
    endpoints,
    configs,
    variants,
    inService: (name) => endpoints.get(name)?.status === 'InService',
    seedLeftover(name, tags) {
      configs.set(name, { name, model: 'crashed-model', tags });
      endpoints.set(name, { name, configName: name, status: 'InService', describes: 0, tags, created: Date.now() / 1000 });
    },
    env: () => ({ AWS_ENDPOINT_URL_SAGEMAKER: url, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1', CLARIFY_IMAGES_SHADOW_POLL_MS: '20' }),
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
