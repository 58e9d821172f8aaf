import { describe, expect, it } from 'vitest';
import {
  CachedCredentialChecks,
  type CredentialCandidate,
  CredentialChooser,
} from '../../../../../functions/core/registry-tokens/credential-sources.js';
import { CredentialRejected } from '../../../../../functions/core/registry-tokens/tencent-credentials.js';
import { RetryableError, TerminalError } from '../../../../../shared/errors.js';

const key = (id: string) => ({ secretId: id, secretKey: `${id}-key` });
const candidate = (label: string, outcome: 'ok' | Error): CredentialCandidate => ({
  label,
  resolve: async () => {
    if (outcome instanceof Error) throw outcome;
    return key(label);
  },
});

describe('CredentialChooser', () => {
  it('passes over a source that does not resolve or that TCR refuses, and keeps the one that works', async () => {
    const chooser = new CredentialChooser(
      [
        candidate('missing', new TerminalError('Secret tcr-assistant-system/x does not exist')),
        candidate('refused', 'ok'),
        candidate('good', 'ok'),
      ],
      'registry tcr-a',
    );
    const used: string[] = [];
    const call = async (c: { secretId: string }) => {
      used.push(c.secretId);
      if (c.secretId === 'refused') throw new CredentialRejected('AuthFailure.SignatureFailure');
      return 'token';
    };
    expect(await chooser.use(call)).toBe('token');
    expect(await chooser.use(call)).toBe('token');
    expect(used).toEqual(['refused', 'good', 'good']);
    expect(chooser.used?.label).toBe('good');
  });

  it('does not pass over other errors (a wrong registry id is wrong with every key)', async () => {
    const chooser = new CredentialChooser([candidate('a', 'ok'), candidate('b', 'ok')], 'registry tcr-a');
    await expect(
      chooser.use(async () => Promise.reject(new TerminalError('ResourceNotFound'))),
    ).rejects.toThrow('ResourceNotFound');
  });

  it('names every source when none works: terminal, or retryable if one may come back', async () => {
    const terminal = new CredentialChooser(
      [candidate('a', new TerminalError('gone')), candidate('b', new TerminalError('bad keys'))],
      'registry tcr-a',
    );
    const error = await terminal.use(async () => 'x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TerminalError);
    expect((error as Error).message).toBe('no usable API key for registry tcr-a: a: gone; b: bad keys');
    const retry = new CredentialChooser(
      [
        candidate('a', new RetryableError('cluster c is unreachable')),
        candidate('b', new TerminalError('x')),
      ],
      'registry tcr-a',
    );
    expect(await retry.use(async () => 'x').catch((e: unknown) => e)).toBeInstanceOf(RetryableError);
  });
});

describe('CachedCredentialChecks', () => {
  it('checks a source once per ttl, and says why a source is refused', async () => {
    let reads = 0;
    let now = 0;
    const checks = new CachedCredentialChecks(
      {
        secrets: {
          readSecretData: async (_ns, name) => {
            reads += 1;
            return name === 'present' ? { SecretId: 'id', SecretKey: 'key' } : undefined;
          },
        },
        defaultCredential: undefined,
      },
      1000,
      () => now,
    );
    const ref = { namespace: 'tcr-assistant-system', name: 'present' };
    expect(await checks.check(ref)).toBeUndefined();
    expect(await checks.check(ref)).toBeUndefined();
    expect(reads).toBe(1);
    now = 1500;
    await checks.check(ref);
    expect(reads).toBe(2);
    expect(await checks.check({ namespace: 'tcr-assistant-system', name: 'absent' })).toMatch(
      /does not exist/,
    );
    expect(await checks.check({ namespace: 'kube-system', name: 'present' })).toMatch(
      /must be in namespace tcr-assistant-system/,
    );
    expect(await checks.check(undefined)).toMatch(/no Tencent Cloud API key/);
  });
});
