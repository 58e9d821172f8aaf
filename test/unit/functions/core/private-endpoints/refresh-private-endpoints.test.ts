// The private-endpoint refresh against in-memory ports: zero writes when converged, never a foreign
// ConfigMap, one failing registry neither blocks the others nor drops its published entry, API keys from
// the right place and never in anything written, logged or thrown.

import { Writable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import type {
  ConfigMapView,
  CrView,
  InternalEndpoint,
  TencentCredential,
} from '../../../../../functions/core/model.js';
import type { PrivateEndpointsDeps, SystemConfigMaps, TcrApi } from '../../../../../functions/core/ports.js';
import { refreshPrivateEndpoints } from '../../../../../functions/core/private-endpoints/refresh-private-endpoints.js';
import { RetryableError, TerminalError } from '../../../../../shared/errors.js';
import { createLogger } from '../../../../../shared/logging.js';

const SECRET_KEY = 'Unit-Secret-Key-Never-Shown-91c2';
const ENV_KEY = 'Env-Secret-Key-Never-Shown-44ab';
const REGION = 'ap-guangzhou';
const NS = 'tcr-assistant-system';

function cr(
  name: string,
  o: {
    registryId?: string;
    enabled?: boolean;
    vpcId?: string;
    ref?: { namespace: string; name: string };
  } = {},
): CrView {
  return {
    name,
    uid: `uid-${name}`,
    generation: 1,
    resourceVersion: '1',
    deleting: false,
    finalizers: [],
    credential: undefined,
    spec: {
      docker: { server: `${name}.tencentcloudcr.com` },
      tcr: {
        registryId: o.registryId ?? 'tcr-aaa',
        region: REGION,
        tokenType: 'longterm',
        ...(o.ref ? { credentialsSecretRef: o.ref } : {}),
      },
      privateNetwork: { enabled: o.enabled ?? true, ...(o.vpcId ? { vpcId: o.vpcId } : {}) },
    },
    status: {},
  };
}

class FakeConfigMaps implements SystemConfigMaps {
  stored: ConfigMapView | undefined;
  writes = 0;
  private rv = 1;

  async getConfigMap(name: string) {
    return this.stored?.name === name ? structuredClone(this.stored) : undefined;
  }
  async createConfigMap(cm: Omit<ConfigMapView, 'resourceVersion'>) {
    this.writes += 1;
    if (this.stored) return 'exists' as const;
    this.stored = { ...structuredClone(cm), resourceVersion: String(++this.rv) };
    return 'created' as const;
  }
  async replaceConfigMap(cm: ConfigMapView) {
    this.writes += 1;
    if (cm.resourceVersion !== this.stored?.resourceVersion)
      throw new RetryableError('update configmaps: HTTP 409');
    this.stored = { ...structuredClone(cm), resourceVersion: String(++this.rv) };
  }
}

class FakeTcr implements Pick<TcrApi, 'describeInternalEndpoints'> {
  endpoints = new Map<string, InternalEndpoint[]>();
  failures = new Map<string, Error>();
  calls: { registryId: string; credential: TencentCredential }[] = [];
  async describeInternalEndpoints(input: {
    registryId: string;
    region: string;
    credential: TencentCredential;
  }) {
    this.calls.push({ registryId: input.registryId, credential: input.credential });
    const failure = this.failures.get(input.registryId);
    if (failure) throw failure;
    return this.endpoints.get(input.registryId) ?? [];
  }
}

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void) {
    this.text += chunk.toString();
    done();
  }
}

let crs: CrView[];
let configMaps: FakeConfigMaps;
let tcr: FakeTcr;
let secrets: Map<string, Record<string, string>>;
let logs: Capture;
let deps: PrivateEndpointsDeps;

const running = (vpcId: string, accessIp: string): InternalEndpoint => ({
  vpcId,
  subnetId: 'subnet-1',
  accessIp,
  status: 'Running',
});
const hostsOf = () => JSON.parse(configMaps.stored?.data.hosts ?? '[]');

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a failure');
}

beforeEach(() => {
  crs = [];
  configMaps = new FakeConfigMaps();
  tcr = new FakeTcr();
  tcr.endpoints.set('tcr-aaa', [running('vpc-a', '10.0.1.5')]);
  tcr.endpoints.set('tcr-bbb', [running('vpc-a', '10.0.2.5')]);
  secrets = new Map([[`${NS}/tcr-key`, { SecretId: 'AKIDUNIT', SecretKey: SECRET_KEY }]]);
  logs = new Capture();
  deps = {
    cluster: { clusterId: 'test', listImagePullSecrets: async () => structuredClone(crs) },
    configMaps,
    secrets: { readSecretData: async (ns, name) => secrets.get(`${ns}/${name}`) },
    tcr,
    defaultCredential: { secretId: 'AKIDENV', secretKey: ENV_KEY },
    log: createLogger('functions', 'debug', logs),
  };
});

