import { describe, expect, it } from 'vitest';
import { LeaderElector, type LeaseApi } from '../../../relay/leader-election.js';
import type { Lease as V1Lease } from '../../../shared/kube/lease.js';
import { createLogger } from '../../../shared/logging.js';
import { waitFor } from '../../support/wait.js';

/**
 * A Lease API in memory that can be made to hang: every call then waits until its signal aborts. Like the API
 * server it bumps resourceVersion on every write and refuses (409) a write of a stale one.
 */
class FakeLeaseApi implements LeaseApi {
  lease: V1Lease | undefined;
  hang = false;
  calls = 0;
  abortedCalls = 0;
  reads = 0;
  writes = 0;
  conflicts = 0;
  private version = 0;

  /** Another client's write (e.g. someone labels the Lease): our held copy becomes stale. */
  touch(): void {
    if (this.lease)
      this.lease = {
        ...this.lease,
        metadata: { ...this.lease.metadata, resourceVersion: `${++this.version}` },
      };
  }

  private async answer<T>(signal: AbortSignal, result: () => T): Promise<T> {
    this.calls++;
    if (this.hang) {
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
      return structuredClone(this.lease);
    });
  }

  createNamespacedLease(args: { namespace: string; body: V1Lease }, signal: AbortSignal): Promise<V1Lease> {
    return this.answer(signal, () => {
      this.writes++;
      if (this.lease) throw Object.assign(new Error('already exists'), { code: 409 });
      this.lease = {
        ...args.body,
        metadata: { ...args.body.metadata, resourceVersion: `${++this.version}` },
      };
      return structuredClone(this.lease);
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
      this.lease = {
        ...structuredClone(args.body),
        metadata: { ...args.body.metadata, resourceVersion: `${++this.version}` },
      };
      return structuredClone(this.lease);
    });
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

  it('a leader renews with one PUT per retry period, and reads the Lease only after a conflict', async () => {
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
});
