import { describe, expect, it } from 'vitest';
import { LeaderElector, type LeaseApi } from '../../../relay/leader-election.js';
import type { Lease as V1Lease } from '../../../shared/kube/lease.js';
import type { Collection, WatchEventType, WatchedObject } from '../../../shared/kube/resource-watcher.js';
import { createLogger } from '../../../shared/logging.js';
import { waitFor } from '../../support/wait.js';

/** What the API server returns: JSON, times as strings (as both transports hand them over). */
const asStored = (lease: V1Lease): V1Lease => JSON.parse(JSON.stringify(lease));

/**
 * A Lease API in memory that can be made to hang: every call then waits until its signal aborts. Like the API
 * server it bumps resourceVersion on every write, refuses (409) a write of a stale one, and streams every
 * change to the watches of the Lease (unless `watchBroken`: then lists and watches fail, reads still work).
 */
class FakeLeaseApi implements LeaseApi {
  lease: V1Lease | undefined;
  hang = false;
  watchBroken = false;
  calls = 0;
  abortedCalls = 0;
  reads = 0;
  writes = 0;
  conflicts = 0;
  watchesOpened = 0;
  private version = 0;
  private readonly watches = new Set<(type: WatchEventType, obj: WatchedObject) => void>();

  /** Another client's write (e.g. someone labels the Lease): our held copy becomes stale. */
  touch(): void {
    if (this.lease)
      this.store({
        ...this.lease,
        metadata: { ...this.lease.metadata, labels: { touched: `${this.version}` } },
      });
  }

  private store(lease: V1Lease): V1Lease {
    const type = this.lease ? 'MODIFIED' : 'ADDED';
    this.lease = asStored({
      ...lease,
      metadata: { ...lease.metadata, resourceVersion: `${++this.version}` },
    });
    for (const w of this.watches) w(type, asStored(this.lease) as WatchedObject);
    return asStored(this.lease);
  }

  async answer<T>(signal: AbortSignal, result: () => T, hang = this.hang): Promise<T> {
    this.calls++;
    if (hang) {
      // A request that never returns on its own: only the signal ends it (as a dead connection would).
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      this.abortedCalls++;
      throw new Error('aborted');
    }
    return result();
  }

  readNamespacedLease(_args: { name: string; namespace: string }, signal: AbortSignal): Promise<V1Lease> {
    return this.answer(signal, () => {
      this.reads++;
      if (!this.lease) throw Object.assign(new Error('not found'), { code: 404 });
      return asStored(this.lease);
    });
  }

  createNamespacedLease(args: { namespace: string; body: V1Lease }, signal: AbortSignal): Promise<V1Lease> {
    return this.answer(signal, () => {
      this.writes++;
      if (this.lease) throw Object.assign(new Error('already exists'), { code: 409 });
      return this.store(args.body);
    });
  }

  replaceNamespacedLease(
    args: { name: string; namespace: string; body: V1Lease },
    signal: AbortSignal,
  ): Promise<V1Lease> {
    return this.answer(signal, () => {
      this.writes++;
      if (!this.lease) throw Object.assign(new Error('not found'), { code: 404 });
      if (args.body.metadata?.resourceVersion !== this.lease.metadata?.resourceVersion) {
        this.conflicts++;
        throw Object.assign(new Error('the object has been modified'), { code: 409 });
      }
      return this.store(args.body);
    });
  }

  leaseCollection(): Collection {
    return {
      listPage: async () => {
        if (this.watchBroken) throw new Error('list refused');
        return {
          items: this.lease ? [asStored(this.lease) as WatchedObject] : [],
          resourceVersion: `${this.version}`,
        };
      },
      watch: (_rv, onEvent, signal) =>
        new Promise<void>((resolve, reject) => {
          if (this.watchBroken) return reject(new Error('watch refused'));
          this.watchesOpened++;
          this.watches.add(onEvent);
          signal.addEventListener(
            'abort',
            () => {
              this.watches.delete(onEvent);
              resolve();
            },
            { once: true },
          );
        }),
    };
  }

