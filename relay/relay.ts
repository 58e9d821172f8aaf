import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { Enqueue } from '../shared/contracts/jobs.js';
import {
  imagePullSecretCollection,
  namespaceCollection,
  serviceAccountCollection,
} from '../shared/kube/collections.js';
import type { ListWatch } from '../shared/kube/list-watch.js';
import { type Change, type ResourceSource, ResourceWatcher } from '../shared/kube/resource-watcher.js';
import {
  fingerprintOf,
  isEchoOfOwnWrite,
  jobsFor,
  keyOf,
  type WatchedKind,
  type WatchedObject,
} from './map-events.js';
import type { RelayMetrics } from './metrics.js';
import { Publisher } from './publisher.js';
import { QueueEpoch, queueEpochKey } from './queue-epoch.js';

export interface RelayOptions {
  /** The relay's read-only identity: list and watch only (the light transport, shared/kube/kube-client.ts). */
  api: ListWatch;
  clusterId: string;
  queue: Queue;
  log: Logger;
  metrics: RelayMetrics;
  resyncPeriodMs: number;
  watchdogSilenceMs: number;
  maxDirtyKeys: number;
  flushIntervalMs: number;
  /** Called after jobs were handed to Redis (the SCF waker). */
  onEnqueued?: () => void;
  /** The queue's prefix, for the marker that reveals a lost queue (absent: `{tcr}`). */
  queuePrefix?: string;
  /** How often the marker is checked (absent: 2 s). */
  queueCheckMs?: number;
}

/** The three collections the relay watches, read with the relay's own (read-only) identity. */
export function createSources(api: ListWatch): ResourceSource<WatchedKind>[] {
  const relayView = (kind: WatchedKind) => ({
    kind,
    keyOf: (obj: WatchedObject) => keyOf(kind, obj),
    fingerprintOf: (obj: WatchedObject) => fingerprintOf(kind, obj),
    isEcho: (before: string, after: string) => isEchoOfOwnWrite(kind, before, after),
  });
  return [
    { ...relayView('namespace'), ...namespaceCollection(api) },
    { ...relayView('serviceaccount'), ...serviceAccountCollection(api) },
    { ...relayView('imagepullsecret'), ...imagePullSecretCollection(api) },
  ];
}

/**
 * Watches Namespaces, ServiceAccounts and ImagePullSecrets and turns their changes into level-triggered
 * jobs (keys only). Runs only while this replica leads.
 */
export class Relay {
  readonly watchers: ResourceWatcher<WatchedKind>[];
  readonly publisher: Publisher;
  readonly epoch: QueueEpoch;
  private resyncTimer: NodeJS.Timeout | undefined;
  private initialResyncDone = false;

  constructor(
    private readonly opts: RelayOptions,
    sources: ResourceSource<WatchedKind>[] = createSources(opts.api),
  ) {
    this.publisher = new Publisher(opts.queue, opts.metrics, opts.log, {
      maxDirty: opts.maxDirtyKeys,
      flushIntervalMs: opts.flushIntervalMs,
      onRecovered: () => this.resync('resync'),
      onEnqueued: opts.onEnqueued,
    });
    this.epoch = new QueueEpoch({
      queue: opts.queue,
      key: queueEpochKey(opts.queuePrefix ?? opts.queue.opts.prefix ?? '{tcr}', opts.clusterId),
      checkEveryMs: opts.queueCheckMs ?? 2000,
      log: opts.log,
      countLoss: () => opts.metrics.queueLost.inc(),
      countServerChange: () => opts.metrics.queueServerChanged.inc(),
      onLost: () => this.resync('resync'),
    });
    this.watchers = sources.map(
      (source) =>
        new ResourceWatcher(source, {
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
    this.epoch.start();
    for (const w of this.watchers) w.start();
    this.resyncTimer = setInterval(() => this.resync('resync'), this.opts.resyncPeriodMs);
  }

  /** Stops watching, then hands over what is still pending. */
  async stop(): Promise<void> {
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.epoch.stop();
    await Promise.all(this.watchers.map((w) => w.stop()));
    await this.publisher.close();
  }

  /** Ready: every kind listed once, and Redis takes our jobs (and answers the marker check). */
  get ready(): boolean {
    return this.watchers.every((w) => w.isSynced) && this.publisher.healthy && this.epoch.healthy;
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

  private onChange(change: Change<WatchedKind>): void {
    const ctx = { cluster: this.opts.clusterId, crNames: () => this.crNames(), at: Date.now() };
    this.publisher.add(
      jobsFor(change.kind, change.type, change.key, ctx, change.viaRelist ? 'relist' : change.type),
    );
  }
}
