import { describe, expect, it } from 'vitest';
import {
  type Change,
  type ListPage,
  type ResourceSource,
  ResourceWatcher,
  type WatchEventType,
  WatchExpiredError,
  type WatchedObject,
  type WatchMetrics,
} from '../../../shared/kube/resource-watcher.js';
import { createLogger } from '../../../shared/logging.js';
import { waitFor } from '../../support/wait.js';

const noMetrics: WatchMetrics = {
  events: { inc: () => {} },
  dropped: { inc: () => {} },
  watchRestarts: { inc: () => {} },
  relists: { inc: () => {} },
  sawEvent: () => {},
};

const obj = (name: string, rv: string, label = 'a'): WatchedObject => ({
  metadata: { name, resourceVersion: rv, labels: { l: label } },
});

/** A collection in memory: lists on demand (or hangs), and a watch the test feeds, ends or breaks. */
class FakeSource implements ResourceSource<'thing'> {
  readonly kind = 'thing' as const;
  objects = new Map<string, WatchedObject>();
  lists = 0;
  watches = 0;
  hangLists = false;
  endWatchesAtOnce = false;
  private feed: ((type: WatchEventType, o: WatchedObject) => void) | undefined;
  private end: ((error?: Error) => void) | undefined;

  keyOf = (o: WatchedObject) => o.metadata?.name ?? '';
  fingerprintOf = (o: WatchedObject) => JSON.stringify(o.metadata?.labels ?? {});

  async listPage(_token: string | undefined, signal: AbortSignal): Promise<ListPage> {
    this.lists++;
    if (this.hangLists) await new Promise(() => {}); // a LIST that never answers (and ignores the signal)
    void signal;
    return { items: [...this.objects.values()], resourceVersion: String(this.lists) };
  }

  watch(_rv: string, onEvent: (type: WatchEventType, o: WatchedObject) => void, signal: AbortSignal) {
    this.watches++;
    if (this.endWatchesAtOnce) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.feed = onEvent;
      this.end = (error) => {
        this.feed = undefined;
        if (error) reject(error);
        else resolve();
      };
      signal.addEventListener('abort', () => this.end?.(), { once: true });
    });
  }

  get watching(): boolean {
    return this.feed !== undefined;
  }

  emit(type: WatchEventType, o: WatchedObject): void {
    if (type === 'DELETED') this.objects.delete(this.keyOf(o));
    else this.objects.set(this.keyOf(o), o);
    this.feed?.(type, o);
  }

  breakWatch(error: Error): void {
    this.end?.(error);
  }
}

function watcherOf(
  source: FakeSource,
  extra: { relistEveryMs?: number; listPageTimeoutMs?: number; liveSilenceMs?: number } = {},
) {
  const changes: string[] = [];
  const listed: number[] = [];
  const watcher = new ResourceWatcher(source, {
    watchdogSilenceMs: 0,
    reportInitialList: true,
    backoff: { baseMs: 5, capMs: 20 },
    onChange: (c: Change) => changes.push(`${c.type} ${c.key}${c.viaRelist ? ' (relist)' : ''}`),
    onListed: (objects) => listed.push(objects.length),
    log: createLogger('test', 'silent'),
    metrics: noMetrics,
    ...extra,
  });
  return { watcher, changes, listed };
}

