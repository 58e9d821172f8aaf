import { z } from 'zod';
import { LabelSelector } from './label-selector.js';
import { MAX_CR_NAME_LENGTH } from './names.js';

// These rules mirror infra/crd/imagepullsecrets.yaml (OpenAPI + CEL). The e2e agreement test runs one table
// of CRs through both and requires the same verdict, so change them together.

const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SERVICE_ACCOUNT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const HOST_PORT =
  /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?([.][A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*(:[0-9]{1,5})?$/;

const isAll = (s: string) => s === '' || s === '*';

function nameList(kind: string, plural: string, valid: (n: string) => boolean, rule: string) {
  return z
    .string()
    .max(4096)
    .superRefine((s, ctx) => {
      if (s.includes(' ')) ctx.addIssue({ code: 'custom', message: 'must not contain spaces' });
      if (isAll(s)) return;
      const items = s.split(',');
      if (items.some((n) => n === '')) {
        ctx.addIssue({ code: 'custom', message: 'must not contain empty items' });
      }
      if (s !== s.toLowerCase()) ctx.addIssue({ code: 'custom', message: `must be lower case (${plural})` });
      const bad = items.filter((n) => n !== '' && !valid(n));
      if (bad.length > 0) {
        ctx.addIssue({
          code: 'custom',
          message: `contains invalid ${kind} name(s): ${bad.join(',')} (${rule})`,
        });
      }
    });
}

/** `namespaces`: "*" or blank for all, else comma-separated exact namespace names. */
export const NamespaceList = nameList(
  'namespace',
  'namespace names are lower case',
  (n) => NAMESPACE_NAME.test(n),
  'a namespace name is a DNS label of at most 63 characters',
);
/** `serviceAccounts`: "*" or blank for all, else comma-separated exact ServiceAccount names. */
export const ServiceAccountList = nameList(
  'ServiceAccount',
  'ServiceAccount names are lower case',
  (n) => n.length <= 253 && SERVICE_ACCOUNT_NAME.test(n),
  'a ServiceAccount name is a DNS subdomain of at most 253 characters',
);

export const RegistryServer = z
  .string()
  .max(253)
  .superRefine((s, ctx) => {
    const fail = (message: string) => ctx.addIssue({ code: 'custom', message });
    if (s.length === 0) return fail('must not be empty');
    if (s.includes('://')) fail('must be a host name only, without a scheme such as https://');
    if (s.includes(' ')) fail('must not contain spaces');
    if (s.includes('/')) fail('must be a host name only, without a path');
    if (!HOST_PORT.test(s)) fail('must be a registry host name with an optional :port');
    const port = /:([0-9]{1,5})$/.exec(s)?.[1];
    if (port !== undefined && (Number(port) < 1 || Number(port) > 65535))
      fail('port must be between 1 and 65535');
  });

const nonEmpty = (max: number) => z.string().max(max).min(1, 'must not be empty');

/**
 * The registry user name. The auth field is base64("username:password") and registries split it at the first
 * ':', so a ':' would make it decode to another user than this field says; control and format characters
 * (NUL, newline, U+202E) hide what the name is in logs and UIs.
 */
export const RegistryUsername = nonEmpty(1024)
  .refine((s) => !s.includes(':'), "must not contain ':' (the auth field would decode to another user name)")
  .refine(
    (s) => !/[\p{Cc}\p{Cf}]/u.test(s),
    'must not contain control or format characters (such as NUL, a newline or U+202E)',
  );

export const DockerCredentials = z.object({
  server: RegistryServer,
  /** Required unless spec.tcr issues the credential. */
  username: RegistryUsername.optional(),
  password: nonEmpty(16384).optional(),
});
export type DockerCredentials = z.infer<typeof DockerCredentials>;

/** In: and NotIn need values; Exists and DoesNotExist must have none (as the API server requires elsewhere). */
export const NamespaceSelector = LabelSelector.superRefine((sel, ctx) => {
  (sel.matchExpressions ?? []).forEach((e, i) => {
    const needsValues = e.operator === 'In' || e.operator === 'NotIn';
    const count = e.values?.length ?? 0;
    if (needsValues && count === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['matchExpressions', i, 'values'],
        message: `must be non-empty when operator is ${e.operator}`,
      });
    }
    if (!needsValues && count > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['matchExpressions', i, 'values'],
        message: `must be empty when operator is ${e.operator}`,
      });
    }
  });
});

