// One new namespace's path on the API server's own clock, from its audit log (microsecond timestamps): the
// namespace's create, the controller-manager's `default` ServiceAccount create, our Secret's create. Each is
// timed from when the request was received to when it was answered, and each reaction from the namespace's
// create being answered to the next request being received. Pure: the benchmark and the probes feed it lines.
//
// Why: the low-load p99 sits on the controller-manager's ServiceAccount. Its create can wait 50 ms inside the
// API server: the NamespaceLifecycle admission plugin sleeps `missingNamespaceWait` (50 ms, k8s.io/apiserver
// pkg/admission/plugin/namespace/lifecycle) when a create names a namespace its own informer has not seen yet,
// which happens when the controller-manager reacts (~1 ms) before that informer does.

import { type Quantiles, quantiles } from './latency.js';

/** NamespaceLifecycle's wait for a namespace its cache has not seen (k8s.io/apiserver, missingNamespaceWait). */
export const NAMESPACE_LIFECYCLE_WAIT_MS = 50;

export interface NamespacePathSummary {
  /** Namespaces of the stream whose namespace and ServiceAccount creates were both in the log. */
  namespaces: number;
  namespaceCreate: Quantiles;
  /** Namespace create answered → the controller-manager's ServiceAccount create received. */
  controllerManagerReacts: Quantiles;
  serviceAccountCreate: Quantiles;
  /** ServiceAccount creates that took ≥ 50 ms: NamespaceLifecycle's wait (no other step of that call is that slow here). */
  serviceAccountCreatesWaited: number;
  /** Namespace create received → ServiceAccount create answered. */
  serviceAccountDone: Quantiles;
  /** The same for our Secret, when the stream's namespaces got one from us. */
  oursReact?: Quantiles;
  secretCreate?: Quantiles;
  secretDone?: Quantiles;
  /**
   * With the client's own times: create sent (client) → received (API server), converged on the API server
   * (namespace create received → the later of the ServiceAccount's and our Secret's creates answered), and
   * that moment → the client's watch saw the namespace converged. The three add up to the headline figure.
   */
  clientToServer?: Quantiles;
  convergedOnServer?: Quantiles;
  serverToObserver?: Quantiles;
}

interface Call {
  received: number;
  answered: number;
}

/** An audit timestamp (RFC 3339 with up to nanoseconds) in epoch milliseconds, keeping the microseconds. */
export function auditTimeMs(stamp: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(stamp);
  if (!m) return Number.NaN;
  return Date.parse(`${m[1]}Z`) + (m[2] ? Number(`0.${m[2]}`) * 1000 : 0);
}

/**
 * The path of every namespace in `names` (audit log lines, each a JSON event; other lines are skipped): creates
 * of the namespace, of its `default` ServiceAccount by the controller-manager (its user agent), and of the
 * Secret `secretName` (ours). Undefined when no namespace of `names` has both of its first two creates logged.
 */
