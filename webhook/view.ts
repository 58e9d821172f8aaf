import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { ImagePullSecretSpec } from '../shared/contracts/image-pull-secret.js';
import { SKIP_ANNOTATION } from '../shared/contracts/labels.js';
import {
  type MatchableCr,
  type MatchableNamespace,
  toMatchableNamespace,
} from '../shared/contracts/matching.js';
import { imagePullSecretCollection, namespaceCollection } from '../shared/kube/collections.js';
import type { ListWatch } from '../shared/kube/list-watch.js';
import { type Change, ResourceWatcher, type WatchedObject } from '../shared/kube/resource-watcher.js';
import type { WebhookMetrics } from './metrics.js';

// The webhook's in-memory view of what matching looks at: every CR's rules and every namespace's labels
// (and skip annotation), fed by list+watch. Admission reads only this, never the API server.

type ViewKind = 'namespace' | 'imagepullsecret';

const digest = (value: unknown) =>
  createHash('sha1').update(JSON.stringify(value)).digest('base64url').slice(0, 16);

/** Only what matching reads: labels and the skip annotation (annotations can be large; the rest is unused). */
export function namespaceOf(obj: WatchedObject): MatchableNamespace {
  const ns = toMatchableNamespace(obj);
  const skip = ns.annotations[SKIP_ANNOTATION];
  return { ...ns, annotations: skip === undefined ? {} : { [SKIP_ANNOTATION]: skip } };
}

/** A CR's matching rules; a spec that fails validation wants nothing (as in the functions' planners). */
export function crOf(obj: WatchedObject): MatchableCr {
  const name = obj.metadata?.name ?? '';
  const deleting = obj.metadata?.deletionTimestamp !== undefined;
  const spec = ImagePullSecretSpec.safeParse(obj.spec);
  if (!spec.success) return { name, deleting, invalid: 'spec fails validation', spec: {} };
  const { namespaces, serviceAccounts, namespaceSelector } = spec.data;
  return { name, deleting, spec: { namespaces, serviceAccounts, namespaceSelector } };
}

export interface ViewOptions {
  /** List and watch (the light transport, shared/kube/kube-client.ts). */
  api: ListWatch;
  log: Logger;
  metrics: WebhookMetrics;
  watchdogSilenceMs: number;
}

export class AdmissionView {
  private readonly namespaces = new Map<string, MatchableNamespace>();
  private readonly crs = new Map<string, MatchableCr>();
  private crList: MatchableCr[] = [];
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly watchers: ResourceWatcher<ViewKind>[];

  constructor(private readonly opts: ViewOptions) {
    const common = {
      watchdogSilenceMs: opts.watchdogSilenceMs,
      onChange: (change: Change<ViewKind>) => this.apply(change),
      reportInitialList: true,
      log: opts.log,
      metrics: opts.metrics.watch,
    };
    this.watchers = [
      new ResourceWatcher<ViewKind>(
        {
          kind: 'namespace',
          keyOf: (o) => o.metadata?.name ?? '',
          fingerprintOf: (o) => digest(namespaceOf(o)),
          ...namespaceCollection(opts.api),
        },
        common,
      ),
      new ResourceWatcher<ViewKind>(
        {
          kind: 'imagepullsecret',
          keyOf: (o) => o.metadata?.name ?? '',
          fingerprintOf: (o) => digest(crOf(o)),
          ...imagePullSecretCollection(opts.api),
        },
        common,
      ),
    ];
  }

  start(): void {
    for (const w of this.watchers) w.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.watchers.map((w) => w.stop()));
    for (const resolve of [...this.waiters.values()].flatMap((s) => [...s])) resolve();
  }

  /** Every kind listed once: the view is complete (until then, admission changes nothing). */
  get synced(): boolean {
    return this.watchers.every((w) => w.isSynced);
  }

  /** The CRs, in name order (the order the functions list them in). */
  get imagePullSecrets(): readonly MatchableCr[] {
    return this.crList;
  }

  namespace(name: string): MatchableNamespace | undefined {
    return this.namespaces.get(name);
  }

  /**
   * The namespace, waiting up to `timeoutMs` if the view has not seen it yet: the controller-manager
   * creates `default` as soon as its own watch reports a new namespace, which can be before ours does.
   */
  async waitForNamespace(name: string, timeoutMs: number): Promise<MatchableNamespace | undefined> {
    const known = this.namespaces.get(name);
    if (known || timeoutMs <= 0) return known;
    let resolve = () => {};
    const seen = new Promise<void>((r) => {
      resolve = r;
    });
    const set = this.waiters.get(name) ?? new Set();
    set.add(resolve);
    this.waiters.set(name, set);
    const timer = setTimeout(resolve, timeoutMs);
    await seen;
    clearTimeout(timer);
    set.delete(resolve);
    if (set.size === 0) this.waiters.delete(name);
    return this.namespaces.get(name);
  }

  private apply(change: Change<ViewKind>): void {
    const { kind, type, key, object } = change;
    if (kind === 'namespace') {
      if (type === 'deleted' || !object) this.namespaces.delete(key);
      else {
        this.namespaces.set(key, namespaceOf(object));
        for (const resolve of this.waiters.get(key) ?? []) resolve();
      }
      this.opts.metrics.viewObjects.set({ kind }, this.namespaces.size);
      return;
    }
    if (type === 'deleted' || !object) this.crs.delete(key);
    else this.crs.set(key, crOf(object));
    this.crList = [...this.crs.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.opts.metrics.viewObjects.set({ kind }, this.crs.size);
  }
}
