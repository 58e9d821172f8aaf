import type { Logger } from 'pino';
import { Backoff, type BackoffPolicy, sleep } from '../backoff.js';
import { abortable, linkSignals } from '../deadline.js';

// The one list+watch loop of the code base: the relay's job keys, the webhook's view, the worker's watch of
// our Secrets and the hosts-updater's ConfigMap all run on ResourceWatcher; collections.ts is the one place
// that opens a watch, over the ListWatch port (kube-client.ts) whatever client carries the credentials (and
// the SCF catch-up replays through it too).

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

/** Counters the loop reports to (each part registers its own names). */
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

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';

/** 410 Gone: the resourceVersion is older than the API server's history; list again. */
export class WatchExpiredError extends Error {
  override readonly name = 'WatchExpiredError';
}

/** A collection of the API: how to list it a page at a time and how to watch it (collections.ts). */
export interface Collection {
  /** One page of the list; `signal` is the page's deadline (and the watcher's stop). */
  listPage(continueToken: string | undefined, signal: AbortSignal): Promise<ListPage>;
  /**
   * Streams the changes after `resourceVersion` (bookmarks included). Resolves when the server ends the watch
   * or `signal` aborts; rejects on failure, with WatchExpiredError when the resourceVersion is too old.
   */
  watch(
    resourceVersion: string,
    onEvent: (type: WatchEventType, obj: WatchedObject) => void,
    signal: AbortSignal,
  ): Promise<void>;
}

export interface ResourceSource<K extends string = string> extends Collection {
  kind: K;
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
  /** A watch that delivers nothing (not even a bookmark) for this long is restarted; 0: no watchdog. */
  watchdogSilenceMs: number;
  /**
   * `isLive` turns false once a watch has delivered nothing (not even a bookmark) for this long since it
   * opened or last spoke: a stalled watch looks open (default: no limit). The API server sends a bookmark
   * about every minute.
   */
  liveSilenceMs?: number | undefined;
  onChange: (change: Change<K>) => void;
  /** After the first complete list: the consumer knows every object of this kind. */
  onSynced?: () => void;
  /** After every complete list, with what it found (a consumer that re-applies the whole state). */
  onListed?: (objects: WatchedObject[]) => void;
  /** Report the objects of the first list as `added` too (default: only later differences). */
  reportInitialList?: boolean;
  /** List again this often whatever the watch says (default: only after 410 Gone). */
  relistEveryMs?: number | undefined;
  /** A list page that takes longer fails (and is retried with backoff). Default 60 s. */
  listPageTimeoutMs?: number;
  /** Between failed lists or watches (default 100 ms doubling up to 10 s, full jitter). */
  backoff?: BackoffPolicy;
  log: Logger;
  metrics: WatchMetrics;
}

/** A watch that ends sooner than this after it opened was not a normal end (a proxy closing at once). */
const SHORTEST_WATCH_MS = 1000;

/**
 * List + watch of one kind, resuming from the last resourceVersion and asking for bookmarks. Keeps only a
 * fingerprint per key (bounded memory), which both filters MODIFIED events that cannot matter and lets a
 * relist after 410 Gone find what changed while the watch was down, deletions included. A watchdog
 * restarts a watch that has gone silent: a watch connection can stall without an error. Every
 * failure (a list page past its deadline included) is retried with the shared backoff; a watch that the
 * server ends at once counts as one, so that a misbehaving proxy cannot make it list in a tight loop.
 */
export class ResourceWatcher<K extends string = string> {
  private readonly known = new Map<string, string>();
  private resourceVersion = '';
  private readonly stopping = new AbortController();
  /** Ends the current watch (watchdog, relist timer, stop). */
  private current: AbortController | undefined;
  private lastEventAt = Date.now();
  /** When the current watch was opened (a fresh watch has not had time to speak yet). */
  private watchOpenedAt = 0;
  private watchdog: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private synced = false;
  private readonly backoff: Backoff;

  constructor(
    private readonly source: ResourceSource<K>,
    private readonly opts: WatcherOptions<K>,
  ) {
    this.backoff = new Backoff(opts.backoff ?? { baseMs: 100, capMs: 10_000 });
  }

  get kind(): K {
    return this.source.kind;
  }

  get keys(): string[] {
    return [...this.known.keys()];
  }

  get isSynced(): boolean {
    return this.synced;
  }

  /**
   * Listed, its watch open and not silent past `liveSilenceMs`: what it reported is the API server's state,
   * a watch event behind at most.
   */
  get isLive(): boolean {
    if (!this.synced || this.current === undefined) return false;
    const limit = this.opts.liveSilenceMs;
    return limit === undefined || Date.now() - Math.max(this.lastEventAt, this.watchOpenedAt) <= limit;
  }

  start(): void {
    if (this.opts.watchdogSilenceMs > 0)
      this.watchdog = setInterval(() => this.checkSilence(), Math.min(5000, this.opts.watchdogSilenceMs / 3));
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    if (this.watchdog) clearInterval(this.watchdog);
    this.current?.abort();
    await this.loop;
  }

  private get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  private checkSilence(): void {
    if (Date.now() - this.lastEventAt > this.opts.watchdogSilenceMs && this.current) {
      this.opts.log.warn(
        { kind: this.kind, silentMs: Date.now() - this.lastEventAt },
        'watch silent: restarting it',
      );
      this.lastEventAt = Date.now();
      this.opts.metrics.watchRestarts.inc({ kind: this.kind, reason: 'silent' });
      this.current.abort();
    }
  }