export function summarizeNamespacePaths(
  lines: Iterable<string>,
  names: ReadonlySet<string>,
  secretName: string,
  clientTimes?: (ns: string) => { sentMs: number; convergedMs: number } | undefined,
): NamespacePathSummary | undefined {
  const namespaces = new Map<string, Call>();
  const serviceAccounts = new Map<string, Call>();
  const secrets = new Map<string, Call>();
  for (const line of lines) {
    let e: {
      verb?: string;
      stage?: string;
      userAgent?: string;
      objectRef?: { resource?: string; namespace?: string; name?: string };
      requestReceivedTimestamp?: string;
      stageTimestamp?: string;
    };
    try {
      e = JSON.parse(line);
    } catch {
      continue; // empty, or the line the API server is still writing
    }
    if (e.verb !== 'create' || e.stage !== 'ResponseComplete' || !e.objectRef) continue;
    const call = {
      received: auditTimeMs(e.requestReceivedTimestamp ?? ''),
      answered: auditTimeMs(e.stageTimestamp ?? ''),
    };
    const { resource, namespace, name } = e.objectRef;
    if (resource === 'namespaces' && !namespace && name && names.has(name)) namespaces.set(name, call);
    else if (!namespace || !names.has(namespace)) continue;
    else if (
      resource === 'serviceaccounts' &&
      name === 'default' &&
      e.userAgent?.startsWith('kube-controller-manager')
    )
      serviceAccounts.set(namespace, call);
    else if (resource === 'secrets' && name === secretName) secrets.set(namespace, call);
  }
  const both = [...namespaces.keys()].filter((n) => serviceAccounts.has(n));
  if (both.length === 0) return undefined;
  const ns = (n: string) => namespaces.get(n) as Call;
  const sa = (n: string) => serviceAccounts.get(n) as Call;
  const sec = (n: string) => secrets.get(n) as Call;
  const saCalls = both.map((n) => sa(n).answered - sa(n).received);
  const withSecret = both.filter((n) => secrets.has(n));
  const done = (n: string) => Math.max(sa(n).answered, sec(n).answered);
  const timed = clientTimes ? withSecret.filter((n) => clientTimes(n) !== undefined) : [];
  const client = (n: string) => clientTimes?.(n) as { sentMs: number; convergedMs: number };
  return {
    namespaces: both.length,
    namespaceCreate: quantiles(both.map((n) => ns(n).answered - ns(n).received)),
    controllerManagerReacts: quantiles(both.map((n) => sa(n).received - ns(n).answered)),
    serviceAccountCreate: quantiles(saCalls),
    serviceAccountCreatesWaited: saCalls.filter((ms) => ms >= NAMESPACE_LIFECYCLE_WAIT_MS).length,
    serviceAccountDone: quantiles(both.map((n) => sa(n).answered - ns(n).received)),
    ...(withSecret.length > 0
      ? {
          oursReact: quantiles(withSecret.map((n) => sec(n).received - ns(n).answered)),
          secretCreate: quantiles(withSecret.map((n) => sec(n).answered - sec(n).received)),
          secretDone: quantiles(withSecret.map((n) => sec(n).answered - ns(n).received)),
        }
      : {}),
    ...(timed.length > 0
      ? {
          clientToServer: quantiles(timed.map((n) => ns(n).received - client(n).sentMs)),
          convergedOnServer: quantiles(timed.map((n) => done(n) - ns(n).received)),
          serverToObserver: quantiles(timed.map((n) => client(n).convergedMs - done(n))),
        }
      : {}),
  };
}

/** One line for a results file. */
export function describeNamespacePaths(s: NamespacePathSummary): string {
  const q = (x: Quantiles) => `p50 ${x.p50Ms} / p99 ${x.p99Ms} ms`;
  return [
    `On the API server's clock (audit log, ${s.namespaces} namespaces): namespace create ${q(s.namespaceCreate)}`,
    `→ the controller-manager's \`default\` ServiceAccount create received ${q(s.controllerManagerReacts)} later`,
    `and answered after ${q(s.serviceAccountCreate)} (**${s.serviceAccountCreatesWaited} of ${s.namespaces} took ≥ ${NAMESPACE_LIFECYCLE_WAIT_MS} ms**: NamespaceLifecycle's wait for a namespace its own cache has not seen yet);`,
    `namespace create received → ServiceAccount answered ${q(s.serviceAccountDone)}${s.oursReact ? ';' : ''}`,
    ...(s.oursReact && s.secretCreate && s.secretDone
      ? [
          `our Secret's create received ${q(s.oursReact)} after the namespace's was answered, answered after ${q(s.secretCreate)}; namespace create received → our Secret answered ${q(s.secretDone)}${s.convergedOnServer ? ';' : ''}`,
        ]
      : []),
    ...(s.clientToServer && s.convergedOnServer && s.serverToObserver
      ? [
          `the headline split: create sent (client) → received (API server) ${q(s.clientToServer)}, → converged on the API server (both creates answered) ${q(s.convergedOnServer)}, → the client's watch saw it ${q(s.serverToObserver)}`,
        ]
      : []),
  ].join(' ');
}
