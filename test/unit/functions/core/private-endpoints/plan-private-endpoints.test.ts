import { describe, expect, it } from 'vitest';
import type { CrView, InternalEndpoint } from '../../../../../functions/core/model.js';
import {
  type EndpointLookup,
  planPrivateEndpoints,
  registryKeyOf,
} from '../../../../../functions/core/private-endpoints/plan-private-endpoints.js';
import { UpdaterConfigDataSchema } from '../../../../../shared/contracts/updater-config.js';

const REGION = 'ap-guangzhou';

interface CrOptions {
  server?: string;
  registryId?: string;
  region?: string;
  enabled?: boolean;
  vpcId?: string;
  deleting?: boolean;
  invalid?: boolean;
  /** No spec.privateNetwork at all. */
  noPrivateNetwork?: boolean;
}

function cr(name: string, o: CrOptions = {}): CrView {
  return {
    name,
    uid: `uid-${name}`,
    generation: 1,
    resourceVersion: '1',
    deleting: o.deleting ?? false,
    finalizers: [],
    invalid: o.invalid ? 'spec.docker.server: must not be empty' : undefined,
    credential: undefined,
    spec: {
      docker: { server: o.server ?? `${name}.tencentcloudcr.com` },
      tcr: { registryId: o.registryId ?? 'tcr-aaa', region: o.region ?? REGION, tokenType: 'longterm' },
      privateNetwork: o.noPrivateNetwork
        ? undefined
        : { enabled: o.enabled ?? true, ...(o.vpcId ? { vpcId: o.vpcId } : {}) },
    },
    status: {},
  };
}

const ep = (
  vpcId: string,
  accessIp: string,
  status = 'Running',
  subnetId = 'subnet-1',
): InternalEndpoint => ({
  vpcId,
  subnetId,
  accessIp,
  status,
});

const ok = (...endpoints: InternalEndpoint[]): EndpointLookup => ({ ok: true, endpoints });
const lookups = (byRegistry: Record<string, EndpointLookup>) =>
  new Map(Object.entries(byRegistry).map(([id, l]) => [registryKeyOf(id, REGION), l]));

interface Row {
  title: string;
  crs: CrView[];
  lookups: Record<string, EndpointLookup>;
  previous?: { domain: string; ip: string }[];
  enabled: boolean;
  hosts: { domain: string; ip: string }[];
  skipped?: { cr: string; reason: RegExp }[];
  ignored?: number;
}

