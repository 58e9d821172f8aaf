import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createWakeMetrics } from '../../../relay/scf-wake-metrics.js';
import {
  desiredSlots,
  InvokeError,
  type Invoker,
  ScfWaker,
  type WakeEvent,
  type WakerOptions,
  type WakeStore,
} from '../../../relay/scf-waker.js';
import { backoffDelay } from '../../../shared/backoff.js';
import type { SlotView, WakeSnapshot } from '../../../shared/contracts/wake-slots.js';
import { createLogger } from '../../../shared/logging.js';

/** The slots' semantics of shared/contracts/wake-slots.ts, in memory (the Lua scripts run against Redis in e2e). */
class FakeStore implements WakeStore {
  backlog = 0;
  readonly slots = new Map<number, SlotView>();
  failInspect = false;
  async inspect(n: number): Promise<WakeSnapshot> {
    if (this.failInspect) throw new Error('Connection is closed.');
    return { backlog: this.backlog, held: [...this.slots.values()].filter((s) => s.slot < n) };
  }
  async acquire(slot: number, id: string, now: number, _lease: number, startTimeoutMs: number) {
    const s = this.slots.get(slot);
    if (s && !(s.state === 'invoked' && now - s.since >= startTimeoutMs)) return false;
    this.slots.set(slot, { slot, id, state: 'invoking', since: now });
    return true;
  }
  async markInvoked(slot: number, id: string, now: number) {
    const s = this.slots.get(slot);
    if (s?.id !== id) return false;
    this.slots.set(slot, { ...s, state: 'invoked', since: now });
    return true;
  }
  async release(slot: number, id: string) {
    if (this.slots.get(slot)?.id === id) this.slots.delete(slot);
    return 'released';
  }
  /** The invocation started (what the function's claim does). */
  run(slot: number) {
    const s = this.slots.get(slot);
    if (s) this.slots.set(slot, { ...s, state: 'running' });
  }
}

class FakeInvoker implements Invoker {
  readonly events: WakeEvent[] = [];
  failures: string[] = [];
  async invoke(event: WakeEvent): Promise<void> {
    const code = this.failures.shift();
    if (code) throw new InvokeError(code, `Invoke default/fn: injected ${code}`);
    this.events.push(event);
  }
}

function setup(over: Partial<WakerOptions> = {}) {
  const store = new FakeStore();
  const invoker = new FakeInvoker();
  const registry = new Registry();
  const metrics = createWakeMetrics(registry);
  const lines: string[] = [];
  const log = createLogger(
    'relay',
    'info',
    new Writable({
      write(chunk, _e, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
  const waker = new ScfWaker(store, invoker, metrics, log, {
    maxSlots: 4,
    jobsPerSlot: 100,
    tickMs: 20,
    leaseMs: 60_000,
    startTimeoutMs: 5000,
    backoffBaseMs: 10,
    backoffCapMs: 40,
    ...over,
  });
  const metric = async (name: string, labels?: Record<string, string>) => {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
    return (m?.values ?? [])
      .filter((v) => Object.entries(labels ?? {}).every(([k, l]) => v.labels[k] === l))
      .reduce((a, v) => a + v.value, 0);
  };
  return { store, invoker, waker, metric, lines };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('desiredSlots and backoff', () => {
  it('one slot per jobsPerSlot waiting jobs, at least one when any wait, at most the ceiling', () => {
    expect(desiredSlots(0, 100, 4)).toBe(0);
    expect(desiredSlots(1, 100, 4)).toBe(1);
    expect(desiredSlots(100, 100, 4)).toBe(1);
    expect(desiredSlots(101, 100, 4)).toBe(2);
    expect(desiredSlots(10_000, 100, 4)).toBe(4);
  });
  it('full jitter, doubling up to the cap', () => {
    expect(backoffDelay(1, 100, 1000, () => 1)).toBe(100);
    expect(backoffDelay(3, 100, 1000, () => 1)).toBe(400);
    expect(backoffDelay(10, 100, 1000, () => 1)).toBe(1000);
    expect(backoffDelay(10, 100, 1000, () => 0.5)).toBe(500);
  });
});

describe('ScfWaker', () => {
  it('coalesces a burst of pokes into one Invoke while that invocation drains', async () => {
    const { store, invoker, waker, metric } = setup();
    store.backlog = 5;
    for (let i = 0; i < 50; i++) waker.poke();
    await sleep(60);
    expect(invoker.events).toHaveLength(1);
    expect(invoker.events[0]).toEqual({
      action: 'drain',
      slot: 0,
      wake: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    expect(store.slots.get(0)?.state).toBe('invoked');
    store.run(0);
    for (let i = 0; i < 50; i++) waker.poke();
    await sleep(60);
    expect(invoker.events).toHaveLength(1);
    expect(await metric('tcr_relay_scf_wakes_coalesced_total')).toBeGreaterThan(0);
    expect(await metric('tcr_relay_scf_invocations_total')).toBe(1);
    // The invocation ends with nothing left: the waker stops looking.
    store.slots.clear();
    store.backlog = 0;
    await sleep(60);
    waker.stop();
  });

  it('adds slots while the backlog grows, up to the ceiling', async () => {
    const { store, invoker, waker } = setup();
    store.backlog = 250;
    waker.poke();
    await sleep(60);
    expect(invoker.events.map((e) => e.slot).sort()).toEqual([0, 1, 2]);
    store.backlog = 5000;
    await sleep(60);
    expect(invoker.events.map((e) => e.slot).sort()).toEqual([0, 1, 2, 3]);
    waker.stop();
  });

  it('retries a failed Invoke with backoff, frees the slot meanwhile, counts and logs each condition once', async () => {
    const { store, invoker, waker, metric, lines } = setup();
    invoker.failures = ['RequestLimitExceeded', 'RequestLimitExceeded', 'InternalError', 'InternalError'];
    store.backlog = 1;
    waker.poke();
    await sleep(400);
    expect(invoker.events).toHaveLength(1);
    expect(await metric('tcr_relay_scf_invoke_errors_total', { code: 'RequestLimitExceeded' })).toBe(2);
    expect(await metric('tcr_relay_scf_invoke_errors_total', { code: 'InternalError' })).toBe(2);
    const warnings = lines.filter((l) => l.includes('SCF Invoke failed'));
    expect(warnings).toHaveLength(2);
    expect(lines.some((l) => l.includes('SCF wake-ups work again'))).toBe(true);
    expect(store.slots.get(0)?.state).toBe('invoked');
    waker.stop();
  });

  it('never blocks or throws on poke, even with Redis down', async () => {
    const { store, invoker, waker, metric } = setup();
    store.failInspect = true;
    const started = performance.now();
    for (let i = 0; i < 1000; i++) waker.poke();
    expect(performance.now() - started).toBeLessThan(50);
    await sleep(50);
    expect(invoker.events).toHaveLength(0);
    expect(await metric('tcr_relay_scf_invoke_errors_total', { code: 'RedisError' })).toBeGreaterThan(0);
    waker.stop();
  });

  it('redoes an accepted Invoke whose invocation never started', async () => {
    let clock = 1_000_000;
    const { store, invoker, waker } = setup({ now: () => clock, startTimeoutMs: 5000 });
    store.backlog = 3;
    waker.poke();
    await sleep(40);
    expect(invoker.events).toHaveLength(1);
    clock += 6000;
    waker.poke();
    await sleep(40);
    expect(invoker.events).toHaveLength(2);
    expect(invoker.events[1]?.wake).not.toBe(invoker.events[0]?.wake);
    waker.stop();
  });
});
