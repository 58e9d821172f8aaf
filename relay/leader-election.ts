import type { Logger } from 'pino';
import { abortable, linkSignals } from '../shared/deadline.js';
import { describeError } from '../shared/errors.js';
import type { KubeClient } from '../shared/kube/kube-client.js';
import { leaseRequests, type Lease as V1Lease, MicroTime as V1MicroTime } from '../shared/kube/lease.js';

/** The Lease calls the elector makes (the light transport's, or a fake in unit tests). */
export interface LeaseApi {
  readNamespacedLease(args: { name: string; namespace: string }, signal: AbortSignal): Promise<V1Lease>;
  createNamespacedLease(args: { namespace: string; body: V1Lease }, signal: AbortSignal): Promise<V1Lease>;
  replaceNamespacedLease(
    args: { name: string; namespace: string; body: V1Lease },
    signal: AbortSignal,
  ): Promise<V1Lease>;
}

/** The Lease API over the light transport (shared/kube/kube-client.ts), each request carrying its signal. */
export function leaseApiOf(client: KubeClient): LeaseApi {
  const api = leaseRequests(client);
  return {
    readNamespacedLease: (args, signal) => api.read(args.namespace, args.name, signal),
    createNamespacedLease: (args, signal) => api.create(args.namespace, args.body, signal),
    replaceNamespacedLease: (args, signal) => api.replace(args.namespace, args.name, args.body, signal),
  };
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  retryMs: number;
  onStartedLeading: () => void | Promise<void>;
  onStoppedLeading: () => void | Promise<void>;
  log: Logger;
  now?: () => number;
  /** For tests: the Lease API (default: the client's). */
  api?: LeaseApi;
}

const status = (error: unknown) => (error as { code?: number }).code;

/**
 * Leader election on a coordination.k8s.io Lease, in the manner of client-go: the holder renews every
 * `retryMs`; a candidate takes the Lease once it has seen no renewal for `leaseDurationMs` (measured with its
 * own clock from when it last saw the record change, so clock skew between nodes does not matter). Every
 * write is guarded by resourceVersion, so two replicas never both win. A leader that cannot renew within the
 * lease duration steps down before anyone else may take over: every Lease request of a round times out within
 * half the renew deadline (`leaseDurationMs - retryMs`; a hung API call cannot hold the elector), and a timer
 * set at each renewal steps the leader down at the renew deadline whether or not a request is still pending.
 * A leader renews with one PUT of the Lease its last write returned (guarded by that resourceVersion, as
 * client-go's fast path does); it reads the Lease only when that PUT fails (a conflict: someone else wrote
 * it) or when it holds no fresh copy. So a leader costs one request per retry period, a standby one GET.
 */
export class LeaderElector {
  private readonly api: LeaseApi;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  /** Fires at the renew deadline unless a renewal moves it: the leader steps down on time. */
  private stepDownTimer: NodeJS.Timeout | undefined;
  private readonly stopping = new AbortController();
  private observed: { record: string; at: number } | undefined;
  private lastRenew = 0;
  /** The Lease as our last successful write returned it (with its resourceVersion), while we lead. */
  private held: V1Lease | undefined;
  private stopped = false;
  private busy = false;

  constructor(
    client: KubeClient | undefined,
    private readonly opts: LeaderElectionOptions,
  ) {
    if (!opts.api && !client) throw new Error('LeaderElector needs a client or a Lease API');
    this.api = opts.api ?? leaseApiOf(client as KubeClient);
  }

  /** How long a leader may go without a renewal before it must stop leading. */
  private get renewDeadlineMs(): number {
    return this.opts.leaseDurationMs - this.opts.retryMs;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    const tick = async () => {
      if (this.busy || this.stopped) return;
      this.busy = true;
      // One round's requests share a deadline well below the renew deadline (half of it, at least one retry
      // period): a hung request ends in time for another round, a slow API server still gets its answer.
      const roundMs = Math.max(this.opts.retryMs, this.renewDeadlineMs / 2);
      const { signal, unlink } = linkSignals([this.stopping.signal, AbortSignal.timeout(roundMs)]);
      try {
        await this.tryAcquireOrRenew(signal);
      } finally {
        unlink();
        this.busy = false;
      }
    };
    void tick();
    this.timer = setInterval(() => void tick(), this.opts.retryMs);
  }