  /** One replica's connection to this API: its own calls counted, and it alone can be made to hang. */
  client(): LeaseApi & { hang: boolean; calls: number } {
    const own = {
      hang: false,
      calls: 0,
      readNamespacedLease: (args: { name: string; namespace: string }, signal: AbortSignal) => {
        own.calls++;
        return own.hang
          ? this.answer(signal, () => this.lease!, true)
          : this.readNamespacedLease(args, signal);
      },
      createNamespacedLease: (args: { namespace: string; body: V1Lease }, signal: AbortSignal) => {
        own.calls++;
        return own.hang
          ? this.answer(signal, () => this.lease!, true)
          : this.createNamespacedLease(args, signal);
      },
      replaceNamespacedLease: (
        args: { name: string; namespace: string; body: V1Lease },
        signal: AbortSignal,
      ) => {
        own.calls++;
        return own.hang
          ? this.answer(signal, () => this.lease!, true)
          : this.replaceNamespacedLease(args, signal);
      },
      leaseCollection: () => this.leaseCollection(),
    };
    return own;
  }
}

describe('LeaderElector', () => {
  it('a leader whose Lease API hangs steps down at the renew deadline, its hung calls cut off', async () => {
    const api = new FakeLeaseApi();
    const events: string[] = [];
    const startedAt = Date.now();
    let steppedDownAt = 0;
    const elector = new LeaderElector(undefined, {
      namespace: 'tcr-assistant-system',
      name: 'relay',
      identity: 'a',
      leaseDurationMs: 600,
      retryMs: 100,
      onStartedLeading: () => {
        events.push('started');
      },
      onStoppedLeading: () => {
        events.push('stopped');
        steppedDownAt = Date.now();
      },
      log: createLogger('relay', 'silent'),
      api,
    });
    elector.start();
    try {
      await waitFor('leading', () => elector.isLeader);
      const hungAt = Date.now();
      api.hang = true;
      await waitFor('stepped down', () => !elector.isLeader, { timeoutMs: 3000 });
      // The renew deadline is lease duration − retry period = 500 ms after the last renewal, so well before
      // another replica may take the Lease (600 ms after it last saw it change).
      expect(steppedDownAt - hungAt).toBeLessThan(600);
      expect(events).toEqual(['started', 'stopped']);
      // Each round's requests were cut off (at half the renew deadline) instead of piling up.
      await waitFor('hung requests aborted', () => api.abortedCalls >= 3);
      expect(api.calls - api.abortedCalls).toBeLessThanOrEqual(Math.ceil((Date.now() - startedAt) / 100) + 2);
    } finally {
      await elector.stop();
    }
  });

  it('leads again once the API answers, and gives the Lease up when stopped', async () => {
    const api = new FakeLeaseApi();
    const elector = new LeaderElector(undefined, {
      namespace: 'tcr-assistant-system',
      name: 'relay',
      identity: 'a',
      leaseDurationMs: 600,
      retryMs: 100,
      onStartedLeading: () => {},
      onStoppedLeading: () => {},
      log: createLogger('relay', 'silent'),
      api,
    });
    elector.start();
    await waitFor('leading', () => elector.isLeader);
    api.hang = true;
    await waitFor('stepped down', () => !elector.isLeader, { timeoutMs: 3000 });
    api.hang = false;
    await waitFor('leading again', () => elector.isLeader, { timeoutMs: 3000 });
    await elector.stop();
    expect(api.lease?.spec?.holderIdentity).toBe('');
  });

  it('a leader renews with one PUT per renewal period, and reads the Lease only after a conflict', async () => {
    const api = new FakeLeaseApi();
    const elector = new LeaderElector(undefined, {
      namespace: 'tcr-assistant-system',
      name: 'relay',
      identity: 'a',
      leaseDurationMs: 600,
      retryMs: 50,
      onStartedLeading: () => {},
      onStoppedLeading: () => {},
      log: createLogger('relay', 'silent'),
      api,
    });
    elector.start();
    try {
      await waitFor('leading', () => elector.isLeader);
      const renewedAt = () => new Date(api.lease?.spec?.renewTime ?? 0).getTime();
      const since = { reads: api.reads, writes: api.writes, renewal: renewedAt() };
      await waitFor('five renewals', () => api.writes - since.writes >= 5, { timeoutMs: 3000 });
      // One request per renewal: a PUT of the copy it holds, no GET.
      expect(api.reads - since.reads).toBe(0);
      expect(api.conflicts).toBe(0);
      expect(renewedAt()).toBeGreaterThan(since.renewal);

      // Someone else writes the Lease: the next PUT conflicts, the leader reads it and renews in the same round.
      const before = { reads: api.reads, writes: api.writes };
      api.touch();
      await waitFor('conflict seen', () => api.conflicts === 1, { timeoutMs: 3000 });
      await waitFor('renewed after the read', () => api.writes - before.writes >= 3, { timeoutMs: 3000 });
      expect(api.reads - before.reads).toBe(1);
      expect(elector.isLeader).toBe(true);
      expect(api.lease?.spec?.holderIdentity).toBe('a');
      expect(api.conflicts).toBe(1);
    } finally {
      await elector.stop();
    }
    expect(api.lease?.spec?.holderIdentity).toBe('');
  });

  it('two electors on one Lease: exactly one leads, and the standby takes over when the leader stops', async () => {
    const api = new FakeLeaseApi();
    const make = (identity: string) =>
      new LeaderElector(undefined, {
        namespace: 'tcr-assistant-system',
        name: 'relay',
        identity,
        leaseDurationMs: 600,
        retryMs: 50,
        onStartedLeading: () => {},
        onStoppedLeading: () => {},
        log: createLogger('relay', 'silent'),
        api,
      });
    const a = make('a');
    const b = make('b');
    a.start();
    await waitFor('a leads', () => a.isLeader);
    b.start();
    try {
      await new Promise((r) => setTimeout(r, 400));
      expect(a.isLeader).toBe(true);
      expect(b.isLeader).toBe(false);
      expect(api.lease?.spec?.holderIdentity).toBe('a');
      expect(api.conflicts).toBe(0);
      await a.stop();
      await waitFor('b takes over', () => b.isLeader, { timeoutMs: 3000 });
    } finally {
      await a.stop();
      await b.stop();
    }
  });
  /** Two electors on one Lease, each with its own connection, and when each led (to check they never overlap). */
  function pair(timing: { leaseDurationMs: number; retryMs: number; renewMs?: number }) {
    const api = new FakeLeaseApi();
    const spans: { who: string; from: number; to?: number }[] = [];
    const make = (identity: string) => {
      const client = api.client();
      const elector = new LeaderElector(undefined, {
        namespace: 'tcr-assistant-system',
        name: 'relay',
        identity,
        ...timing,
        onStartedLeading: () => {
          spans.push({ who: identity, from: Date.now() });
        },
        onStoppedLeading: () => {
          const open = spans.findLast((s) => s.who === identity && s.to === undefined);
          if (open) open.to = Date.now();
        },
        log: createLogger('relay', 'silent'),
        api: client,
      });
      return { elector, client };
    };
    /** No moment when both led: each span ends before the next one starts. */
    const neverTwoLeaders = () => {
      const sorted = [...spans].sort((x, y) => x.from - y.from);
      for (let i = 1; i < sorted.length; i++) {
        const before = sorted[i - 1];
        expect(before?.to, `${before?.who} still led when ${sorted[i]?.who} started`).toBeDefined();
        expect(before?.to ?? Infinity).toBeLessThanOrEqual(sorted[i]?.from ?? 0);
      }
    };
    return { api, spans, a: make('a'), b: make('b'), neverTwoLeaders };
  }

  it('a standby makes no requests while the leader renews: it watches the Lease', async () => {
    const { api, a, b } = pair({ leaseDurationMs: 600, retryMs: 50 });
    a.elector.start();
    await waitFor('a leads', () => a.elector.isLeader);
    b.elector.start();
    try {
      // Its first look (the watch's list, or one GET if its first round comes first) finds a live holder;
      // after that only the watch tells it about renewals.
      await new Promise((r) => setTimeout(r, 100));
      const bCalls = b.client.calls;
      expect(bCalls).toBeLessThanOrEqual(1);
      const aCalls = a.client.calls;
      const reads = api.reads;
      await new Promise((r) => setTimeout(r, 1500)); // 2.5 lease durations, ~7 renewals
      expect(b.client.calls).toBe(bCalls);
      expect(b.elector.isLeader).toBe(false);
      // The leader: one PUT per renewal period (200 ms: a third of the lease), no reads.
      const renewals = a.client.calls - aCalls;
      expect(renewals).toBeGreaterThanOrEqual(5);
      expect(renewals).toBeLessThanOrEqual(9);
      expect(api.reads).toBe(reads);
      expect(api.watchesOpened).toBe(2);
    } finally {
      await a.elector.stop();
      await b.elector.stop();
    }
  });

  it('leader dies without a word: it stops at its renew deadline, the standby takes over a lease duration after the last renewal it saw, never both at once', async () => {
    const { a, b, spans, neverTwoLeaders } = pair({ leaseDurationMs: 600, retryMs: 50 });
    a.elector.start();
    await waitFor('a leads', () => a.elector.isLeader);
    b.elector.start();
    try {
      await new Promise((r) => setTimeout(r, 100));
      const diedAt = Date.now();
      a.client.hang = true; // no renewal, no release: as if its node went away
      await waitFor('b takes over', () => b.elector.isLeader, { timeoutMs: 3000 });
      // When b started leading (its callback), not when the 100 ms poll above noticed: the poll's granularity
      // alone took up to two thirds of the 150 ms slack below.
      const takeoverMs = (spans.find((s) => s.who === 'b')?.from ?? Date.now()) - diedAt;
      // Between lease duration − renewal period (it died just after a renewal) and lease duration (just before).
      expect(takeoverMs).toBeGreaterThanOrEqual(600 - 200 - 20);
      expect(takeoverMs).toBeLessThanOrEqual(600 + 150);
      expect(a.elector.isLeader).toBe(false);
      expect(spans.map((s) => s.who)).toEqual(['a', 'b']);
      neverTwoLeaders();
    } finally {
      await a.elector.stop();
      await b.elector.stop();
    }
  });

  it('leader stops (SIGTERM): it releases the Lease and the standby, watching, takes over at once', async () => {
    const { a, b, neverTwoLeaders } = pair({ leaseDurationMs: 3000, retryMs: 100 });
    a.elector.start();
    await waitFor('a leads', () => a.elector.isLeader);
    b.elector.start();
    try {
      await new Promise((r) => setTimeout(r, 100));
      const stoppedAt = Date.now();
      await a.elector.stop();
      await waitFor('b takes over', () => b.elector.isLeader, { timeoutMs: 3000, intervalMs: 5 });
      // Well within the 3 s lease: the watch brought the release (one GET and one PUT follow).
      expect(Date.now() - stoppedAt).toBeLessThan(500);
      neverTwoLeaders();
    } finally {
      await a.elector.stop();
      await b.elector.stop();
    }
  });

  it('without a working watch a standby still takes over: its timer reads the Lease once per lease duration', async () => {
    const { api, a, b, neverTwoLeaders } = pair({ leaseDurationMs: 600, retryMs: 50 });
    api.watchBroken = true;
    a.elector.start();
    await waitFor('a leads', () => a.elector.isLeader);
    b.elector.start();
    try {
      await new Promise((r) => setTimeout(r, 1300));
      // The leader renewed all along: each read found a new record, so no takeover; one read per 600 ms.
      expect(b.elector.isLeader).toBe(false);
      expect(b.client.calls).toBeGreaterThanOrEqual(2);
      expect(b.client.calls).toBeLessThanOrEqual(4);
      a.client.hang = true;
      await waitFor('b takes over', () => b.elector.isLeader, { timeoutMs: 3000 });
      neverTwoLeaders();
    } finally {
      await a.elector.stop();
      await b.elector.stop();
    }
  });

  it('refuses a timing that leaves a leader no retry before its deadline, naming the settings', () => {
    expect(
      () =>
        new LeaderElector(undefined, {
          namespace: 'n',
          name: 'relay',
          identity: 'a',
          leaseDurationMs: 15_000,
          renewMs: 7_000,
          retryMs: 2_000,
          onStartedLeading: () => {},
          onStoppedLeading: () => {},
          log: createLogger('relay', 'silent'),
          api: new FakeLeaseApi(),
        }),
    ).toThrow(
      /LEASE_DURATION_MS must be at least 2 × LEASE_RENEW_MS \+ LEASE_RETRY_MS.*LEASE_DURATION_MS 15000, LEASE_RENEW_MS 7000, LEASE_RETRY_MS 2000/,
    );
  });
});
