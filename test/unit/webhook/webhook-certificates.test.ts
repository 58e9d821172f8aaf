import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  canonicalIp,
  readStoredCertificates,
  renewCertificates,
  type StoredCertificates,
} from '../../../webhook/certificate-keeper.js';
import {
  type CertificatePolicy,
  type CertificateState,
  type CertView,
  planCertificates,
} from '../../../webhook/plan-certificates.js';
import { issueCertificate } from '../../../webhook/x509.js';

const S = 1000;
const DNS = ['tcr-assistant-webhook.tcr-assistant-system.svc'];
const policy: CertificatePolicy = {
  caValidityMs: 1000 * S,
  caRenewBeforeMs: 300 * S,
  servingValidityMs: 100 * S,
  servingRenewBeforeMs: 30 * S,
  propagationMs: 20 * S,
  backdateMs: 0,
  dnsNames: DNS,
  ipAddresses: [],
};
const NOW = 1_800_000_000_000;

const ca = (id: string, notBefore: number, notAfter: number): CertView => ({
  id,
  notBefore,
  notAfter,
  dnsNames: [],
  ipAddresses: [],
});
const serving = (
  issuerId: string | undefined,
  notBefore: number,
  notAfter: number,
  dnsNames = DNS,
): CertView => ({
  id: `serving-${notBefore}`,
  notBefore,
  notAfter,
  issuerId,
  dnsNames,
  ipAddresses: [],
});
const caOld = ca('old', NOW - 800 * S, NOW + 200 * S);
const caFresh = ca('fresh', NOW - 10 * S, NOW + 990 * S);
const caSettled = ca('settled', NOW - 100 * S, NOW + 900 * S);

interface Case {
  title: string;
  state: CertificateState;
  newCa: boolean;
  newServing: boolean;
  keep?: string[];
}

const cases: Case[] = [
  {
    title: 'empty Secret: a CA and a serving certificate',
    state: { cas: [], servingKeyMatches: false },
    newCa: true,
    newServing: true,
  },
  {
    title: 'all fine: nothing to do',
    state: {
      cas: [caSettled],
      caKeyOf: 'settled',
      serving: serving('settled', NOW - 10 * S, NOW + 90 * S),
      servingKeyMatches: true,
    },
    newCa: false,
    newServing: false,
    keep: ['settled'],
  },
  {
    title: 'serving certificate near expiry: renewed by the same CA',
    state: {
      cas: [caSettled],
      caKeyOf: 'settled',
      serving: serving('settled', NOW - 80 * S, NOW + 20 * S),
      servingKeyMatches: true,
    },
    newCa: false,
    newServing: true,
  },
  {
    title: 'CA near expiry: a successor joins the bundle, serving certificate stays for now',
    state: {
      cas: [caOld],
      caKeyOf: 'old',
      serving: serving('old', NOW - 10 * S, NOW + 90 * S),
      servingKeyMatches: true,
    },
    newCa: true,
    newServing: false,
    keep: ['old'],
  },
  {
    title: 'new CA not yet propagated: the serving certificate keeps its old issuer',
    state: {
      cas: [caFresh, caOld],
      caKeyOf: 'fresh',
      serving: serving('old', NOW - 10 * S, NOW + 90 * S),
      servingKeyMatches: true,
    },
    newCa: false,
    newServing: false,
    keep: ['fresh', 'old'],
  },
  {
    title: 'near expiry but the new CA is not propagated yet: waits (still valid for 20 s)',
    state: {
      cas: [caFresh, caOld],
      caKeyOf: 'fresh',
      serving: serving('old', NOW - 80 * S, NOW + 20 * S),
      servingKeyMatches: true,
    },
    newCa: false,
    newServing: false,
  },
  {
    title: 'new CA propagated: the serving certificate moves to it',
    state: {
      cas: [caSettled, caOld],
      caKeyOf: 'settled',
      serving: serving('old', NOW - 10 * S, NOW + 90 * S),
      servingKeyMatches: true,
    },
    newCa: false,
    newServing: true,
    keep: ['settled', 'old'],
  },
  {
    title: 'old CA expired: dropped from the bundle',
    state: {
      cas: [caSettled, ca('gone', NOW - 1000 * S, NOW - 1)],
      caKeyOf: 'settled',
      serving: serving('settled', NOW - 10 * S, NOW + 90 * S),
      servingKeyMatches: true,
    },
    newCa: false,
    newServing: false,
    keep: ['settled'],
  },
  {
    title: 'serving certificate expired: replaced at once, even by an unpropagated CA',
    state: {
      cas: [caFresh],
      caKeyOf: 'fresh',
      serving: serving('fresh', NOW - 100 * S, NOW - 1),
      servingKeyMatches: true,
    },
    newCa: false,
    newServing: true,
  },
  {
    title: 'names changed (another Service name configured): replaced at once',
    state: {
      cas: [caSettled],
      caKeyOf: 'settled',
      serving: serving('settled', NOW - 10 * S, NOW + 90 * S, ['other.svc']),
      servingKeyMatches: true,
    },
    newCa: false,
    newServing: true,
  },
  {
    title: 'key does not match the certificate: replaced',
    state: {
      cas: [caSettled],
      caKeyOf: 'settled',
      serving: serving('settled', NOW - 10 * S, NOW + 90 * S),
      servingKeyMatches: false,
    },
    newCa: false,
    newServing: true,
  },
  {
    title: 'CA key lost: a new CA, and the serving certificate moves once it is propagated',
    state: {
      cas: [caSettled],
      serving: serving('settled', NOW - 10 * S, NOW + 90 * S),
      servingKeyMatches: true,
    },
    newCa: true,
    newServing: false,
  },
];