const rows: Row[] = [
  {
    title: 'no CR enables it: disabled, no hosts',
    crs: [cr('a', { enabled: false }), cr('b', { noPrivateNetwork: true })],
    lookups: {},
    enabled: false,
    hosts: [],
  },
  {
    title: 'no CR at all: disabled, no hosts (even with entries published before)',
    crs: [],
    lookups: {},
    previous: [{ domain: 'a.tencentcloudcr.com', ip: '10.0.0.1' }],
    enabled: false,
    hosts: [],
  },
  {
    title: 'one CR: the first Running endpoint, domain without the port and lower-cased',
    crs: [cr('a', { server: 'MyReg.TencentCloudCR.com:443' })],
    lookups: { 'tcr-aaa': ok(ep('vpc-2', '10.0.2.5', 'Creating'), ep('vpc-1', '10.0.1.5')) },
    enabled: true,
    hosts: [{ domain: 'myreg.tencentcloudcr.com', ip: '10.0.1.5' }],
  },
  {
    title: '"first" does not depend on the API order: endpoints are sorted by VPC, subnet, IP',
    crs: [cr('a')],
    lookups: {
      'tcr-aaa': ok(
        ep('vpc-b', '10.0.2.5'),
        ep('vpc-a', '10.0.1.9', 'Running', 'subnet-2'),
        ep('vpc-a', '10.0.1.5'),
      ),
    },
    enabled: true,
    hosts: [{ domain: 'a.tencentcloudcr.com', ip: '10.0.1.5' }],
  },
  {
    title: 'vpcId picks that VPC’s endpoint',
    crs: [cr('a', { vpcId: 'vpc-b' })],
    lookups: { 'tcr-aaa': ok(ep('vpc-a', '10.0.1.5'), ep('vpc-b', '10.0.2.5')) },
    enabled: true,
    hosts: [{ domain: 'a.tencentcloudcr.com', ip: '10.0.2.5' }],
  },
  {
    title: 'vpcId without an endpoint there: no entry, the reason names registry and VPC',
    crs: [cr('a', { vpcId: 'vpc-zzz' })],
    lookups: { 'tcr-aaa': ok(ep('vpc-a', '10.0.1.5')) },
    enabled: true,
    hosts: [],
    skipped: [{ cr: 'a', reason: /registry ap-guangzhou\/tcr-aaa has no private endpoint in vpc-zzz/ }],
  },
  {
    title: 'vpcId whose endpoint is not Running: no entry',
    crs: [cr('a', { vpcId: 'vpc-a' })],
    lookups: { 'tcr-aaa': ok(ep('vpc-a', '10.0.1.5', 'Deleting'), ep('vpc-b', '10.0.2.5')) },
    enabled: true,
    hosts: [],
    skipped: [{ cr: 'a', reason: /in vpc-a is Running \(Deleting\)/ }],
  },
  {
    title: 'a bad access IP is skipped for the next Running endpoint, and reported',
    crs: [cr('a')],
    lookups: { 'tcr-aaa': ok(ep('vpc-a', '10.0.0.300'), ep('vpc-b', 'fd00::5')) },
    enabled: true,
    hosts: [{ domain: 'a.tencentcloudcr.com', ip: 'fd00::5' }],
    ignored: 1,
  },
  {
    title: 'only bad access IPs: no entry',
    crs: [cr('a')],
    lookups: { 'tcr-aaa': ok(ep('vpc-a', ''), ep('vpc-b', '10.0.0.1\n1.2.3.4 evil.example.com')) },
    enabled: true,
    hosts: [],
    skipped: [{ cr: 'a', reason: /has a valid access IP/ }],
    ignored: 2,
  },
  {
    title: 'no endpoint at all: enabled, no hosts',
    crs: [cr('a')],
    lookups: { 'tcr-aaa': ok() },
    enabled: true,
    hosts: [],
    skipped: [{ cr: 'a', reason: /has no private endpoint$/ }],
  },
  {
    title: 'a server that is an IP literal cannot be a hosts entry',
    crs: [cr('a', { server: '10.0.0.5:5000' })],
    lookups: { 'tcr-aaa': ok(ep('vpc-a', '10.0.1.5')) },
    enabled: true,
    hosts: [],
    skipped: [{ cr: 'a', reason: /cannot be mapped in a hosts file: the top-level label/ }],
  },
  {
    title: 'deleting and invalid CRs ask for nothing',
    crs: [cr('a', { deleting: true }), cr('b', { invalid: true })],
    lookups: { 'tcr-aaa': ok(ep('vpc-a', '10.0.1.5')) },
    enabled: false,
    hosts: [],
  },
  {
    title: 'several CRs and registries: sorted by domain, one entry per domain',
    crs: [
      cr('z', { server: 'alpha.tencentcloudcr.com', registryId: 'tcr-bbb' }),
      cr('m', { server: 'beta.tencentcloudcr.com' }),
      cr('a', { server: 'beta.tencentcloudcr.com' }),
    ],
    lookups: { 'tcr-aaa': ok(ep('vpc-a', '10.0.1.5')), 'tcr-bbb': ok(ep('vpc-a', '10.0.9.9')) },
    enabled: true,
    hosts: [
      { domain: 'alpha.tencentcloudcr.com', ip: '10.0.9.9' },
      { domain: 'beta.tencentcloudcr.com', ip: '10.0.1.5' },
    ],
  },
  {
    title: 'one domain, two different IPs: the first CR by name wins, the other is reported',
    crs: [
      cr('b', { server: 'same.tencentcloudcr.com', vpcId: 'vpc-b' }),
      cr('a', { server: 'same.tencentcloudcr.com', vpcId: 'vpc-a' }),
    ],
    lookups: { 'tcr-aaa': ok(ep('vpc-a', '10.0.1.5'), ep('vpc-b', '10.0.2.5')) },
    enabled: true,
    hosts: [{ domain: 'same.tencentcloudcr.com', ip: '10.0.1.5' }],
    skipped: [{ cr: 'b', reason: /already mapped to 10\.0\.1\.5 by ImagePullSecret a/ }],
  },
  {
    title: 'a failed lookup keeps the published entry of its domain; other registries are planned anew',
    crs: [cr('a'), cr('b', { registryId: 'tcr-bbb' })],
    lookups: {
      'tcr-aaa': { ok: false, reason: 'RequestLimitExceeded' },
      'tcr-bbb': ok(ep('vpc-a', '10.0.9.9')),
    },
    previous: [
      { domain: 'a.tencentcloudcr.com', ip: '10.0.1.5' },
      { domain: 'b.tencentcloudcr.com', ip: '10.0.8.8' },
      { domain: 'gone.tencentcloudcr.com', ip: '10.0.7.7' },
    ],
    enabled: true,
    hosts: [
      { domain: 'a.tencentcloudcr.com', ip: '10.0.1.5' },
      { domain: 'b.tencentcloudcr.com', ip: '10.0.9.9' },
    ],
    skipped: [{ cr: 'a', reason: /^RequestLimitExceeded$/ }],
  },
  {
    title: 'a failed lookup without a published entry: no entry',
    crs: [cr('a')],
    lookups: {},
    enabled: true,
    hosts: [],
    skipped: [{ cr: 'a', reason: /was not looked up/ }],
  },
];

