// Our identities' API requests as the API server counts them. apiserver_request_total carries no user, so the
// benchmark gives each of our ServiceAccounts a FlowSchema of its own: API Priority and Fairness then counts
// every request it dispatches for that identity in apiserver_flowcontrol_dispatched_requests_total{flow_schema}
// (watches included, once each). The schemas send the requests to `workload-low`, the level the built-in
// `service-accounts` schema gives them anyway, so nothing about how they are served changes. The same objects
// work on any real cluster (`kubectl apply` them and read the API server's /metrics).
//
// A verb/resource breakdown per identity comes from the API server's audit log (kube-apiserver
// --audit-policy-file/--audit-log-path, set by the benchmark's own control plane): impersonated requests carry
// the identity in `impersonatedUser`, real ServiceAccount tokens in `user`.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { FUNCTIONS_SERVICE_ACCOUNT, RELAY_SERVICE_ACCOUNT, SYSTEM_NAMESPACE } from '../infra/local/paths.js';
import { WEBHOOK_SERVICE_ACCOUNT } from '../infra/local/webhook.js';
import { applyManifests } from '../shared/kube/manifests.js';

export const IDENTITIES = {
  relay: RELAY_SERVICE_ACCOUNT,
  functions: FUNCTIONS_SERVICE_ACCOUNT,
  webhook: WEBHOOK_SERVICE_ACCOUNT,
} as const;
export type Identity = keyof typeof IDENTITIES;
export type IdentityCounts = Record<Identity, number>;

const flowSchemaName = (id: Identity) => `bench-tcr-${id}`;
const userOf = (id: Identity) => `system:serviceaccount:${SYSTEM_NAMESPACE}:${IDENTITIES[id]}`;

/** One FlowSchema per identity (precedence 1000: before `service-accounts` at 9000, after every system one). */
export function identityFlowSchemas(): KubernetesObject[] {
  return (Object.keys(IDENTITIES) as Identity[]).map(
    (id) =>
      ({
        apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
        kind: 'FlowSchema',
        metadata: { name: flowSchemaName(id) },
        spec: {
          priorityLevelConfiguration: { name: 'workload-low' },
          matchingPrecedence: 1000,
          distinguisherMethod: { type: 'ByUser' },
          rules: [
            {
              subjects: [
                {
                  kind: 'ServiceAccount',
                  serviceAccount: { namespace: SYSTEM_NAMESPACE, name: IDENTITIES[id] },
                },
              ],
              resourceRules: [
                { verbs: ['*'], apiGroups: ['*'], resources: ['*'], clusterScope: true, namespaces: ['*'] },
              ],
              nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
            },
          ],
        },
      }) as KubernetesObject,
  );
}

export async function installIdentityFlowSchemas(admin: KubeConfig): Promise<void> {
  await applyManifests(admin, identityFlowSchemas());
}

/** apiserver_flowcontrol_dispatched_requests_total of our identities' schemas. */
export function parseIdentityCounts(metrics: string): IdentityCounts {
  const counts: IdentityCounts = { relay: 0, functions: 0, webhook: 0 };
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('apiserver_flowcontrol_dispatched_requests_total{')) continue;
    const schema = /flow_schema="([^"]*)"/.exec(line)?.[1];
    for (const id of Object.keys(IDENTITIES) as Identity[])
      if (schema === flowSchemaName(id)) counts[id] += Number(line.split(' ').pop());
  }
  return counts;
}

export function diffIdentityCounts(after: IdentityCounts, before: IdentityCounts): IdentityCounts {
  return {
    relay: after.relay - before.relay,
    functions: after.functions - before.functions,
    webhook: after.webhook - before.webhook,
  };
}

export const totalOf = (c: IdentityCounts) => c.relay + c.functions + c.webhook;

/**
 * kube-apiserver flags for an audit log of every request made with system:masters credentials (the admin
 * certificate, which the local tooling uses to impersonate our ServiceAccounts), one entry per request at
 * Metadata level, and of requests made by our ServiceAccounts with tokens of their own.
 */
export function auditArgs(dir: string): { args: string[]; logFile: string } {
  const policy = path.join(dir, 'bench-audit-policy.yaml');
  const logFile = path.join(dir, 'bench-audit.log');
  writeFileSync(
    policy,
    [
      'apiVersion: audit.k8s.io/v1',
      'kind: Policy',
      'omitStages: [RequestReceived]',
      'rules:',
      '  - level: Metadata',
      '    userGroups: ["system:masters"]',
      '  - level: Metadata',
      `    users: [${(Object.keys(IDENTITIES) as Identity[]).map((id) => JSON.stringify(userOf(id))).join(', ')}]`,
      '  - level: None',
      '',
    ].join('\n'),
  );
  return {
    args: [
      `--audit-policy-file=${policy}`,
      `--audit-log-path=${logFile}`,
      '--audit-log-format=json',
      '--audit-log-maxsize=1024',
      '--audit-log-mode=batch',
      '--audit-log-batch-max-wait=1s',
    ],
    logFile,
  };
}

interface AuditEvent {
  auditID: string;
  verb: string;
  requestReceivedTimestamp: string;
  user?: { username?: string };
  impersonatedUser?: { username?: string };
  objectRef?: { resource?: string; subresource?: string };
  requestURI?: string;
}

/** The audit log's lines (none when the file is not there yet), for one or more of the readers below. */
export function readAuditLines(logFile: string): string[] {
  try {
    return readFileSync(logFile, 'utf8').split('\n');
  } catch {
    return [];
  }
}

/**
 * Our identities' requests received in [since, until) (epoch ms), by identity and "verb resource", from the
 * audit log (each request once, however many stages it logged).
 */
export function readAuditCounts(
  logFile: string,
  since: number,
  until: number,
): Record<Identity, Record<string, number>> {
  return countAuditRequests(readAuditLines(logFile), since, until);
}

/** readAuditCounts over lines already read. */
export function countAuditRequests(
  lines: Iterable<string>,
  since: number,
  until: number,
): Record<Identity, Record<string, number>> {
  const out: Record<Identity, Record<string, number>> = { relay: {}, functions: {}, webhook: {} };
  const seen = new Set<string>();
  const byUser = new Map((Object.keys(IDENTITIES) as Identity[]).map((id) => [userOf(id), id]));
  for (const line of lines) {
    let e: AuditEvent;
    try {
      e = JSON.parse(line) as AuditEvent;
    } catch {
      continue; // empty, or the line the API server is still writing
    }
    const t = Date.parse(e.requestReceivedTimestamp);
    if (t < since || t >= until || seen.has(e.auditID)) continue;
    const id = byUser.get(e.impersonatedUser?.username ?? e.user?.username ?? '');
    if (!id) continue;
    seen.add(e.auditID);
    const what = e.objectRef?.resource
      ? `${e.objectRef.resource}${e.objectRef.subresource ? `/${e.objectRef.subresource}` : ''}`
      : (e.requestURI ?? '?');
    const key = `${e.verb} ${what}`;
    out[id][key] = (out[id][key] ?? 0) + 1;
  }
  return out;
}
