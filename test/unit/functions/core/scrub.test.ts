import { describe, expect, it } from 'vitest';
import { scrubMessage } from '../../../../functions/core/scrub.js';

describe('scrubMessage', () => {
  it('keeps long Kubernetes names readable (lower case letters and digits)', () => {
    const name = `tcr.ipslongname${'abcdefghij0123456789'.repeat(3)}`;
    expect(scrubMessage(`create secrets: HTTP 403: secrets "${name}" is forbidden`)).toContain(name);
  });

  it('redacts what looks like base64 or a hex-encoded key', () => {
    const b64 = Buffer.from('user:a-long-password-for-the-registry-1234567890').toString('base64');
    expect(scrubMessage(`auth ${b64}`)).toBe('auth [redacted]');
    expect(scrubMessage(`key ${'0123456789abcdef'.repeat(3)}`)).toBe('key [redacted]');
    expect(scrubMessage('{"password":"hunter2"}')).toBe('{"password":"[redacted]"}');
  });
});