describe('planPrivateEndpoints', () => {
  it.each(rows.map((r) => [r.title, r] as const))('%s', (_title, row) => {
    const plan = planPrivateEndpoints({
      crs: row.crs,
      lookups: lookups(row.lookups),
      previous: row.previous ?? [],
    });
    expect(plan.enabled).toBe(row.enabled);
    expect(plan.hosts).toEqual(row.hosts);
    expect(plan.data).toEqual({ enabled: String(row.enabled), hosts: JSON.stringify(row.hosts) });
    // What the planner writes passes the contract's strict schema.
    expect(UpdaterConfigDataSchema.safeParse(plan.data).success).toBe(true);
    expect(plan.skipped.map((s) => s.cr)).toEqual((row.skipped ?? []).map((s) => s.cr));
    plan.skipped.forEach((s, i) => {
      expect(s.reason).toMatch(row.skipped![i]!.reason);
    });
    expect(plan.ignoredEndpoints).toHaveLength(row.ignored ?? 0);
  });

  it('is deterministic: shuffled CRs and endpoints give the same bytes', () => {
    const crs = [
      cr('c', { server: 'c.tencentcloudcr.com', registryId: 'tcr-bbb' }),
      cr('a'),
      cr('b', { vpcId: 'vpc-b' }),
    ];
    const endpoints = [ep('vpc-b', '10.0.2.5'), ep('vpc-a', '10.0.1.5'), ep('vpc-c', '10.0.3.5')];
    const first = planPrivateEndpoints({
      crs,
      lookups: lookups({ 'tcr-aaa': ok(...endpoints), 'tcr-bbb': ok(...endpoints) }),
      previous: [],
    });
    const second = planPrivateEndpoints({
      crs: [...crs].reverse(),
      lookups: lookups({
        'tcr-bbb': ok(...[...endpoints].reverse()),
        'tcr-aaa': ok(...[...endpoints].reverse()),
      }),
      previous: [],
    });
    expect(second.data).toEqual(first.data);
    expect(first.crs).toEqual(['a', 'b', 'c']);
  });
});
