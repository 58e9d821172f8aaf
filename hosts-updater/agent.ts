// The node agent: list + watch one ConfigMap, keep the managed block of the hosts file in line with it.
import type { V1ConfigMap } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Backoff, sleep } from '../shared/backoff.js';
import { type DesiredHosts, readDesiredHosts } from '../shared/contracts/updater-config.js';
import { describeError } from '../shared/errors.js';
import { configMapCollection } from '../shared/kube/collections.js';
import type { ListWatch } from '../shared/kube/list-watch.js';
import {
  type ResourceSource,
  ResourceWatcher,
  type WatchEventType,
  type WatchedObject,
  type WatchMetrics,
} from '../shared/kube/resource-watcher.js';
import {
  HostsFileDetachedError,
  type HostsFs,
  type HostsIoOptions,
  recoverHostsFile,
} from './crash-safe-write.js';
import { type SyncResult, syncHostsFile } from './hosts-file.js';

export type ConfigMapEventType = WatchEventType;

/** Where the ConfigMap comes from: the API server (createConfigMapSource) or a test double. */
export interface ConfigMapSource {
  /** The ConfigMap (undefined when it does not exist) and the resourceVersion of that read. */
  list(signal?: AbortSignal): Promise<{ configMap: V1ConfigMap | undefined; resourceVersion: string }>;
  /**
   * Streams changes after `resourceVersion`. Resolves when the server ends the watch or `signal` aborts;
   * rejects on failure (WatchExpiredError when the resourceVersion is too old).
   */
  watch(
    resourceVersion: string,
    onEvent: (type: ConfigMapEventType, configMap: V1ConfigMap) => void,
    signal: AbortSignal,
  ): Promise<void>;
}

/**
 * Reads one ConfigMap through list/watch restricted by `fieldSelector=metadata.name=<name>` (the shared
 * collection): that is what lets RBAC grant list/watch with `resourceNames: [<name>]` and nothing else.
 */
export function createConfigMapSource(
  api: ListWatch,
  namespace: string,
  name: string,
  watchTimeoutSeconds = 330,
): ConfigMapSource {
  const collection = configMapCollection(api, namespace, name, watchTimeoutSeconds);
  return {
    async list(signal) {
      const page = await collection.listPage(undefined, signal ?? new AbortController().signal);
      return {
        configMap: (page.items as V1ConfigMap[]).find((cm) => cm.metadata?.name === name),
        resourceVersion: page.resourceVersion,
      };
    },
    watch: (resourceVersion, onEvent, signal) =>
      collection.watch(resourceVersion, (type, obj) => onEvent(type, obj as V1ConfigMap), signal),
  };
}

/** The ConfigMap as a source of the shared watcher: one key, fingerprinted by its data. */
function asResourceSource(source: ConfigMapSource): ResourceSource<'configmap'> {
  return {
    kind: 'configmap',
    async listPage(_token, signal) {
      const { configMap, resourceVersion } = await source.list(signal);
      return { items: configMap ? [configMap as WatchedObject] : [], resourceVersion };
    },
    watch: (resourceVersion, onEvent, signal) =>
      source.watch(resourceVersion, (type, cm) => onEvent(type, cm as WatchedObject), signal),
    keyOf: (obj) => obj.metadata?.name ?? '',
    fingerprintOf: (obj) => JSON.stringify((obj as V1ConfigMap).data ?? {}),
  };
}

/** The watcher's counters: the agent exports no metrics, its log lines say what happened. */
const noMetrics: WatchMetrics = {
  events: { inc: () => {} },
  dropped: { inc: () => {} },
  watchRestarts: { inc: () => {} },
  relists: { inc: () => {} },
  sawEvent: () => {},
};

export interface HostsUpdaterOptions {
  /** List and watch of the API server (the light transport); needed unless `source` is given. */
  api?: ListWatch | undefined;
  namespace: string;
  configMapName: string;
  hostsPath: string;
  /** Directory for the in-place write's backup journal (see crash-safe-write.ts). Default: the hosts file's. */
  stateDir?: string | undefined;
  log: Logger;
  /** Aborting it stops the agent; runHostsUpdater then resolves. */
  signal: AbortSignal;
  /** A fresh list this often, whatever the watch says (a watch can stall silently). */
  resyncIntervalMs?: number | undefined;
  /** Backoff for list/watch failures and failed writes. */
  retryInitialMs?: number | undefined;
  retryMaxMs?: number | undefined;
  /** For tests. */
  source?: ConfigMapSource | undefined;
  fs?: HostsFs | undefined;
}