/** Beyond the original add-on: the system issues and refreshes the token itself (CreateInstanceToken). */
export const TcrTokenSource = z.object({
  registryId: z
    .string()
    .max(64)
    .regex(/^tcr-[a-z0-9]+$/, 'must be a TCR instance id such as tcr-abc123xy'),
  region: z
    .string()
    .max(32)
    .regex(/^[a-z]+-[a-z]+(-[0-9]+)?$/, 'must be a Tencent Cloud region such as ap-guangzhou'),
  tokenType: z.enum(['temp', 'longterm']).default('longterm'),
  refreshBeforeSeconds: z.number().int().min(60).max(2_592_000).optional(),
  credentialsSecretRef: z.object({ namespace: z.string().max(63), name: z.string().max(253) }).optional(),
});
export type TcrTokenSource = z.infer<typeof TcrTokenSource>;

export const PrivateNetwork = z.object({
  enabled: z.boolean(),
  vpcId: z
    .string()
    .max(64)
    .regex(/^vpc-[a-z0-9]+$/, 'must be a VPC id such as vpc-abc123xy')
    .optional(),
});
export type PrivateNetwork = z.infer<typeof PrivateNetwork>;

const SpecFields = z.object({
  namespaces: NamespaceList.optional(),
  serviceAccounts: ServiceAccountList.optional(),
  /** Beyond the original add-on: a label selector ANDed with the `namespaces` names rule. */
  namespaceSelector: NamespaceSelector.optional(),
  docker: DockerCredentials,
  tcr: TcrTokenSource.optional(),
  privateNetwork: PrivateNetwork.optional(),
});

export const ImagePullSecretSpec = SpecFields.superRefine((spec, ctx) => {
  const fixed = spec.docker.username !== undefined || spec.docker.password !== undefined;
  if (!spec.tcr && (spec.docker.username === undefined || spec.docker.password === undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: [],
      message: 'spec.docker.username and spec.docker.password are required unless spec.tcr is set',
    });
  }
  if (spec.tcr && fixed) {
    ctx.addIssue({
      code: 'custom',
      path: [],
      message: 'spec.tcr issues the credential itself; remove spec.docker.username and spec.docker.password',
    });
  }
  if (spec.privateNetwork?.enabled && !spec.tcr) {
    ctx.addIssue({
      code: 'custom',
      path: [],
      message:
        'spec.privateNetwork needs spec.tcr (the registryId and region whose private endpoints to resolve)',
    });
  }
});
export type ImagePullSecretSpec = z.infer<typeof ImagePullSecretSpec>;

/** The parts of a CR that validation looks at: metadata.name and spec (status is ours, not the user's). */
export const ImagePullSecretResource = z.object({
  metadata: z.object({
    name: z
      .string()
      .max(
        MAX_CR_NAME_LENGTH,
        `must be at most ${MAX_CR_NAME_LENGTH} characters, so that the Secret name tcr.ips<name> stays within 253`,
      ),
  }),
  spec: ImagePullSecretSpec,
});
export type ImagePullSecretResource = z.infer<typeof ImagePullSecretResource>;

export interface FieldProblem {
  /** Dotted path as the API server names it, e.g. `spec.docker.server`. */
  field: string;
  message: string;
}

/** Validates a CR as the API server would; returns the problems, each naming its field (empty = valid). */
export function findSpecProblems(resource: unknown): FieldProblem[] {
  const result = ImagePullSecretResource.safeParse(resource);
  if (result.success) return [];
  return result.error.issues.map((issue) => ({
    field: issue.path
      .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
      .join('.')
      .replaceAll('.[', '['),
    message: issue.message,
  }));
}

/** Whether a `namespaces`/`serviceAccounts` rule matches a name ("*" or blank match everything). */
export function matchesNameRule(rule: string | undefined, name: string): boolean {
  if (rule === undefined || isAll(rule)) return true;
  return rule.split(',').includes(name);
}
