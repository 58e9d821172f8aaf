import { type KubeConfig, Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';

// One list+watch loop for every part that watches the API (the relay's job keys, the webhook's view).

export type ChangeType = 'added' | 'modified' | 'deleted';

interface Meta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  generation?: number;
  deletionTimestamp?: string;
  finalizers?: string[];
  resourceVersion?: string;
}
/** The fields of a watched object that anyone here looks at (the rest is kept as it came). */
export interface WatchedObject {
  metadata?: Meta;
  imagePullSecrets?: { name?: string }[];
  status?: { phase?: string };
  spec?: unknown;
}

/** Counters the loop reports to (the relay and the webhook each register their own names). */
export interface WatchMetrics {
  events: { inc(labels: { kind: string; type: string }): void };
  dropped: { inc(labels: { kind: string }): void };
  watchRestarts: { inc(labels: { kind: string; reason: string }): void };
  relists: { inc(labels: { kind: string }): void };
  sawEvent(kind: string): void;
}

export interface ListPage {
  items: WatchedObject[];
  resourceVersion: string;
  continueToken?: string | undefined;
}

export interface ResourceSource<K extends string = string> {
  kind: K;
  /** Path of the collection to watch, e.g. /api/v1/namespaces. */
  watchPath: string;
  /** Extra watch parameters, e.g. a labelSelector (the list must apply the same). */
  watchQuery?: Record<string, string>;
  listPage(continueToken?: string): Promise<ListPage>;
  /** The object's key within its kind (`name` or `namespace/name`). */
  keyOf(obj: WatchedObject): string;
  /** Exactly what the consumer looks at: a MODIFIED event that does not change it is dropped. */
  fingerprintOf(obj: WatchedObject): string;
  /** A change that is only the echo of our own write (dropped like an unchanged fingerprint). */
  isEcho?(before: string, after: string): boolean;
}

export interface Change<K extends string = string> {
  kind: K;
  type: ChangeType;
  key: string;
  /** `relist` when found by comparing a fresh list with what the watcher knew (after 410 Gone). */
  viaRelist: boolean;
  /** The object as last seen (absent for deletions). */
  object?: WatchedObject | undefined;
}

export interface WatcherOptions<K extends string = string> {
  watchdogSilenceMs: number;
  onChange: (change: Change<K>) => void;
  /** After the first complete list: the relay knows every object of this kind. */
  onSynced?: () => void;
  /** Report the objects of the first list as `added` too (default: only later differences). */
  reportInitialList?: boolean;
  log: Logger;
  metrics: WatchMetrics;
}

class GoneError extends Error {}

/**
 * List + watch of one kind, resuming from the last resourceVersion and asking for bookmarks. Keeps only a
 * fingerprint per key (bounded memory), which both filters MODIFIED events that cannot matter and lets a
 * relist after 410 Gone find what changed while the watch was down, deletions included. A watchdog
 * restarts a watch that has gone silent: client-node's watches are known to stall without an error.
 */
export class ResourceWatcher<K extends string = string> {
  private readonly known = new Map<string, string>();
  private resourceVersion = '';
  private controller: AbortController | undefined;
  private stopped = false;
  private lastEventAt = Date.now();
  private watchdog: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private synced = false;

  constructor(
    private readonly kc: KubeConfig,
    private readonly source: ResourceSource<K>,
    private readonly opts: WatcherOptions<K>,
  ) {}

  get kind(): K {
    return this.source.kind;
  }

  get keys(): string[] {
    return [...this.known.keys()];
  }

  get isSynced(): boolean {
    return this.synced;
  }

  start(): void {
    this.watchdog = setInterval(() => this.checkSilence(), Math.min(5000, this.opts.watchdogSilenceMs / 3));
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.suspended?.resume();
    if (this.watchdog) clearInterval(this.watchdog);
    this.controller?.abort();
    await this.loop;
  }

  /** For tests: pretend the watch went silent. */
  forceRestart(reason = 'silent'): void {
    this.opts.metrics.watchRestarts.inc({ kind: this.kind, reason });
    this.controller?.abort();
  }

  private suspended: { resume: () => void; gate: Promise<void> } | undefined;

  /** Stops watching but keeps what is known, as a network partition would (tests, maintenance). */
  suspend(): void {
    let resume = () => {};
    const gate = new Promise<void>((r) => {
      resume = r;
    });
    this.suspended = { resume, gate };
    this.controller?.abort();
  }

  /** Watches again from the last resourceVersion, or from `fromResourceVersion` if given. */
  resume(fromResourceVersion?: string): void {
    if (fromResourceVersion !== undefined) this.resourceVersion = fromResourceVersion;
    const s = this.suspended;
    this.suspended = undefined;
    s?.resume();
  }

