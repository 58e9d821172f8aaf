import type { Logger } from 'pino';
import { abortable, linkSignals } from '../shared/deadline.js';
import { describeError } from '../shared/errors.js';
import { leaseCollection } from '../shared/kube/collections.js';
import type { KubeClient } from '../shared/kube/kube-client.js';
import { leaseRequests, type Lease as V1Lease, MicroTime as V1MicroTime } from '../shared/kube/lease.js';
import {
  type Change,
  type Collection,
  ResourceWatcher,
  type WatchedObject,
  type WatchMetrics,
} from '../shared/kube/resource-watcher.js';
import {
  type ElectionState,
  type LeaseTiming,
  leaseTimingOf,
  nextRoundInMs,
  renewDeadlineMs,
  roundTimeoutMs,
} from './lease-timing.js';

/**
 * The Lease calls the elector makes (the light transport's, or a fake in unit tests): the narrow port a
 * transport swap replaces.
 */
export interface LeaseApi {
  readNamespacedLease(args: { name: string; namespace: string }, signal: AbortSignal): Promise<V1Lease>;
  createNamespacedLease(args: { namespace: string; body: V1Lease }, signal: AbortSignal): Promise<V1Lease>;
  replaceNamespacedLease(
    args: { name: string; namespace: string; body: V1Lease },
    signal: AbortSignal,
  ): Promise<V1Lease>;
  /** List + watch of this one Lease (`fieldSelector=metadata.name=<name>`), for the shared ResourceWatcher. */
  leaseCollection(args: { name: string; namespace: string }): Collection;
}

/** The Lease API over the light transport (shared/kube/kube-client.ts), each request carrying its signal. */
export function leaseApiOf(client: KubeClient): LeaseApi {
  const api = leaseRequests(client);
  return {
    readNamespacedLease: (args, signal) => api.read(args.namespace, args.name, signal),
    createNamespacedLease: (args, signal) => api.create(args.namespace, args.body, signal),
    replaceNamespacedLease: (args, signal) => api.replace(args.namespace, args.name, args.body, signal),
    leaseCollection: (args) => leaseCollection(client, args.namespace, args.name),
  };
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  /** After a failed round, the next one this much later. */
  retryMs: number;
  /** A healthy leader's renewal period (default: relay/lease-timing.ts defaultRenewMs). */
  renewMs?: number | undefined;
  onStartedLeading: () => void | Promise<void>;
  onStoppedLeading: () => void | Promise<void>;
  log: Logger;
  now?: () => number;
  /** For tests: the Lease API (default: the client's). */
  api?: LeaseApi;
  /** Counters of the Lease watch (kind `lease`); default: none. */
  watchMetrics?: WatchMetrics;
  /** The Lease watch is restarted after this long without a word, bookmarks included (default 150 s). */
  watchdogSilenceMs?: number;
}

const status = (error: unknown) => (error as { code?: number }).code;

/** What identifies one renewal: a change of any of these is a sign of life of the holder. */
function recordOf(lease: WatchedObject | V1Lease): string {
  const spec = (lease as V1Lease).spec;
  // Times as the API server wrote them (a string; a V1MicroTime of ours serialises the same way).
  const time = (t: unknown) => (t instanceof Date ? JSON.parse(JSON.stringify(t)) : (t ?? null));
  return JSON.stringify([spec?.holderIdentity ?? '', time(spec?.renewTime), spec?.leaseTransitions ?? 0]);
}

const NO_WATCH_METRICS: WatchMetrics = {
  events: { inc: () => {} },
  dropped: { inc: () => {} },
  watchRestarts: { inc: () => {} },
  relists: { inc: () => {} },
  sawEvent: () => {},
};

type RoundOutcome = 'ok' | 'failed';

