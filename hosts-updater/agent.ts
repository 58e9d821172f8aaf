// The node agent: list + watch one ConfigMap, keep the managed block of the hosts file in line with it.
import { CoreV1Api, type KubeConfig, type V1ConfigMap, Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type DesiredHosts, readDesiredHosts } from '../shared/contracts/updater-config.js';
import { describeError } from '../shared/errors.js';
import {
  HostsFileDetachedError,
  type HostsFs,
  type HostsIoOptions,
  recoverHostsFile,
} from './crash-safe-write.js';
import { type SyncResult, syncHostsFile } from './hosts-file.js';

export type ConfigMapEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** Where the ConfigMap comes from: the API server (createConfigMapSource) or a test double. */
export interface ConfigMapSource {
  /** The ConfigMap (undefined when it does not exist) and the resourceVersion of that read. */
  list(): Promise<{ configMap: V1ConfigMap | undefined; resourceVersion: string }>;
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

/** 410 Gone: the watch must restart from a fresh list. */
export class WatchExpiredError extends Error {
  override readonly name = 'WatchExpiredError';
}

/**
 * Reads one ConfigMap through list/watch restricted by `fieldSelector=metadata.name=<name>`: that is what
 * lets RBAC grant list/watch with `resourceNames: [<name>]` and nothing else.
 */
export function createConfigMapSource(
  kc: KubeConfig,
  namespace: string,
  name: string,
  watchTimeoutSeconds = 330,
): ConfigMapSource {
  const core = kc.makeApiClient(CoreV1Api);
  const fieldSelector = `metadata.name=${name}`;
  const watchPath = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`;
  return {
    async list() {
      const list = await core.listNamespacedConfigMap({ namespace, fieldSelector });
      return {
        configMap: list.items.find((cm) => cm.metadata?.name === name),
        resourceVersion: list.metadata?.resourceVersion ?? '',
      };
    },
    watch(resourceVersion, onEvent, signal) {
      return new Promise<void>((resolve, reject) => {
        let controller: AbortController | undefined;
        let settled = false;
        const finish = (error?: unknown) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          controller?.abort();
          if (error) reject(error);
          else resolve();
        };
        const onAbort = () => finish();
        if (signal.aborted) return finish();
        signal.addEventListener('abort', onAbort, { once: true });
        new Watch(kc)
          .watch(
            watchPath,
            {
              fieldSelector,
              resourceVersion,
              allowWatchBookmarks: true,
              // The server ends the watch; the caller's resync timer is the guard against a silent stall.
              timeoutSeconds: watchTimeoutSeconds,
            },
            (type: string, obj: V1ConfigMap & { code?: number; message?: string }) => {
              if (settled) return;
              if (type === 'ERROR') {
                finish(
                  obj?.code === 410
                    ? new WatchExpiredError('watch expired (410 Gone)')
                    : new Error(`watch error ${obj?.code ?? ''}: ${obj?.message ?? 'unknown'}`),
                );
              } else if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
                onEvent(type, obj);
              }
            },
            (err: unknown) => {
              const aborted = signal.aborted || (err instanceof Error && err.name === 'AbortError');
              const status = (err as { statusCode?: number } | null)?.statusCode;
              if (status === 410) finish(new WatchExpiredError('watch expired (410 Gone)'));
              else finish(err && !aborted ? err : undefined);
            },
          )
          .then(
            (c) => {
              controller = c;
              if (settled) c.abort();
            },
            (error: unknown) => finish(error),
          );
      });
    },
  };
}

export interface HostsUpdaterOptions {
  /** Needed unless `source` is given. */
  kubeConfig?: KubeConfig | undefined;
  namespace: string;
  configMapName: string;
  hostsPath: string;
  /** Directory for the in-place write's backup journal (see crash-safe-write.ts). Default: the hosts file's. */
  stateDir?: string | undefined;
  log: Logger;
  /** Aborting it stops the agent; runHostsUpdater then resolves. */
  signal: AbortSignal;
  /** A fresh list this often, whatever the watch says (client-node watches can stall silently). */
  resyncIntervalMs?: number | undefined;
  /** Backoff for list/watch failures and failed writes. */
  retryInitialMs?: number | undefined;
  retryMaxMs?: number | undefined;
  /** For tests. */
  source?: ConfigMapSource | undefined;
  fs?: HostsFs | undefined;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Settles like `promise`, or rejects as soon as `signal` aborts (a list request cannot be cancelled). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('stopped'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

const jitter = (ms: number) => Math.round(ms * (0.5 + Math.random()));

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
    let retryMs = this.opts.retryInitialMs;
    while (this.pending && !this.opts.stop.aborted) {
      const { desired, cause } = this.pending;
      this.pending = undefined;
      try {
        await this.apply(desired, cause);
        retryMs = this.opts.retryInitialMs;
      } catch (error) {
        if (error instanceof HostsFileDetachedError) {
          this.fatalError = error;
          this.opts.onFatal(error);
          return;
        }
        this.opts.log.error(
          { err: describeError(error), retryInMs: retryMs },
          'could not update the hosts file',
        );
        this.pending ??= { desired, cause };
        await sleep(jitter(retryMs), this.opts.stop);
        retryMs = Math.min(retryMs * 2, this.opts.retryMaxMs);
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
 * Runs until `signal` aborts. Start-up repairs a write interrupted by a crash; then, in a loop: list the
 * ConfigMap (apply it), watch it (apply ADDED/MODIFIED, remove the block on DELETED) until the server ends
 * the watch or the resync interval passes, and list again. Failures back off exponentially with jitter.
 * Rejects only with HostsFileDetachedError (the process should exit so the mount is renewed).
 */
export async function runHostsUpdater(options: HostsUpdaterOptions): Promise<void> {
  const resyncIntervalMs = options.resyncIntervalMs ?? 300_000;
  const retryInitialMs = options.retryInitialMs ?? 500;
  const retryMaxMs = options.retryMaxMs ?? 30_000;
  const log = options.log.child({ hostsPath: options.hostsPath });
  const io: HostsIoOptions = { stateDir: options.stateDir, fs: options.fs };
  const source =
    options.source ??
    (options.kubeConfig
      ? createConfigMapSource(
          options.kubeConfig,
          options.namespace,
          options.configMapName,
          Math.ceil(resyncIntervalMs / 1000) + 30,
        )
      : undefined);
  if (!source) throw new Error('runHostsUpdater needs kubeConfig (or a source)');

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

  let backoffMs = retryInitialMs;
  try {
    while (!stop.signal.aborted) {
      const startedAt = Date.now();
      const cycle = new AbortController();
      const endCycle = () => cycle.abort();
      const timer = setTimeout(endCycle, resyncIntervalMs);
      stop.signal.addEventListener('abort', endCycle, { once: true });
      try {
        const { configMap, resourceVersion } = await untilAborted(source.list(), stop.signal);
        applier.set(readDesiredHosts(configMap), 'list');
        await source.watch(
          resourceVersion,
          (type, cm) => applier.set(type === 'DELETED' ? { state: 'absent' } : readDesiredHosts(cm), type),
          cycle.signal,
        );
        if (Date.now() - startedAt < 1000 && !cycle.signal.aborted) {
          // A server (or proxy) that ends every watch at once must not make us list in a tight loop.
          log.warn({ retryInMs: backoffMs }, 'watch ended immediately');
          await sleep(jitter(backoffMs), stop.signal);
          backoffMs = Math.min(backoffMs * 2, retryMaxMs);
        } else {
          backoffMs = retryInitialMs;
        }
      } catch (error) {
        if (stop.signal.aborted) break;
        if (error instanceof WatchExpiredError && Date.now() - startedAt >= 1000) {
          log.info('watch expired: listing again');
          continue;
        }
        log.warn({ err: describeError(error), retryInMs: backoffMs }, 'list/watch failed');
        await sleep(jitter(backoffMs), stop.signal);
        backoffMs = Math.min(backoffMs * 2, retryMaxMs);
      } finally {
        clearTimeout(timer);
        stop.signal.removeEventListener('abort', endCycle);
      }
    }
  } finally {
    options.signal.removeEventListener('abort', onStop);
    // A write in progress finishes (it is short and crash-safe anyway) before we return.
    await applier.idle();
  }
  if (applier.fatalError) throw applier.fatalError;
  log.info('hosts updater stopped');
}
