import type { Queue } from 'bullmq';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createRelayMetrics } from '../../../relay/metrics.js';
import { Publisher } from '../../../relay/publisher.js';
import type { Enqueue } from '../../../shared/contracts/jobs.js';
import { createLogger } from '../../../shared/logging.js';

/** The one call the publisher makes on a BullMQ queue, recorded; `down` makes it fail as a stopped Redis does. */
function fakeQueue() {
  const batches: string[][] = [];
  const state = { down: false };
  const queue = {
    addBulk: async (jobs: { data: { key: { name: string } } }[]) => {
      if (state.down) throw new Error('Connection is closed.');
      batches.push(jobs.map((j) => j.data.key.name));
      return [];
    },
  } as unknown as Queue;
  return { queue, batches, state };
}

const ns = (name: string): Enqueue => ({
  key: { cluster: 'c1', kind: 'namespace', name },
  trigger: 'added',
  at: 0,
});

function publisherOn(queue: Queue, onRecovered = () => {}) {
  return new Publisher(queue, createRelayMetrics(), createLogger('relay', 'silent'), {
    maxDirty: 1000,
    flushIntervalMs: 10,
    onRecovered,
  });
}

describe('Publisher', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sets no timer while idle, hands a key after a quiet spell over at once, and batches a burst per window', async () => {
    vi.useFakeTimers();
    const { queue, batches } = fakeQueue();
    const publisher = publisherOn(queue);
    publisher.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(vi.getTimerCount()).toBe(0);
    // Keys of one tick share one write, and after a quiet spell it is not held back by the window.
    publisher.add([ns('a'), ns('b')]);
    publisher.add([ns('c'), ns('a')]);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(batches).toEqual([['b', 'c', 'a']]);
    // Within the window of that write, further keys wait for the window's end and go out together.
    await vi.advanceTimersByTimeAsync(2);
    publisher.add([ns('d')]);
    publisher.add([ns('e')]);
    await vi.advanceTimersByTimeAsync(7);
    expect(batches).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(batches).toEqual([
      ['b', 'c', 'a'],
      ['d', 'e'],
    ]);
    expect(publisher.pending).toBe(0);
    // Idle again: nothing left to wake up for.
    expect(vi.getTimerCount()).toBe(0);
    await publisher.close();
  });

  it('hands a lone key to Redis in the turn of the event loop it arrived in, not after a timer (low-load latency)', async () => {
    const { queue, batches } = fakeQueue();
    const publisher = publisherOn(queue);
    publisher.start();
    publisher.add([ns('a')]);
    // The publisher's setImmediate was queued before this one, so it has run when this resolves; a zero
    // setTimeout (Node's shortest timer is 1 ms) would still be pending.
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([['a']]);
    await publisher.close();
  });

  it('keeps dirty keys while Redis is down, retries after a backoff, then flushes and asks for a resync', async () => {
    vi.useFakeTimers();
    const { queue, batches, state } = fakeQueue();
    let recovered = 0;
    const publisher = publisherOn(queue, () => recovered++);
    publisher.start();
    state.down = true;
    publisher.add([ns('a')]);
    await vi.advanceTimersByTimeAsync(10);
    expect(publisher.healthy).toBe(false);
    expect(publisher.pending).toBe(1);
    // A retry stays armed (no new event is needed to try again).
    expect(vi.getTimerCount()).toBe(1);
    publisher.add([ns('b')]);
    state.down = false;
    await vi.advanceTimersByTimeAsync(6000);
    expect(batches.flat().sort()).toEqual(['a', 'b']);
    expect(publisher.healthy).toBe(true);
    expect(publisher.pending).toBe(0);
    expect(recovered).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
    await publisher.close();
  });
});