/**
 * Leader election on a coordination.k8s.io Lease (docs/adr-017-lease-timing.md). Every write is guarded by
 * resourceVersion, so two replicas never both win, and a leader stops before anyone else may start:
 *   - A leader renews every `renewMs` with one PUT of the Lease its last write returned (client-go's fast
 *     path); it reads the Lease only when that PUT fails. After a failed round it retries every `retryMs`.
 *     Every round's requests time out (a hung API call cannot hold the elector), and a timer set at each
 *     renewal steps the leader down at the renew deadline (`leaseDurationMs − renewMs`) whether or not a
 *     request is still pending.
 *   - A standby does not poll. It watches the Lease (the shared ResourceWatcher, one watch re-opened every
 *     5-10 minutes) and keeps the moment it first saw the current record (holder, renewTime, transitions),
 *     by its own clock, so clock skew between nodes does not matter. Its timer fires `leaseDurationMs` after
 *     that; it then reads the Lease and takes it with a guarded PUT if the record is still the same. A
 *     released Lease (holder '') or a deleted one is tried at once. If the watch fails, the timer still
 *     fires, so the standby falls back to one read per lease duration.
 * The standby's earliest takeover (its own sighting of the last renewal + the lease duration) comes a full
 * renewal period after the leader's latest step-down (the start of its last renewal + the renew deadline).
 */
export class LeaderElector {
  private readonly api: LeaseApi;
  private readonly timing: LeaseTiming;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  /** Fires at the renew deadline unless a renewal moves it: the leader steps down on time. */
  private stepDownTimer: NodeJS.Timeout | undefined;
  private readonly stopping = new AbortController();
  private observed: { record: string; at: number; holder: string; exists: boolean } | undefined;
  private lastRenew = 0;
  private lastRoundFailed = false;
  /** The Lease as our last successful write returned it (with its resourceVersion), while we lead. */
  private held: V1Lease | undefined;
  private stopped = false;
  private busy = false;
  private watcher: ResourceWatcher<'lease'> | undefined;

  constructor(
    client: KubeClient | undefined,
    private readonly opts: LeaderElectionOptions,
  ) {
    if (!opts.api && !client) throw new Error('LeaderElector needs a client or a Lease API');
    this.api = opts.api ?? leaseApiOf(client as KubeClient);
    this.timing = leaseTimingOf({
      durationMs: opts.leaseDurationMs,
      renewMs: opts.renewMs,
      retryMs: opts.retryMs,
    });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The timing in force (renewal derived when not set). */
  get leaseTiming(): LeaseTiming {
    return this.timing;
  }

  start(): void {
    const { name, namespace } = this.opts;
    this.watcher = new ResourceWatcher(
      {
        kind: 'lease',
        keyOf: (obj) => obj.metadata?.name ?? '',
        fingerprintOf: recordOf,
        ...this.api.leaseCollection({ name, namespace }),
      },
      {
        watchdogSilenceMs: this.opts.watchdogSilenceMs ?? 150_000,
        reportInitialList: true,
        onChange: (change) => this.onWatched(change),
        log: this.opts.log,
        metrics: this.opts.watchMetrics ?? NO_WATCH_METRICS,
      },
    );
    this.watcher.start();
    this.schedule(0);
  }

  /** Stops campaigning; a leader gives the Lease up so a standby can take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.stopping.abort();
    const watcherStopped = this.watcher?.stop();
    while (this.busy) await new Promise((r) => setTimeout(r, 10));
    await watcherStopped;
    if (!this.leading) return;
    const held = this.held;
    await this.setLeading(false);
    // Giving the Lease up is a courtesy (it expires anyway): a few seconds at most.
    const signal = AbortSignal.timeout(Math.max(1000, this.timing.retryMs));
    const release = (lease: V1Lease) =>
      this.call(
        this.api.replaceNamespacedLease(
          {
            name: this.opts.name,
            namespace: this.opts.namespace,
            body: {
              ...lease,
              spec: {
                ...lease.spec,
                holderIdentity: '',
                leaseDurationSeconds: 1,
                renewTime: new V1MicroTime(0),
              },
            },
          },
          signal,
        ),
        signal,
      );
    try {
      // The copy of our last renewal is the Lease unless someone wrote it since (then: read, check, write).
      if (
        held &&
        (await release(held).then(
          () => true,
          (error: unknown) => {
            if (status(error) === 409) return false;
            throw error;
          },
        ))
      )
        return;
      const lease = await this.call(
        this.api.readNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace }, signal),
        signal,
      );
      if (lease.spec?.holderIdentity === this.opts.identity) await release(lease);
    } catch (error) {
      this.opts.log.warn({ err: describeError(error) }, 'could not release the lease');
    }
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** The next round, when relay/lease-timing.ts says it is due (replaces any planned one). */
  private schedule(inMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.round(), inMs);
  }

