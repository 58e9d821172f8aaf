import { describeError, RetryableError, TerminalError } from '../../../shared/errors.js';
import type { CredentialsRef, TencentCredential } from '../model.js';
import type { CredentialCheckPort, CredentialResolveDeps } from '../ports.js';
import { CredentialRejected, resolveTencentCredential } from './tencent-credentials.js';

// Where a CR's Tencent Cloud API key comes from is that CR's own business: its credentialsSecretRef, or (none
// given) the functions' environment. One CR's unusable source must never stand in for another's: each CR is
// checked on its own (and refused, visibly, on its own), and a token shared by several CRs is issued with the
// first source that works, trying the next when one is missing or refused by TCR.

/** TerminalErrors of resolution (wrong namespace, missing Secret or keys, no environment key) are problems. */
export async function checkCredentialSource(
  ref: CredentialsRef | undefined,
  deps: CredentialResolveDeps,
): Promise<string | undefined> {
  try {
    await resolveTencentCredential(ref, deps);
    return undefined;
  } catch (error) {
    if (error instanceof TerminalError) return error.message;
    throw error;
  }
}

/**
 * The checks for the CR views of a warm instance, remembered for `ttlMs` per source: a namespace job reads the
 * CRs every time, and should not also read each API-key Secret every time. A Secret created or fixed is seen
 * within `ttlMs`.
 */
export class CachedCredentialChecks implements CredentialCheckPort {
  private readonly cache = new Map<string, { at: number; problem: Promise<string | undefined> }>();

  constructor(
    private readonly deps: CredentialResolveDeps,
    private readonly ttlMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  check(ref: CredentialsRef | undefined): Promise<string | undefined> {
    const key = ref ? `${ref.namespace}/${ref.name}` : '(environment)';
    const hit = this.cache.get(key);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.problem;
    const problem = checkCredentialSource(ref, this.deps);
    this.cache.set(key, { at: this.now(), problem });
    // A failed read (not a verdict) is not remembered.
    problem.catch(() => this.cache.delete(key));
    return problem;
  }
}

/** One candidate key source of a token: a Secret in some cluster, or the functions' environment. */
export interface CredentialCandidate {
  /** For messages: `Secret ns/name in cluster c` or `the functions' environment`. */
  label: string;
  /** The Secret it comes from (recorded with the token, to revoke it later); undefined: the environment. */
  ref?: { cluster: string; namespace: string; name: string } | undefined;
  resolve(): Promise<TencentCredential>;
}

/**
 * Tries candidate key sources in order: one that does not resolve (missing Secret, wrong namespace) or that
 * TCR refuses (AuthFailure, UnauthorizedOperation) is passed over for the next, so a bad source named by one
 * CR cannot block a token that another source can issue. Throws, naming every source and why, only when none
 * works: retryable if any failed for a reason that may pass (an unreachable cluster, a failed read).
 */
export class CredentialChooser {
  private index = 0;
  private resolved: TencentCredential | undefined;
  private readonly problems: string[] = [];
  private retryable = false;

  constructor(
    private readonly candidates: readonly CredentialCandidate[],
    private readonly what: string,
  ) {}

  /** The source in use (after a successful call), for the token's record. */
  get used(): CredentialCandidate | undefined {
    return this.resolved ? this.candidates[this.index] : undefined;
  }

  /** Runs `call` with the current source, moving to the next one while sources are unusable or refused. */
  async use<T>(call: (credential: TencentCredential) => Promise<T>): Promise<T> {
    for (;;) {
      const candidate = this.candidates[this.index];
      if (!candidate) {
        const reasons = this.problems.length > 0 ? this.problems.join('; ') : 'no key source at all';
        const message = `no usable API key for ${this.what}: ${reasons}`;
        throw this.retryable ? new RetryableError(message) : new TerminalError(message);
      }
      if (!this.resolved) {
        try {
          this.resolved = await candidate.resolve();
        } catch (error) {
          this.passOver(candidate, error);
          continue;
        }
      }
      try {
        return await call(this.resolved);
      } catch (error) {
        if (!(error instanceof CredentialRejected)) throw error;
        this.passOver(candidate, error);
      }
    }
  }

  private passOver(candidate: CredentialCandidate, error: unknown): void {
    if (!(error instanceof TerminalError)) this.retryable = true;
    this.problems.push(`${candidate.label}: ${describeError(error)}`);
    this.resolved = undefined;
    this.index += 1;
  }
}