function summarize(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/**
 * Applies the latest desired state, one write at a time. Level-triggered: events arriving during a write
 * collapse into one follow-up write of the newest state. A failed write is retried with backoff.
 */
class HostsApplier {
  private pending: { desired: DesiredHosts; cause: string } | undefined;
  private running: Promise<void> | undefined;
  private lastProblems = '';
  fatalError: Error | undefined;

  constructor(
    private readonly opts: {
      hostsPath: string;
      io: HostsIoOptions;
      log: Logger;
      stop: AbortSignal;
      retryInitialMs: number;
      retryMaxMs: number;
      onFatal: (error: Error) => void;
    },
  ) {}

  set(desired: DesiredHosts, cause: string): void {
    this.pending = { desired, cause };
    this.kick();
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private kick(): void {
    if (this.running || this.fatalError) return;
    this.running = (async () => {
      try {
        await this.drain();
      } finally {
        this.running = undefined;
        // A state set between the end of the loop and here must not wait for the next event.
        if (this.pending && !this.opts.stop.aborted) this.kick();
      }
    })();
  }

  private async drain(): Promise<void> {
    const backoff = new Backoff({ baseMs: this.opts.retryInitialMs, capMs: this.opts.retryMaxMs });
    while (this.pending && !this.opts.stop.aborted) {
      const { desired, cause } = this.pending;
      this.pending = undefined;
      try {
        await this.apply(desired, cause);
        backoff.reset();
      } catch (error) {
        if (error instanceof HostsFileDetachedError) {
          this.fatalError = error;
          this.opts.onFatal(error);
          return;
        }
        const retryInMs = backoff.next();
        this.opts.log.error({ err: describeError(error), retryInMs }, 'could not update the hosts file');
        this.pending ??= { desired, cause };
        await sleep(retryInMs, this.opts.stop);
      }
    }
  }

  /** Logs problems of the ConfigMap once per distinct set, not on every resync. */
  private reportProblems(key: string, report: () => void): void {
    if (key === this.lastProblems) return;
    this.lastProblems = key;
    if (key) report();
  }

  private async apply(desired: DesiredHosts, cause: string): Promise<void> {
    const { log, hostsPath, io } = this.opts;
    let result: SyncResult;
    if (desired.state === 'invalid') {
      this.reportProblems(`invalid:${desired.reason}`, () =>
        log.error({ reason: desired.reason, cause }, 'ConfigMap is invalid: hosts file left as it is'),
      );
      return;
    }
    if (desired.state === 'enabled') {
      const rejected = desired.rejected;
      this.reportProblems(rejected.length ? `rejected:${summarize(rejected)}` : '', () => {
        for (const r of rejected) {
          log.warn({ index: r.index, entry: summarize(r.entry), reason: r.reason }, 'skipping hosts entry');
        }
      });
      result = await syncHostsFile(hostsPath, desired.entries, io);
    } else {
      this.reportProblems('', () => {});
      result = await syncHostsFile(hostsPath, null, io);
    }
    const fields = {
      cause,
      state: desired.state,
      strategy: result.strategy,
      entries: result.entries.map((e) => `${e.domain}=${e.ip}`),
    };
    if (result.written)
      log.info(fields, result.entries.length ? 'hosts block written' : 'hosts block removed');
    else log.debug(fields, 'hosts file already up to date');
  }
}

/**
 * Runs until `signal` aborts. Start-up repairs a write interrupted by a crash; then the shared list+watch
 * loop (shared/kube/resource-watcher.ts) follows the ConfigMap: every list (the first, each resync interval,
 * after 410 Gone or a failure) re-applies it whole, and each watch event applies the change (DELETED
 * removes the block). Failures back off exponentially with jitter. Rejects only with HostsFileDetachedError
 * (the process should exit so the mount is renewed).
 */
export async function runHostsUpdater(options: HostsUpdaterOptions): Promise<void> {
  const resyncIntervalMs = options.resyncIntervalMs ?? 300_000;
  const retryInitialMs = options.retryInitialMs ?? 500;
  const retryMaxMs = options.retryMaxMs ?? 30_000;
  const log = options.log.child({ hostsPath: options.hostsPath });
  const io: HostsIoOptions = { stateDir: options.stateDir, fs: options.fs };
  const source =
    options.source ??
    (options.api
      ? createConfigMapSource(
          options.api,
          options.namespace,
          options.configMapName,
          Math.ceil(resyncIntervalMs / 1000) + 30,
        )
      : undefined);
  if (!source) throw new Error('runHostsUpdater needs an api (or a source)');

  const recovery = await recoverHostsFile(options.hostsPath, io);
  if (recovery.action !== 'none' || recovery.removedTempFiles > 0) {
    log.warn(recovery, 'repaired what an interrupted write left behind');
  }

  const stop = new AbortController();
  const onStop = () => stop.abort();
  options.signal.addEventListener('abort', onStop, { once: true });
  if (options.signal.aborted) stop.abort();
  const applier = new HostsApplier({
    hostsPath: options.hostsPath,
    io,
    log,
    stop: stop.signal,
    retryInitialMs,
    retryMaxMs,
    onFatal: (error) => {
      log.error(
        { err: error.message },
        'hosts file detached from the node: stopping so the mount is renewed',
      );
      stop.abort();
    },
  });
  log.info(
    { configMap: `${options.namespace}/${options.configMapName}`, resyncIntervalMs },
    'hosts updater started',
  );

  const watcher = new ResourceWatcher(asResourceSource(source), {
    // The resync interval is the guard against a silent stall: no separate watchdog.
    watchdogSilenceMs: 0,
    relistEveryMs: resyncIntervalMs,
    backoff: { baseMs: retryInitialMs, capMs: retryMaxMs },
    onListed: (objects) => applier.set(readDesiredHosts(objects[0] as V1ConfigMap | undefined), 'list'),
    onChange: (change) => {
      if (change.viaRelist) return; // onListed applies the whole list
      const type = change.type === 'deleted' ? 'DELETED' : change.type === 'added' ? 'ADDED' : 'MODIFIED';
      applier.set(
        change.type === 'deleted' ? { state: 'absent' } : readDesiredHosts(change.object as V1ConfigMap),
        type,
      );
    },
    log,
    metrics: noMetrics,
  });
  watcher.start();
  try {
    if (!stop.signal.aborted)
      await new Promise<void>((resolve) =>
        stop.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
  } finally {
    options.signal.removeEventListener('abort', onStop);
    await watcher.stop();
    // A write in progress finishes (it is short and crash-safe anyway) before we return.
    await applier.idle();
  }
  if (applier.fatalError) throw applier.fatalError;
  log.info('hosts updater stopped');
}