  private async run(): Promise<void> {
    let needList = true;
    let listedAt = 0;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
          listedAt = Date.now();
        }
        if (this.stopped) return;
        const relistIn = this.opts.relistEveryMs
          ? listedAt + this.opts.relistEveryMs - Date.now()
          : undefined;
        const ended = await this.watchOnce(relistIn);
        if (this.stopped) return;
        if (ended === 'relist') {
          needList = true;
          continue;
        }
        if (ended === 'too-soon') {
          const retryInMs = this.backoff.next();
          this.opts.metrics.watchRestarts.inc({ kind: this.kind, reason: 'closed' });
          this.opts.log.warn({ kind: this.kind, retryInMs }, 'watch ended immediately');
          await sleep(retryInMs, this.stopping.signal);
          continue;
        }
        this.backoff.reset();
        if (ended === 'closed') this.opts.metrics.watchRestarts.inc({ kind: this.kind, reason: 'closed' });
      } catch (error) {
        if (this.stopped) return;
        if (error instanceof WatchExpiredError) {
          this.opts.log.info({ kind: this.kind }, 'watch resourceVersion too old (410 Gone): relisting');
          needList = true;
          continue;
        }
        // What changed while the watch was failing is unknown: list again (as client-go's reflector does).
        needList = true;
        const retryInMs = this.backoff.next();
        this.opts.metrics.watchRestarts.inc({ kind: this.kind, reason: 'error' });
        this.opts.log.warn(
          { kind: this.kind, err: error instanceof Error ? error.message : String(error), retryInMs },
          'list/watch failed',
        );
        await sleep(retryInMs, this.stopping.signal);
      }
    }
  }

  /** Lists everything; compares with what was known and reports the differences (not on the first list). */
  private async relist(): Promise<void> {
    this.opts.metrics.relists.inc({ kind: this.kind });
    const fresh = new Map<string, string>();
    // Objects are kept only where someone will look at them: every one for onListed, else only those this
    // list reports (a relay's first list of 5,000 ServiceAccounts keeps none, only their fingerprints).
    const objects = new Map<string, WatchedObject>();
    const keepAll = this.opts.onListed !== undefined;
    const reporting = this.synced || this.opts.reportInitialList === true;
    let token: string | undefined;
    let rv = '';
    do {
      const page = await this.listPage(token);
      for (const obj of page.items) {
        const key = this.source.keyOf(obj);
        const fp = this.source.fingerprintOf(obj);
        fresh.set(key, fp);
        if (keepAll || (reporting && this.known.get(key) !== fp)) objects.set(key, obj);
      }
      token = page.continueToken || undefined;
      rv = page.resourceVersion;
    } while (token);
    // Later lists report the differences; the first one only if asked (a view wants every object, the
    // relay resyncs instead of enqueueing a job per object).
    if (reporting) {
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
    this.opts.onListed?.([...objects.values()]);
    if (!this.synced) {
      this.synced = true;
      this.opts.onSynced?.();
    }
  }

  /** One page, within its deadline: a LIST that hangs must not stall the watcher (the watchdog covers watches only). */
  private async listPage(token: string | undefined): Promise<ListPage> {
    const timeoutMs = this.opts.listPageTimeoutMs ?? 60_000;
    const deadline = AbortSignal.timeout(timeoutMs);
    const { signal, unlink } = linkSignals([this.stopping.signal, deadline]);
    try {
      return await abortable(this.source.listPage(token, signal), signal, `list ${this.kind}`);
    } finally {
      unlink();
    }
  }

  private emit(type: ChangeType, key: string, viaRelist: boolean, object?: WatchedObject): void {
    this.opts.onChange({ kind: this.kind, type, key, viaRelist, object });
  }

  /**
   * Watches until the server ends it (`closed`, or `too-soon` right after it opened), the relist timer
   * fires (`relist`) or the watchdog or stop ends it (`restarted`). Throws what the watch failed with.
   */
  private async watchOnce(
    relistInMs: number | undefined,
  ): Promise<'closed' | 'too-soon' | 'relist' | 'restarted'> {
    if (relistInMs !== undefined && relistInMs <= 0) return 'relist';
    const controller = new AbortController();
    this.current = controller;
    this.watchOpenedAt = Date.now();
    let relistDue = false;
    const timer =
      relistInMs === undefined
        ? undefined
        : setTimeout(() => {
            relistDue = true;
            controller.abort();
          }, relistInMs);
    const openedAt = Date.now();
    try {
      await this.source.watch(
        this.resourceVersion,
        (type, obj) => this.onEvent(type, obj),
        controller.signal,
      );
    } finally {
      clearTimeout(timer);
      this.current = undefined;
    }
    if (relistDue) return 'relist';
    if (controller.signal.aborted) return 'restarted';
    return Date.now() - openedAt < SHORTEST_WATCH_MS ? 'too-soon' : 'closed';
  }

  private onEvent(type: WatchEventType, obj: WatchedObject): void {
    this.lastEventAt = Date.now();
    this.opts.metrics.sawEvent(this.kind);
    this.opts.metrics.events.inc({ kind: this.kind, type });
    const rv = obj.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (type === 'BOOKMARK') return;
    const key = this.source.keyOf(obj);
    if (type === 'DELETED') {
      this.known.delete(key);
      this.emit('deleted', key, false);
      return;
    }
    const fp = this.source.fingerprintOf(obj);
    const before = this.known.get(key);
    this.known.set(key, fp);
    if (before === fp || (before !== undefined && this.source.isEcho?.(before, fp))) {
      this.opts.metrics.dropped.inc({ kind: this.kind });
    } else this.emit(before === undefined ? 'added' : 'modified', key, false, obj);
  }
}
