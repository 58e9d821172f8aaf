import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { z } from 'zod';
import { GROUP, PLURAL, VERSION } from '../shared/names.js';
import type { Enqueue } from '../shared/queue.js';
import { jobsFor, type WatchedObject } from './map-events.js';
import type { RelayMetrics } from './metrics.js';
import { Publisher } from './publisher.js';
import { type Change, type ListPage, type ResourceSource, ResourceWatcher } from './resource-watcher.js';

export interface RelayOptions {
  kc: KubeConfig;
  clusterId: string;
  queue: Queue;
  log: Logger;
  metrics: RelayMetrics;
  resyncPeriodMs: number;
  watchdogSilenceMs: number;
  maxDirtyKeys: number;
  flushIntervalMs: number;
}

const PAGE = 500;
const RawList = z.object({
  items: z.array(z.unknown()),
  metadata: z.object({ resourceVersion: z.string(), continue: z.string().optional() }),
});

/** The three collections the relay watches, read with the relay's own (read-only) identity. */
export function createSources(kc: KubeConfig): ResourceSource[] {
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const typed = (list: {
    items: unknown[];
    metadata?: { resourceVersion?: string; _continue?: string };
  }): ListPage => ({
    items: list.items as WatchedObject[],
    resourceVersion: list.metadata?.resourceVersion ?? '',
    continueToken: list.metadata?._continue,
  });
  return [
    {
      kind: 'namespace',
      watchPath: '/api/v1/namespaces',
      listPage: async (token) => typed(await core.listNamespace({ limit: PAGE, _continue: token })),
    },
    {
      kind: 'serviceaccount',
      watchPath: '/api/v1/serviceaccounts',
      listPage: async (token) =>
        typed(await core.listServiceAccountForAllNamespaces({ limit: PAGE, _continue: token })),
    },
    {
      kind: 'imagepullsecret',
      watchPath: `/apis/${GROUP}/${VERSION}/${PLURAL}`,
      listPage: async (token) => {
        const list = RawList.parse(
          await custom.listClusterCustomObject({
            group: GROUP,
            version: VERSION,
            plural: PLURAL,
            limit: PAGE,
            _continue: token,
          }),
        );
        return {
          items: list.items as WatchedObject[],
          resourceVersion: list.metadata.resourceVersion,
          continueToken: list.metadata.continue,
        };
      },
    },
  ];
}

/**
 * Watches Namespaces, ServiceAccounts and ImagePullSecrets and turns their changes into level-triggered
 * jobs (keys only). Runs only while this replica leads.
 */
export class Relay {
  readonly watchers: ResourceWatcher[];
  readonly publisher: Publisher;
  private resyncTimer: NodeJS.Timeout | undefined;
  private initialResyncDone = false;

  constructor(
    private readonly opts: RelayOptions,
    sources: ResourceSource[] = createSources(opts.kc),
  ) {
    this.publisher = new Publisher(opts.queue, opts.metrics, opts.log, {
      maxDirty: opts.maxDirtyKeys,
      flushIntervalMs: opts.flushIntervalMs,
      onRecovered: () => this.resync('resync'),
    });
    this.watchers = sources.map(
      (source) =>
        new ResourceWatcher(opts.kc, source, {
          watchdogSilenceMs: opts.watchdogSilenceMs,
          onChange: (change) => this.onChange(change),
          onSynced: () => this.onSynced(),
          log: opts.log,
          metrics: opts.metrics,
        }),
    );
  }

  start(): void {
    this.publisher.start();
    for (const w of this.watchers) w.start();
    this.resyncTimer = setInterval(() => this.resync('resync'), this.opts.resyncPeriodMs);
  }

  /** Stops watching, then hands over what is still pending. */
  async stop(): Promise<void> {
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    await Promise.all(this.watchers.map((w) => w.stop()));
    await this.publisher.close();
  }

  /** Ready: every kind listed once, and Redis takes our jobs. */
  get ready(): boolean {
    return this.watchers.every((w) => w.isSynced) && this.publisher.healthy;
  }

  /**
   * One job per CR: its fan-out compares every namespace with what the CR wants and enqueues only those that
   * differ, so a full resync costs three list calls per CR rather than a job per object.
   */
  resync(trigger: Enqueue['trigger']): void {
    const at = Date.now();
    const crs = this.crNames();
    this.opts.log.info({ crs: crs.length, trigger }, 'resync');
    this.publisher.add(
      crs.map((name) => ({
        key: { cluster: this.opts.clusterId, kind: 'imagepullsecret', name },
        trigger,
        at,
      })),
    );
  }

  private crNames(): string[] {
    return this.watchers.find((w) => w.kind === 'imagepullsecret')?.keys ?? [];
  }

  private onSynced(): void {
    // After a (re)start nothing tells us what changed while no one was watching: resync once all kinds are known.
    if (!this.initialResyncDone && this.watchers.every((w) => w.isSynced)) {
      this.initialResyncDone = true;
      this.resync('relist');
    }
  }

  private onChange(change: Change): void {
    const ctx = { cluster: this.opts.clusterId, crNames: () => this.crNames(), at: Date.now() };
    this.publisher.add(
      jobsFor(change.kind, change.type, change.key, ctx, change.viaRelist ? 'relist' : change.type),
    );
  }
}
