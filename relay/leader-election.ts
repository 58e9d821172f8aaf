import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeError } from '../shared/errors.js';

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
}

const status = (error: unknown) => (error as { code?: number }).code;

/**
 * Leader election on a coordination.k8s.io Lease, in the manner of client-go: the holder renews every
 * `retryMs`; a candidate takes the Lease once it has seen no renewal for `leaseDurationMs` (measured with its
 * own clock from when it last saw the record change, so clock skew between nodes does not matter). Every
 * write is guarded by resourceVersion, so two replicas never both win. A leader that cannot renew within the
 * lease duration steps down before anyone else may take over.
 */
export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private observed: { record: string; at: number } | undefined;
  private lastRenew = 0;
  private stopped = false;
  private busy = false;

  constructor(
    kc: KubeConfig,
    private readonly opts: LeaderElectionOptions,
  ) {
    this.api = kc.makeApiClient(CoordinationV1Api);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    const tick = async () => {
      if (this.busy || this.stopped) return;
      this.busy = true;
      try {
        await this.tryAcquireOrRenew();
      } finally {
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
    while (this.busy) await new Promise((r) => setTimeout(r, 10));
    if (!this.leading) return;
    await this.setLeading(false);
    try {
      const lease = await this.api.readNamespacedLease({
        name: this.opts.name,
        namespace: this.opts.namespace,
      });
      if (lease.spec?.holderIdentity === this.opts.identity) {
        lease.spec = {
          ...lease.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: new V1MicroTime(0),
        };
        await this.api.replaceNamespacedLease({
          name: this.opts.name,
          namespace: this.opts.namespace,
          body: lease,
        });
      }
    } catch (error) {
      this.opts.log.warn({ err: describeError(error) }, 'could not release the lease');
    }
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  private async tryAcquireOrRenew(): Promise<void> {
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
    try {
      let lease: V1Lease;
      try {
        lease = await this.api.readNamespacedLease({ name, namespace });
      } catch (error) {
        if (status(error) !== 404) throw error;
        await this.api.createNamespacedLease({
          namespace,
          body: { metadata: { name, namespace }, spec: spec(0) },
        });
        return this.won(now);
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
        await this.api.replaceNamespacedLease({ name, namespace, body: lease });
        return this.won(now);
      }
      const expired = holder === '' || now - (this.observed?.at ?? now) >= this.opts.leaseDurationMs;
      if (!expired) return this.lostOrStandby(now);
      lease.spec = spec((lease.spec?.leaseTransitions ?? 0) + 1);
      await this.api.replaceNamespacedLease({ name, namespace, body: lease });
      this.opts.log.info({ previous: holder || '(released)' }, 'acquired the lease');
      return this.won(now);
    } catch (error) {
      if (status(error) !== 409) this.opts.log.warn({ err: describeError(error) }, 'lease request failed');
      return this.lostOrStandby(now);
    }
  }

  private async won(now: number): Promise<void> {
    this.lastRenew = now;
    if (!this.leading) await this.setLeading(true);
  }

  private async lostOrStandby(now: number): Promise<void> {
    // Step down before the lease can expire in the eyes of the others.
    if (this.leading && now - this.lastRenew > this.opts.leaseDurationMs - this.opts.retryMs) {
      this.opts.log.warn('could not renew the lease in time: stepping down');
      await this.setLeading(false);
    }
  }

  private async setLeading(leading: boolean): Promise<void> {
    this.leading = leading;
    if (leading) await this.opts.onStartedLeading();
    else await this.opts.onStoppedLeading();
  }
}