  private state(): ElectionState {
    return {
      now: this.now(),
      leading: this.leading,
      lastRoundFailed: this.lastRoundFailed,
      lastRenewAt: this.lastRenew,
      observed: this.observed,
    };
  }

  private async round(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    // One round's requests share a deadline (relay/lease-timing.ts roundTimeoutMs): a hung request ends in
    // time for another attempt before the renew deadline, a slow API server still gets its answer.
    const { signal, unlink } = linkSignals([
      this.stopping.signal,
      AbortSignal.timeout(roundTimeoutMs(this.timing)),
    ]);
    try {
      this.lastRoundFailed = (await this.tryAcquireOrRenew(signal)) === 'failed';
    } finally {
      unlink();
      this.busy = false;
    }
    this.schedule(nextRoundInMs(this.timing, this.state()));
  }

  /** What the watch saw (every renewal of the holder, a release, a deletion). */
  private onWatched(change: Change<'lease'>): void {
    if (change.key !== this.opts.name) return;
    this.observe(change.type === 'deleted' ? undefined : change.object);
    // A standby re-plans its takeover from the new sighting; a leader keeps renewing on its own timer.
    if (!this.leading && !this.busy && !this.stopped && !this.lastRoundFailed)
      this.schedule(nextRoundInMs(this.timing, this.state()));
  }

  /** Notes the Lease as seen now (undefined: there is none); the moment counts only when the record changed. */
  private observe(lease: WatchedObject | V1Lease | undefined): void {
    const record = lease ? recordOf(lease) : 'absent';
    if (this.observed?.record === record) return;
    this.observed = {
      record,
      at: this.now(),
      holder: lease ? ((lease as V1Lease).spec?.holderIdentity ?? '') : '',
      exists: lease !== undefined,
    };
  }