describe('ResourceWatcher', () => {
  it('reports the list, then watch events, dropping MODIFIED events that change no fingerprint', async () => {
    const source = new FakeSource();
    source.objects.set('a', obj('a', '1'));
    const { watcher, changes } = watcherOf(source);
    watcher.start();
    try {
      await waitFor('watching', () => source.watching, { timeoutMs: 2000, intervalMs: 5 });
      source.emit('ADDED', obj('b', '2'));
      source.emit('MODIFIED', obj('b', '3')); // same labels: dropped
      source.emit('MODIFIED', obj('b', '4', 'x'));
      source.emit('DELETED', obj('a', '5'));
      expect(changes).toEqual(['added a', 'added b', 'modified b', 'deleted a']);
    } finally {
      await watcher.stop();
    }
  });

  it('relists after a watch error and after 410 Gone, and reports what changed meanwhile', async () => {
    const source = new FakeSource();
    source.objects.set('a', obj('a', '1'));
    const { watcher, changes } = watcherOf(source);
    watcher.start();
    try {
      await waitFor('watching', () => source.watching, { timeoutMs: 2000, intervalMs: 5 });
      source.objects.set('b', obj('b', '2'));
      source.breakWatch(new Error('socket hang up'));
      await waitFor('relisted after the error', () => source.lists === 2 && source.watching, {
        timeoutMs: 2000,
        intervalMs: 5,
      });
      source.objects.delete('a');
      source.breakWatch(new WatchExpiredError('too old'));
      await waitFor('relisted after 410', () => source.lists === 3 && source.watching, {
        timeoutMs: 2000,
        intervalMs: 5,
      });
      expect(changes).toEqual(['added a', 'added b (relist)', 'deleted a (relist)']);
    } finally {
      await watcher.stop();
    }
  });

  it('lists again on the relist timer, each complete list going to onListed', async () => {
    const source = new FakeSource();
    source.objects.set('a', obj('a', '1'));
    const { watcher, listed } = watcherOf(source, { relistEveryMs: 30 });
    watcher.start();
    try {
      await waitFor('a few relists', () => source.lists >= 4, { timeoutMs: 2000, intervalMs: 5 });
      expect(listed.slice(0, 4)).toEqual([1, 1, 1, 1]);
    } finally {
      await watcher.stop();
    }
  });

  it('cuts a hung list page off at its deadline and retries it', async () => {
    const source = new FakeSource();
    source.hangLists = true;
    const { watcher } = watcherOf(source, { listPageTimeoutMs: 50 });
    watcher.start();
    try {
      await waitFor('the hung list retried', () => source.lists >= 3, { timeoutMs: 2000, intervalMs: 5 });
      source.hangLists = false;
      await waitFor('synced once the API answers', () => watcher.isSynced, {
        timeoutMs: 2000,
        intervalMs: 5,
      });
    } finally {
      await watcher.stop();
    }
  });

  it('backs off a watch that ends as soon as it opens instead of reopening it in a tight loop', async () => {
    const source = new FakeSource();
    source.endWatchesAtOnce = true;
    const { watcher } = watcherOf(source);
    watcher.start();
    await new Promise((r) => setTimeout(r, 300));
    await watcher.stop();
    // Backoff of 5 → 20 ms (full jitter) allows some tens of watches in 300 ms, a tight loop many thousands.
    expect(source.watches).toBeGreaterThan(5);
    expect(source.watches).toBeLessThan(200);
  });

  it('is live only while listed and watching: not before the list, not after the watch fails', async () => {
    const source = new FakeSource();
    source.objects.set('a', obj('a', '1'));
    const { watcher } = watcherOf(source);
    expect(watcher.isLive).toBe(false);
    watcher.start();
    try {
      await waitFor('watching', () => source.watching, { timeoutMs: 2000, intervalMs: 5 });
      expect(watcher.isLive).toBe(true);
      source.hangLists = true; // the relist after the failure does not finish
      source.breakWatch(new Error('socket hang up'));
      await waitFor('relisting', () => source.lists === 2, { timeoutMs: 2000, intervalMs: 5 });
      expect(watcher.isSynced).toBe(true);
      expect(watcher.isLive).toBe(false);
    } finally {
      await watcher.stop();
    }
  });

  it('is not live once its open watch has said nothing (not even a bookmark) past liveSilenceMs', async () => {
    const source = new FakeSource();
    const { watcher } = watcherOf(source, { liveSilenceMs: 80 });
    watcher.start();
    try {
      await waitFor('watching', () => source.watching, { timeoutMs: 2000, intervalMs: 5 });
      expect(watcher.isLive).toBe(true);
      await waitFor('silent too long', () => !watcher.isLive, { timeoutMs: 2000, intervalMs: 5 });
      expect(source.watching).toBe(true); // still open: a stall, not a failure
      source.emit('BOOKMARK', obj('', '9'));
      expect(watcher.isLive).toBe(true);
    } finally {
      await watcher.stop();
    }
  });
});
