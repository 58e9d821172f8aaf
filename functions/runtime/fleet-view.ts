import { startDeadline } from '../../shared/deadline.js';
import { describeError } from '../../shared/errors.js';
import { renderColumns } from '../../shared/kube/table.js';
import { withTimeout } from '../../shared/timeout.js';
import { tokenKeyOf } from '../core/registry-tokens/token-store.js';
import { scrubMessage } from '../core/scrub.js';
import type { FunctionsRuntime } from './build-runtime.js';

// `functions fleet`: per cluster and CR, desired/succeeded, the token's expiry and the last error; per token,
// when it was issued and what waits to be revoked. Read-only; never shows a token.

export interface FleetCrRow {
  name: string;
  desired: number | undefined;
  succeeded: number | undefined;
  ready: string;
  /** `<registryId>.<tokenType>` for spec.tcr CRs. */
  token?: string | undefined;
  tokenExpires?: string | undefined;
  lastError?: string | undefined;
}

export interface FleetTokenRow {
  key: string;
  issued: string;
  expires: string;
  tokenId?: string | undefined;
  retiredPending: number;
}

export interface FleetClusterRow {
  cluster: string;
  reachable: boolean;
  error?: string | undefined;
  crs: FleetCrRow[];
  tokens: FleetTokenRow[];
}

export interface FleetView {
  fleet: string;
  clusters: FleetClusterRow[];
  /** The token refresher's last outcome per token key. */
  tokenReports: Record<string, { error?: string; at: string }>;
}

const when = (ms: number) => (ms === 0 ? 'never' : new Date(ms).toISOString());

export async function describeFleet(rt: FunctionsRuntime, timeoutMs = 10_000): Promise<FleetView> {
  const tokenReports = await rt.tokenReports.all();
  const clusters = await Promise.all(
    rt.fleet.clusters.map(async ({ id }): Promise<FleetClusterRow> => {
      // The cluster's reads carry the deadline (their requests are cancelled), and are cut off at it.
      const deadline = startDeadline(timeoutMs, `cluster ${id}`);
      try {
        const read = (async () => {
          const { cluster, system } = await rt.connect(id);
          return Promise.all([
            cluster.withSignal(deadline.signal).listImagePullSecrets(),
            system.withSignal(deadline.signal).listTokens(),
          ]);
        })();
        const [crs, tokens] = await withTimeout(
          read,
          timeoutMs,
          () => new Error(`no answer within ${timeoutMs} ms`),
        );
        const byKey = new Map(tokens.map((t) => [t.key, t]));
        return {
          cluster: id,
          reachable: true,
          crs: crs.map((cr) => {
            const ready = cr.status.conditions?.find((c) => c.type === 'Ready');
            const key = cr.spec.tcr && tokenKeyOf(cr.spec.tcr.registryId, cr.spec.tcr.tokenType);
            const token = key ? byKey.get(key) : undefined;
            const failing = cr.status.failedNamespaces?.[0];
            return {
              name: cr.name,
              desired: cr.status.secretsDesired,
              succeeded: cr.status.secretsSuccess,
              ready: ready ? `${ready.status} ${ready.reason}` : 'Unknown',
              token: key,
              tokenExpires: key ? (token ? when(token.expiresAt) : 'not issued') : undefined,
              lastError:
                cr.invalid ??
                (key ? tokenReports[key]?.error : undefined) ??
                (failing ? `${failing.namespace}: ${failing.reason}: ${failing.message}` : undefined) ??
                (ready?.status === 'False' ? ready.message : undefined),
            };
          }),
          tokens: tokens.map((t) => ({
            key: t.key,
            issued: when(t.issuedAt),
            expires: when(t.expiresAt),
            tokenId: t.tokenId,
            retiredPending: t.retired.length,
          })),
        };
      } catch (error) {
        return {
          cluster: id,
          reachable: false,
          error: scrubMessage(describeError(error)),
          crs: [],
          tokens: [],
        };
      } finally {
        deadline.dispose();
      }
    }),
  );
  return { fleet: rt.fleet.name, clusters, tokenReports };
}

export function formatFleet(view: FleetView): string {
  const rows = [['CLUSTER', 'CR', 'DESIRED', 'SUCCEEDED', 'READY', 'TOKEN', 'TOKEN EXPIRES', 'LAST ERROR']];
  for (const c of view.clusters) {
    if (!c.reachable) {
      rows.push([c.cluster, '-', '-', '-', 'Unreachable', '-', '-', c.error ?? '']);
      continue;
    }
    if (c.crs.length === 0) rows.push([c.cluster, '(none)', '-', '-', '-', '-', '-', '']);
    for (const cr of c.crs) {
      rows.push([
        c.cluster,
        cr.name,
        String(cr.desired ?? '-'),
        String(cr.succeeded ?? '-'),
        cr.ready,
        cr.token ?? '-',
        cr.tokenExpires ?? '-',
        cr.lastError ?? '',
      ]);
    }
  }
  const tokens = [['CLUSTER', 'TOKEN', 'ISSUED', 'EXPIRES', 'TOKEN ID', 'RETIRED PENDING', 'LAST REFRESH']];
  for (const c of view.clusters) {
    for (const t of c.tokens) {
      const report = view.tokenReports[t.key];
      tokens.push([
        c.cluster,
        t.key,
        t.issued,
        t.expires,
        t.tokenId ?? '-',
        String(t.retiredPending),
        report ? `${report.at}${report.error ? ` ERROR ${report.error}` : ' ok'}` : '-',
      ]);
    }
  }
  return `fleet ${view.fleet}\n\n${renderColumns(rows)}\n\n${tokens.length > 1 ? renderColumns(tokens) : '(no tokens stored)'}\n`;
}