describe('refreshPrivateEndpoints', () => {
  it('creates the ConfigMap with our label, then makes zero writes while nothing changes', async () => {
    crs = [cr('a', { ref: { namespace: NS, name: 'tcr-key' } })];
    const first = await refreshPrivateEndpoints(deps);
    expect(first.actions).toEqual([
      {
        verb: 'created',
        object: 'ConfigMap tcr-assistant-system/updater-config',
        detail: 'enabled=true, 1 host(s)',
      },
    ]);
    expect(first.crs).toEqual(['a']);
    expect(configMaps.stored?.labels).toEqual({ 'app.kubernetes.io/managed-by': 'tcr-assistant' });
    expect(configMaps.stored?.data).toEqual({
      enabled: 'true',
      hosts: '[{"domain":"a.tencentcloudcr.com","ip":"10.0.1.5"}]',
    });
    // The Secret's key was used, not the environment's.
    expect(tcr.calls[0]?.credential).toEqual({ secretId: 'AKIDUNIT', secretKey: SECRET_KEY });

    const second = await refreshPrivateEndpoints(deps);
    expect(second.actions.map((a) => a.verb)).toEqual(['noop']);
    expect(configMaps.writes).toBe(1);
  });

  it('updates on change, keeping labels and annotations others added', async () => {
    crs = [cr('a')];
    await refreshPrivateEndpoints(deps);
    configMaps.stored!.annotations = { note: 'kept' };
    configMaps.stored!.labels.team = 'infra';
    tcr.endpoints.set('tcr-aaa', [running('vpc-a', '10.0.1.6')]);
    const result = await refreshPrivateEndpoints(deps);
    expect(result.actions[0]?.verb).toBe('updated');
    expect(hostsOf()).toEqual([{ domain: 'a.tencentcloudcr.com', ip: '10.0.1.6' }]);
    expect(configMaps.stored?.annotations).toEqual({ note: 'kept' });
    expect(configMaps.stored?.labels.team).toBe('infra');
  });

  it('disables the map when no CR asks for it any more', async () => {
    crs = [cr('a')];
    await refreshPrivateEndpoints(deps);
    crs = [cr('a', { enabled: false })];
    const result = await refreshPrivateEndpoints(deps);
    expect(result.actions[0]).toMatchObject({ verb: 'updated', detail: 'enabled=false, 0 host(s)' });
    expect(configMaps.stored?.data).toEqual({ enabled: 'false', hosts: '[]' });
    expect(tcr.calls).toHaveLength(1);
  });

  it('never touches a ConfigMap of that name without our label', async () => {
    configMaps.stored = {
      name: 'updater-config',
      resourceVersion: '1',
      labels: {},
      annotations: {},
      data: { enabled: 'true', hosts: '[]' },
    };
    crs = [cr('a')];
    const error = await failure(refreshPrivateEndpoints(deps));
    expect(error).toBeInstanceOf(TerminalError);
    expect(error.message).toMatch(/exists but is not ours .*app\.kubernetes\.io\/managed-by=tcr-assistant/);
    expect(configMaps.writes).toBe(0);
    expect(tcr.calls).toHaveLength(0);
  });

  it('re-plans (retryable) when the ConfigMap is created by someone else between read and create', async () => {
    crs = [cr('a')];
    await refreshPrivateEndpoints(deps);
    const get = configMaps.getConfigMap.bind(configMaps);
    configMaps.getConfigMap = async () => undefined;
    const error = await failure(refreshPrivateEndpoints(deps));
    expect(error).toBeInstanceOf(RetryableError);
    expect(error.message).toMatch(/created concurrently; re-planning/);
    configMaps.getConfigMap = get;
    expect((await refreshPrivateEndpoints(deps)).actions[0]?.verb).toBe('noop');
  });

  it('looks each registry up once, with the key of the first CR naming it', async () => {
    crs = [cr('b', { ref: { namespace: NS, name: 'tcr-key' } }), cr('a'), cr('c', { registryId: 'tcr-bbb' })];
    await refreshPrivateEndpoints(deps);
    expect(tcr.calls.map((c) => [c.registryId, c.credential.secretId]).sort()).toEqual([
      ['tcr-aaa', 'AKIDENV'],
      ['tcr-bbb', 'AKIDENV'],
    ]);
    expect(hostsOf().map((h: { domain: string }) => h.domain)).toEqual([
      'a.tencentcloudcr.com',
      'b.tencentcloudcr.com',
      'c.tencentcloudcr.com',
    ]);
  });

  it('keeps the published entry of a registry whose lookup fails, writes the rest, then fails retryably', async () => {
    crs = [cr('a'), cr('b', { registryId: 'tcr-bbb' })];
    await refreshPrivateEndpoints(deps);
    tcr.failures.set(
      'tcr-aaa',
      new RetryableError('DescribeInternalEndpoints of registry tcr-aaa: RequestLimitExceeded'),
    );
    tcr.endpoints.set('tcr-bbb', [running('vpc-a', '10.0.2.9')]);
    const error = await failure(refreshPrivateEndpoints(deps));
    expect(error).toBeInstanceOf(RetryableError);
    expect(error.message).toMatch(
      /1 registry\(ies\) could not be looked up .*ImagePullSecret a \(API key from environment\): .*RequestLimitExceeded/,
    );
    expect(hostsOf()).toEqual([
      { domain: 'a.tencentcloudcr.com', ip: '10.0.1.5' },
      { domain: 'b.tencentcloudcr.com', ip: '10.0.2.9' },
    ]);
  });

  it('fails terminally, naming the CR and the Secret, when the key is wrong, and never shows the key', async () => {
    crs = [cr('a', { ref: { namespace: NS, name: 'tcr-key' } })];
    tcr.failures.set(
      'tcr-aaa',
      new TerminalError(
        `DescribeInternalEndpoints of registry tcr-aaa in ${REGION}: AuthFailure.SignatureFailure`,
      ),
    );
    const error = await failure(refreshPrivateEndpoints(deps));
    expect(error).toBeInstanceOf(TerminalError);
    expect(error.message).toContain(
      'ImagePullSecret a (API key from Secret tcr-assistant-system/tcr-key): DescribeInternalEndpoints of registry tcr-aaa in ap-guangzhou: AuthFailure.SignatureFailure',
    );
    // Enabled with no entry yet: the ConfigMap still says so (nodes keep public resolution).
    expect(configMaps.stored?.data).toEqual({ enabled: 'true', hosts: '[]' });
    for (const text of [error.message, logs.text, JSON.stringify(configMaps.stored)]) {
      expect(text).not.toContain(SECRET_KEY);
      expect(text).not.toContain(ENV_KEY);
    }
  });

  it.each([
    [
      'a Secret in another namespace',
      { namespace: 'team-a', name: 'tcr-key' },
      /names Secret team-a\/tcr-key: the Secret must be in namespace tcr-assistant-system/,
    ],
    [
      'a missing Secret',
      { namespace: NS, name: 'nope' },
      /Secret tcr-assistant-system\/nope .* does not exist/,
    ],
    [
      'a Secret without SecretKey',
      { namespace: NS, name: 'half' },
      /needs the keys SecretId and SecretKey \(SecretKey: /,
    ],
  ])('refuses %s with a clear, terminal error and no API call', async (_what, ref, message) => {
    secrets.set(`${NS}/half`, { SecretId: 'AKIDHALF' });
    crs = [cr('a', { ref })];
    const error = await failure(refreshPrivateEndpoints(deps));
    expect(error).toBeInstanceOf(TerminalError);
    expect(error.message).toMatch(message);
    expect(tcr.calls).toHaveLength(0);
  });

  it('without any key configured, says where to put one', async () => {
    deps.defaultCredential = undefined;
    crs = [cr('a')];
    const error = await failure(refreshPrivateEndpoints(deps));
    expect(error).toBeInstanceOf(TerminalError);
    expect(error.message).toMatch(
      /set spec\.tcr\.credentialsSecretRef, or TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY/,
    );
  });

  it('reports CRs that got no entry as skipped actions', async () => {
    crs = [cr('a', { vpcId: 'vpc-zzz' })];
    const result = await refreshPrivateEndpoints(deps);
    expect(result.actions).toContainEqual({
      verb: 'skipped',
      object: 'ImagePullSecret a',
      detail: 'registry ap-guangzhou/tcr-aaa has no private endpoint in vpc-zzz',
    });
  });
});