  private checkSilence(): void {
    if (Date.now() - this.lastEventAt > this.opts.watchdogSilenceMs && this.controller) {
      this.opts.log.warn(
        { kind: this.kind, silentMs: Date.now() - this.lastEventAt },
        'watch silent: restarting it',
      );
      this.lastEventAt = Date.now();
      this.forceRestart('silent');
    }
  }

  private async run(): Promise<void> {
    let backoff = 100;
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        if (this.suspended) await this.suspended.gate;
        if (this.stopped) return;
        await this.watchOnce();
        backoff = 100;
        if (!this.stopped && !this.suspended)
          this.opts.metrics.watchRestarts.inc({ kind: this.kind, reason: 'closed' });
      } catch (error) {
        if (this.stopped) return;
        if (error instanceof GoneError) {
          this.opts.log.info({ kind: this.kind }, 'watch resourceVersion too old (410 Gone): relisting');
          needList = true;
          continue;
        }
        this.opts.metrics.watchRestarts.inc({ kind: this.kind, reason: 'error' });
        this.opts.log.warn(
          { kind: this.kind, err: error instanceof Error ? error.message : String(error), backoff },
          'watch failed: retrying',
        );
        await new Promise((r) => setTimeout(r, backoff * (0.5 + Math.random())));
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  /** Lists everything; compares with what was known and reports the differences (not on the first list). */
  private async relist(): Promise<void> {
    this.opts.metrics.relists.inc({ kind: this.kind });
    const fresh = new Map<string, string>();
    const objects = new Map<string, WatchedObject>();
    let token: string | undefined;
    let rv = '';
    do {
      const page = await this.source.listPage(token);
      for (const obj of page.items) {
        const key = this.source.keyOf(obj);
        fresh.set(key, this.source.fingerprintOf(obj));
        objects.set(key, obj);
      }
      token = page.continueToken || undefined;
      rv = page.resourceVersion;
    } while (token);
    // Later lists report the differences; the first one only if asked (a view wants every object, the
    // relay resyncs instead of enqueueing a job per object).
    if (this.synced || this.opts.reportInitialList) {
      for (const [key, fp] of fresh) {
        const before = this.known.get(key);
        if (before === undefined) this.emit('added', key, this.synced, objects.get(key));
        else if (before !== fp) this.emit('modified', key, true, objects.get(key));
      }
      for (const key of this.known.keys()) if (!fresh.has(key)) this.emit('deleted', key, true);
    }
    this.known.clear();
    for (const [k, v] of fresh) this.known.set(k, v);
    this.resourceVersion = rv;
    this.lastEventAt = Date.now();
    if (!this.synced) {
      this.synced = true;
      this.opts.onSynced?.();
    }
  }

  private emit(type: ChangeType, key: string, viaRelist: boolean, object?: WatchedObject): void {
    this.opts.onChange({ kind: this.kind, type, key, viaRelist, object });
  }

  private async watchOnce(): Promise<void> {
    const watch = new Watch(this.kc);
    let gone = false;
    await new Promise<void>((resolve, reject) => {
      const handle = (type: string, obj: WatchedObject & { code?: number }) => {
        this.lastEventAt = Date.now();
        this.opts.metrics.sawEvent(this.kind);
        this.opts.metrics.events.inc({ kind: this.kind, type });
        if (type === 'ERROR') {
          if (obj.code === 410) gone = true;
          this.controller?.abort();
          return;
        }
        const rv = obj.metadata?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        if (type === 'BOOKMARK') return;
        const key = this.source.keyOf(obj);
        const fp = this.source.fingerprintOf(obj);
        if (type === 'DELETED') {
          this.known.delete(key);
          this.emit('deleted', key, false);
        } else if (type === 'ADDED' || type === 'MODIFIED') {
          const before = this.known.get(key);
          this.known.set(key, fp);
          if (before === fp || (before !== undefined && this.source.isEcho?.(before, fp))) {
            this.opts.metrics.dropped.inc({ kind: this.kind });
          } else this.emit(before === undefined ? 'added' : 'modified', key, false, obj);
        }
      };
      watch
        .watch(
          this.source.watchPath,
          {
            ...this.source.watchQuery,
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            // The server ends each watch after 5-10 minutes; resuming from the last version is free.
            timeoutSeconds: 300 + Math.floor(Math.random() * 300),
          },
          handle,
          (err: unknown) => {
            this.controller = undefined;
            const status = (err as { statusCode?: number } | null)?.statusCode;
            if (gone || status === 410) reject(new GoneError());
            else if (err && !this.stopped && !(err instanceof Error && err.name === 'AbortError'))
              reject(err);
            else resolve();
          },
        )
        .then((controller) => {
          this.controller = controller;
          // Stopped or suspended while the watch was being opened: close it now.
          if (this.stopped || this.suspended) controller.abort();
        }, reject);
    });
  }
}
