import { KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { LeaderElector, type LeaseApi } from '../../../relay/leader-election.js';
import { createLogger } from '../../../shared/logging.js';
import { waitFor } from '../../support/wait.js';

/** A Lease API in memory that can be made to hang: every call then waits until its signal aborts. */
class FakeLeaseApi implements LeaseApi {
  lease: V1Lease | undefined;
  hang = false;
  calls = 0;
  abortedCalls = 0;

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
      if (!this.lease) throw Object.assign(new Error('not found'), { code: 404 });
      return structuredClone(this.lease);
    });
  }

  createNamespacedLease(args: { namespace: string; body: V1Lease }, signal: AbortSignal): Promise<V1Lease> {
    return this.answer(signal, () => {
      this.lease = { ...args.body, metadata: { ...args.body.metadata, resourceVersion: '1' } };
      return this.lease;
    });
  }

  replaceNamespacedLease(
    args: { name: string; namespace: string; body: V1Lease },
    signal: AbortSignal,
  ): Promise<V1Lease> {
    return this.answer(signal, () => {
      this.lease = args.body;
      return this.lease;
    });
  }
}

describe('LeaderElector', () => {
  it('a leader whose Lease API hangs steps down at the renew deadline, its hung calls cut off', async () => {
    const api = new FakeLeaseApi();
    const events: string[] = [];
    const startedAt = Date.now();
    let steppedDownAt = 0;
    const elector = new LeaderElector(new KubeConfig(), {
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
    const elector = new LeaderElector(new KubeConfig(), {
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
});
