import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  diffIdentityCounts,
  identityFlowSchemas,
  parseIdentityCounts,
  readAuditCounts,
  totalOf,
} from '../../bench/identities.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-identities-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('our identities as the API server counts them', () => {
  it('gives each ServiceAccount a FlowSchema at the level service-accounts would give it', () => {
    const schemas = identityFlowSchemas() as unknown as {
      metadata: { name: string };
      spec: {
        priorityLevelConfiguration: { name: string };
        matchingPrecedence: number;
        rules: { subjects: { serviceAccount: { name: string; namespace: string } }[] }[];
      };
    }[];
    expect(schemas.map((s) => s.metadata.name)).toEqual([
      'bench-tcr-relay',
      'bench-tcr-functions',
      'bench-tcr-webhook',
    ]);
    for (const s of schemas) {
      expect(s.spec.priorityLevelConfiguration.name).toBe('workload-low');
      // Before the built-in service-accounts schema (9000), after the system ones (≤ 900).
      expect(s.spec.matchingPrecedence).toBeGreaterThan(900);
      expect(s.spec.matchingPrecedence).toBeLessThan(9000);
      expect(s.spec.rules[0]?.subjects[0]?.serviceAccount.namespace).toBe('tcr-assistant-system');
    }
  });

  it('sums dispatched requests per schema and ignores every other schema', () => {
    const metrics = [
      '# TYPE apiserver_flowcontrol_dispatched_requests_total counter',
      'apiserver_flowcontrol_dispatched_requests_total{flow_schema="bench-tcr-relay",priority_level="workload-low"} 120',
      'apiserver_flowcontrol_dispatched_requests_total{flow_schema="bench-tcr-functions",priority_level="workload-low"} 7',
      'apiserver_flowcontrol_dispatched_requests_total{flow_schema="service-accounts",priority_level="workload-low"} 999',
      'apiserver_flowcontrol_dispatched_requests_total{flow_schema="exempt",priority_level="exempt"} 5000',
      'apiserver_request_total{code="200",resource="leases",verb="PUT"} 60',
    ].join('\n');
    const after = parseIdentityCounts(metrics);
    expect(after).toEqual({ relay: 120, functions: 7, webhook: 0 });
    const d = diffIdentityCounts(after, { relay: 100, functions: 7, webhook: 0 });
    expect(d).toEqual({ relay: 20, functions: 0, webhook: 0 });
    expect(totalOf(d)).toBe(20);
  });

  it('reads the audit log: each request once, in the window, by identity (impersonated or not)', () => {
    const file = path.join(dir, 'audit.log');
    const ev = (id: string, stage: string, at: string, user: string, verb: string, resource: string) =>
      JSON.stringify({
        auditID: id,
        stage,
        verb,
        requestReceivedTimestamp: at,
        user: { username: 'admin' },
        impersonatedUser: { username: user },
        objectRef: { resource },
      });
    const relay = 'system:serviceaccount:tcr-assistant-system:tcr-assistant-relay';
    const worker = 'system:serviceaccount:tcr-assistant-system:tcr-assistant-functions';
    writeFileSync(
      file,
      [
        ev('a', 'ResponseComplete', '2026-11-29T09:00:01.000000Z', relay, 'get', 'leases'),
        ev('b', 'ResponseComplete', '2026-11-29T09:00:01.100000Z', relay, 'update', 'leases'),
        // A watch logs two stages: counted once.
        ev('c', 'ResponseStarted', '2026-11-29T09:00:02.000000Z', worker, 'watch', 'secrets'),
        ev('c', 'ResponseComplete', '2026-11-29T09:00:02.000000Z', worker, 'watch', 'secrets'),
        // Outside the window, and someone else's.
        ev('d', 'ResponseComplete', '2026-11-29T08:59:59.000000Z', relay, 'get', 'leases'),
        ev('e', 'ResponseComplete', '2026-11-29T09:00:03.000000Z', 'admin', 'list', 'namespaces'),
        '{"auditID":"f","stage":"Respo', // the line the API server is still writing
      ].join('\n'),
    );
    const counts = readAuditCounts(
      file,
      Date.parse('2026-11-29T09:00:00Z'),
      Date.parse('2026-11-29T09:00:10Z'),
    );
    expect(counts).toEqual({
      relay: { 'get leases': 1, 'update leases': 1 },
      functions: { 'watch secrets': 1 },
      webhook: {},
    });
  });
});