  /** A Lease request, cut off at `signal` even if the client does not honour it. */
  private call<T>(request: Promise<T>, signal: AbortSignal): Promise<T> {
    return abortable(request, signal, 'lease request');
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<RoundOutcome> {
    const { name, namespace, identity } = this.opts;
    const now = this.now();
    // MicroTime fields must carry six fractional digits: V1MicroTime serializes them that way.
    const spec = (transitions: number, acquired?: unknown) => ({
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.timing.durationMs / 1000),
      acquireTime: (acquired ?? new V1MicroTime(now)) as V1MicroTime,
      renewTime: new V1MicroTime(now),
      leaseTransitions: transitions,
    });
    // Fast path: renew the copy we hold. A conflict (409) or any other failure falls back to a read below.
    const held = this.held;
    this.held = undefined;
    if (
      held &&
      this.leading &&
      now - this.lastRenew < renewDeadlineMs(this.timing) &&
      held.spec?.holderIdentity === identity
    ) {
      try {
        const body: V1Lease = {
          ...held,
          spec: spec(held.spec?.leaseTransitions ?? 0, held.spec?.acquireTime),
        };
        const renewed = await this.call(
          this.api.replaceNamespacedLease({ name, namespace, body }, signal),
          signal,
        );
        return this.won(now, renewed);
      } catch (error) {
        if (signal.aborted) {
          this.opts.log.warn({ err: describeError(error) }, 'lease request failed');
          await this.lostOrStandby(now);
          return 'failed';
        }
        if (status(error) !== 409)
          this.opts.log.debug({ err: describeError(error) }, 'renewing the held lease failed: reading it');
      }
    }
    try {
      let lease: V1Lease;
      try {
        lease = await this.call(this.api.readNamespacedLease({ name, namespace }, signal), signal);
      } catch (error) {
        if (status(error) !== 404) throw error;
        this.observe(undefined);
        const created = await this.call(
          this.api.createNamespacedLease(
            { namespace, body: { metadata: { name, namespace }, spec: spec(0) } },
            signal,
          ),
          signal,
        );
        return this.won(now, created);
      }
      this.observe(lease);
      const holder = lease.spec?.holderIdentity ?? '';
      if (this.leading && holder !== identity) {
        // Someone else holds it (a fresh read, not a lagging watch): stop at once, whatever our deadline says.
        this.opts.log.warn({ holder: holder || '(released)' }, 'the lease is held by another: stepping down');
        await this.setLeading(false);
      }
      if (holder === identity) {
        lease.spec = spec(lease.spec?.leaseTransitions ?? 0, lease.spec?.acquireTime);
        const renewed = await this.call(
          this.api.replaceNamespacedLease({ name, namespace, body: lease }, signal),
          signal,
        );
        return this.won(now, renewed);
      }
      const expired = holder === '' || now - (this.observed?.at ?? now) >= this.timing.durationMs;
      if (!expired) {
        await this.lostOrStandby(now);
        return 'ok';
      }
      lease.spec = spec((lease.spec?.leaseTransitions ?? 0) + 1);
      const acquired = await this.call(
        this.api.replaceNamespacedLease({ name, namespace, body: lease }, signal),
        signal,
      );
      this.opts.log.info({ previous: holder || '(released)' }, 'acquired the lease');
      return this.won(now, acquired);
    } catch (error) {
      await this.lostOrStandby(now);
      // A conflict is an answer (someone else wrote first): look again after a retry period, as after a failure.
      if (status(error) !== 409) this.opts.log.warn({ err: describeError(error) }, 'lease request failed');
      return 'failed';
    }
  }

  private async won(now: number, lease: V1Lease): Promise<RoundOutcome> {
    if (this.stopped) return 'ok';
    // The next renewal PUTs this copy; without a resourceVersion it could not be guarded, so read instead.
    this.held = lease.metadata?.resourceVersion ? lease : undefined;
    this.observe(lease);
    this.lastRenew = now;
    this.armStepDown();
    if (!this.leading) await this.setLeading(true);
    return 'ok';
  }

  /** (Re)sets the timer that ends leadership at the renew deadline, counted from the last renewal. */
  private armStepDown(): void {
    if (this.stepDownTimer) clearTimeout(this.stepDownTimer);
    const renewedAt = this.lastRenew;
    this.stepDownTimer = setTimeout(
      () => {
        if (!this.leading || this.lastRenew !== renewedAt) return;
        this.opts.log.warn('could not renew the lease in time: stepping down');
        void this.setLeading(false);
      },
      Math.max(0, renewedAt + renewDeadlineMs(this.timing) - this.now()),
    );
  }

  private async lostOrStandby(now: number): Promise<void> {
    // Step down before the lease can expire in the eyes of the others.
    if (this.leading && now - this.lastRenew > renewDeadlineMs(this.timing)) {
      this.opts.log.warn('could not renew the lease in time: stepping down');
      await this.setLeading(false);
    }
  }

  private async setLeading(leading: boolean): Promise<void> {
    if (this.leading === leading) return;
    this.leading = leading;
    if (!leading) this.held = undefined;
    if (!leading && this.stepDownTimer) clearTimeout(this.stepDownTimer);
    if (leading) await this.opts.onStartedLeading();
    else await this.opts.onStoppedLeading();
  }
}