describe('serving certificate plan', () => {
  it.each(cases.map((c) => [c.title, c] as const))('%s', (_t, c) => {
    const plan = planCertificates(c.state, NOW, policy);
    expect({ newCa: plan.newCa, newServing: plan.newServing }).toEqual({
      newCa: c.newCa,
      newServing: c.newServing,
    });
    if (c.keep) expect(plan.keepCas).toEqual(c.keep);
    if (c.newCa || c.newServing || (c.keep && c.keep.length < c.state.cas.length))
      expect(plan.reasons.length).toBeGreaterThan(0);
  });
});

describe('issued certificates', () => {
  it('a CA and a serving certificate that Node verifies, for the Service name and loopback IPs', () => {
    const notBefore = new Date();
    const notAfter = new Date(Date.now() + 3600 * S);
    const caCert = issueCertificate({ commonName: 'test-ca', notBefore, notAfter, isCa: true });
    const leaf = issueCertificate({
      commonName: 'test',
      notBefore,
      notAfter,
      isCa: false,
      dnsNames: DNS,
      ipAddresses: ['127.1.0.9', '::1'],
      issuer: { ...caCert, commonName: 'test-ca' },
    });
    const c = new X509Certificate(caCert.certPem);
    const l = new X509Certificate(leaf.certPem);
    expect(c.ca).toBe(true);
    expect(l.ca).toBe(false);
    expect(l.checkIssued(c)).toBe(true);
    expect(l.verify(c.publicKey)).toBe(true);
    expect(l.checkHost(DNS[0] as string)).toBe(DNS[0]);
    expect(l.checkIP('127.1.0.9')).toBe('127.1.0.9');
    expect(l.checkHost('other.example.com')).toBeUndefined();
    expect(Math.abs(Date.parse(l.validTo) - notAfter.getTime())).toBeLessThan(1000);
    // A certificate valid past 2049 uses GeneralizedTime and still parses.
    const far = issueCertificate({
      commonName: 'far',
      notBefore,
      notAfter: new Date('2061-01-01T00:00:00Z'),
      isCa: true,
    });
    expect(new X509Certificate(far.certPem).validTo).toMatch(/2061/);
  });

  it('canonical IPs compare equal however they are written', () => {
    expect(canonicalIp('::1')).toBe('0:0:0:0:0:0:0:1');
    expect(canonicalIp('fd00:0::05')).toBe('fd00:0:0:0:0:0:0:5');
    expect(canonicalIp('127.0.0.1')).toBe('127.0.0.1');
  });
});

describe('a year of rotations, simulated', () => {
  // Walks the clock through several CA and serving rotations with the real issuing code, and checks at
  // every step that what is served chains to a CA that was already in the published bundle `propagationMs`
  // earlier: the API server never sees a certificate it cannot verify.
  it('never serves a certificate whose CA the API server may not know yet', { timeout: 30_000 }, () => {
    const p: CertificatePolicy = {
      ...policy,
      caValidityMs: 400 * S,
      caRenewBeforeMs: 150 * S,
      servingValidityMs: 100 * S,
      servingRenewBeforeMs: 30 * S,
      propagationMs: 20 * S,
    };
    const published = new Map<string, number>(); // CA fingerprint → first time in the bundle
    let data: Record<string, string> = {};
    let renewals = 0;
    let caRotations = 0;
    let servingMoves = 0;
    let lastServing = '';
    let stored: StoredCertificates = readStoredCertificates(data);
    for (let t = NOW; t < NOW + 2000 * S; t += 5 * S) {
      const renewed = renewCertificates(stored, t, p);
      if (renewed) {
        renewals++;
        const before = stored;
        data = renewed.data;
        stored = readStoredCertificates(data);
        if (before.state.cas.length > 0 && stored.state.caKeyOf !== before.state.caKeyOf) caRotations++;
        if (before.state.serving && stored.state.serving?.issuerId !== before.state.serving.issuerId)
          servingMoves++;
      }
      for (const c of stored.state.cas) if (!published.has(c.id)) published.set(c.id, t);
      const s = stored.state.serving;
      expect(s, `serving at +${(t - NOW) / S}s`).toBeDefined();
      expect(stored.state.servingKeyMatches).toBe(true);
      expect(s?.notAfter).toBeGreaterThan(t);
      const issuer = stored.state.cas.find((c) => c.id === s?.issuerId);
      expect(issuer, `issuer of the serving certificate at +${(t - NOW) / S}s`).toBeDefined();
      if (s && lastServing && s.id !== lastServing) {
        // A newly served certificate: the API servers have had its CA for at least propagationMs.
        const since = t - (published.get(issuer?.id ?? '') ?? t);
        expect(since, `CA age when serving moved at +${(t - NOW) / S}s`).toBeGreaterThanOrEqual(
          p.propagationMs,
        );
      }
      lastServing = s?.id ?? '';
      // Nothing expired stays in the bundle.
      expect(stored.state.cas.every((c) => c.notAfter > t)).toBe(true);
    }
    expect(caRotations).toBeGreaterThanOrEqual(4);
    expect(servingMoves).toBeGreaterThanOrEqual(4);
    expect(renewals).toBeGreaterThan(20);
  });
});