  /** Stops campaigning; a leader gives the Lease up so a standby can take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.stopping.abort();
    while (this.busy) await new Promise((r) => setTimeout(r, 10));
    if (!this.leading) return;
    await this.setLeading(false);
    // Giving the Lease up is a courtesy (it expires anyway): a few seconds at most.
    const signal = AbortSignal.timeout(Math.max(1000, this.opts.retryMs));
    try {
      const lease = await this.call(
        this.api.readNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace }, signal),
        signal,
      );
      if (lease.spec?.holderIdentity === this.opts.identity) {
        lease.spec = {
          ...lease.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: new V1MicroTime(0),
        };
        await this.call(
          this.api.replaceNamespacedLease(
            { name: this.opts.name, namespace: this.opts.namespace, body: lease },
            signal,
          ),
          signal,
        );
      }
    } catch (error) {
      this.opts.log.warn({ err: describeError(error) }, 'could not release the lease');
    }
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** A Lease request, cut off at `signal` even if the client does not honour it. */
  private call<T>(request: Promise<T>, signal: AbortSignal): Promise<T> {
    return abortable(request, signal, 'lease request');
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<void> {
    const { name, namespace, identity } = this.opts;
    const now = this.now();
    // MicroTime fields must carry six fractional digits: V1MicroTime serializes them that way.
    const spec = (transitions: number, acquired?: unknown) => ({
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.opts.leaseDurationMs / 1000),
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
      now - this.lastRenew < this.renewDeadlineMs &&
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
          return this.lostOrStandby(now);
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
        const created = await this.call(
          this.api.createNamespacedLease(
            { namespace, body: { metadata: { name, namespace }, spec: spec(0) } },
            signal,
          ),
          signal,
        );
        return this.won(now, created);
      }
      const record = JSON.stringify([
        lease.spec?.holderIdentity,
        lease.spec?.renewTime,
        lease.spec?.leaseTransitions,
      ]);
      if (this.observed?.record !== record) this.observed = { record, at: now };
      const holder = lease.spec?.holderIdentity ?? '';
      if (holder === identity) {
        lease.spec = spec(lease.spec?.leaseTransitions ?? 0, lease.spec?.acquireTime);
        const renewed = await this.call(
          this.api.replaceNamespacedLease({ name, namespace, body: lease }, signal),
          signal,
        );
        return this.won(now, renewed);
      }
      const expired = holder === '' || now - (this.observed?.at ?? now) >= this.opts.leaseDurationMs;
      if (!expired) return this.lostOrStandby(now);
      lease.spec = spec((lease.spec?.leaseTransitions ?? 0) + 1);
      const acquired = await this.call(
        this.api.replaceNamespacedLease({ name, namespace, body: lease }, signal),
        signal,
      );
      this.opts.log.info({ previous: holder || '(released)' }, 'acquired the lease');
      return this.won(now, acquired);
    } catch (error) {
      if (status(error) !== 409) this.opts.log.warn({ err: describeError(error) }, 'lease request failed');
      return this.lostOrStandby(now);
    }
  }

  private async won(now: number, lease: V1Lease): Promise<void> {
    if (this.stopped) return;
    // The next renewal PUTs this copy; without a resourceVersion it could not be guarded, so read instead.
    this.held = lease.metadata?.resourceVersion ? lease : undefined;
    this.lastRenew = now;
    this.armStepDown();
    if (!this.leading) await this.setLeading(true);
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
      Math.max(0, renewedAt + this.renewDeadlineMs - this.now()),
    );
  }

  private async lostOrStandby(now: number): Promise<void> {
    // Step down before the lease can expire in the eyes of the others.
    if (this.leading && now - this.lastRenew > this.renewDeadlineMs) {
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
