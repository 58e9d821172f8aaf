import { describe, expect, it } from 'vitest';
import { decodeObjectMeta, decodeStatus, encodeSecret } from '../../../shared/kube/protobuf.js';

// A minimal reader of the protobuf wire format, independent of the module under test: every field of a
// message in order, as [number, value], value a Buffer (length-delimited) or a number (varint).
function readMessage(buf: Buffer): [number, Buffer | number][] {
  const out: [number, Buffer | number][] = [];
  let i = 0;
  const varint = () => {
    let v = 0;
    let shift = 1;
    for (;;) {
      const b = buf[i++]!;
      v += (b & 0x7f) * shift;
      shift *= 128;
      if (b < 0x80) return v;
    }
  };
  while (i < buf.length) {
    const tag = varint();
    if (tag % 8 === 0) out.push([tag >> 3, varint()]);
    else {
      const len = varint();
      out.push([tag >> 3, buf.subarray(i, i + len)]);
      i += len;
    }
  }
  return out;
}
const str = (v: Buffer | number | undefined) => (Buffer.isBuffer(v) ? v.toString('utf8') : v);
const field = (fields: [number, Buffer | number][], n: number) =>
  fields.filter(([k]) => k === n).map(([, v]) => v);
const entries = (fields: [number, Buffer | number][], n: number) =>
  field(fields, n).map((e) => {
    const kv = readMessage(e as Buffer);
    return [str(field(kv, 1)[0]), field(kv, 2)[0]] as const;
  });

/** Builds an envelope as the API server writes one: "k8s\0", then Unknown { typeMeta, raw }. */
function envelope(kind: string, raw: Buffer): Buffer {
  const ld = (n: number, b: Buffer) => Buffer.concat([Buffer.from([(n << 3) | 2, b.length]), b]);
  const typeMeta = Buffer.concat([ld(1, Buffer.from('v1')), ld(2, Buffer.from(kind))]);
  return Buffer.concat([Buffer.from([0x6b, 0x38, 0x73, 0x00]), ld(1, typeMeta), ld(2, raw)]);
}
const ld = (n: number, b: Buffer | string) => {
  const v = Buffer.isBuffer(b) ? b : Buffer.from(b);
  return Buffer.concat([Buffer.from([(n << 3) | 2, v.length]), v]);
};

describe('encodeSecret', () => {
  const secret = {
    metadata: {
      name: 'tcr.ipsdemo',
      namespace: 'team-a',
      resourceVersion: '42',
      labels: { 'z.example/last': 'z', 'app.kubernetes.io/managed-by': 'tcr-assistant' },
      ownerReferences: [
        { apiVersion: 'tcr.tencentcloudcr.com/v1', kind: 'ImagePullSecret', name: 'demo', uid: 'u-1' },
      ],
    },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') },
  };

  it('wraps the Secret in the API server envelope: "k8s\\0", Unknown { TypeMeta v1/Secret, raw }', () => {
    const body = encodeSecret(secret);
    expect([...body.subarray(0, 4)]).toEqual([0x6b, 0x38, 0x73, 0x00]);
    const unknown = readMessage(body.subarray(4));
    const typeMeta = readMessage(field(unknown, 1)[0] as Buffer);
    expect(typeMeta.map(([n, v]) => [n, str(v)])).toEqual([
      [1, 'v1'],
      [2, 'Secret'],
    ]);
    expect(field(unknown, 2)).toHaveLength(1);
  });

  it('writes ObjectMeta, data as bytes (not base64), and type under their generated.proto numbers', () => {
    const raw = field(readMessage(encodeSecret(secret).subarray(4)), 2)[0] as Buffer;
    const s = readMessage(raw);
    const meta = readMessage(field(s, 1)[0] as Buffer);
    expect(str(field(meta, 1)[0])).toBe('tcr.ipsdemo');
    expect(str(field(meta, 3)[0])).toBe('team-a');
    expect(str(field(meta, 6)[0])).toBe('42');
    // Map entries in key order, as Go writes them.
    expect(entries(meta, 11).map(([k, v]) => [k, str(v)])).toEqual([
      ['app.kubernetes.io/managed-by', 'tcr-assistant'],
      ['z.example/last', 'z'],
    ]);
    const owner = readMessage(field(meta, 13)[0] as Buffer).map(([n, v]) => [n, str(v)]);
    expect(owner).toEqual([
      [1, 'ImagePullSecret'],
      [3, 'demo'],
      [4, 'u-1'],
      [5, 'tcr.tencentcloudcr.com/v1'],
    ]);
    expect(entries(s, 2).map(([k, v]) => [k, str(v)])).toEqual([['.dockerconfigjson', '{"auths":{}}']]);
    expect(str(field(s, 3)[0])).toBe('kubernetes.io/dockerconfigjson');
  });

  it('leaves out what is absent, and writes an owner reference boolean only when given', () => {
    const raw = field(readMessage(encodeSecret({ metadata: { name: 'x' } }).subarray(4)), 2)[0] as Buffer;
    const s = readMessage(raw);
    expect(s.map(([n]) => n)).toEqual([1]);
    expect(readMessage(field(s, 1)[0] as Buffer).map(([n, v]) => [n, str(v)])).toEqual([[1, 'x']]);
    const withFlags = encodeSecret({
      metadata: {
        name: 'x',
        ownerReferences: [
          { apiVersion: 'v1', kind: 'K', name: 'n', uid: 'u', controller: true, blockOwnerDeletion: false },
        ],
      },
    });
    const meta = readMessage(
      field(readMessage(field(readMessage(withFlags.subarray(4)), 2)[0] as Buffer), 1)[0] as Buffer,
    );
    const owner = readMessage(field(meta, 13)[0] as Buffer);
    expect(field(owner, 6)).toEqual([1]);
    expect(field(owner, 7)).toEqual([0]);
  });

  it('encodes lengths over 127 bytes as multi-byte varints (a real token is ~1.8 KB)', () => {
    const token = 'x'.repeat(2000);
    const raw = field(
      readMessage(
        encodeSecret({
          metadata: { name: 'x' },
          data: { t: Buffer.from(token).toString('base64') },
        }).subarray(4),
      ),
      2,
    )[0] as Buffer;
    expect(str(entries(readMessage(raw), 2)[0]![1])).toBe(token);
  });
});

describe('decodeObjectMeta', () => {
  it('reads kind, name, namespace, uid and resourceVersion of an answer, skipping other fields', () => {
    const meta = Buffer.concat([
      ld(1, 'tcr.ipsdemo'),
      ld(3, 'team-a'),
      ld(5, 'uid-9'),
      ld(6, '1234'),
      Buffer.from([7 << 3, 3]), // generation, a varint
      ld(11, Buffer.concat([ld(1, 'k'), ld(2, 'v')])),
    ]);
    const answer = envelope('Secret', Buffer.concat([ld(1, meta), ld(3, 'Opaque')]));
    expect(decodeObjectMeta(answer)).toEqual({
      kind: 'Secret',
      name: 'tcr.ipsdemo',
      namespace: 'team-a',
      uid: 'uid-9',
      resourceVersion: '1234',
    });
  });

  it('refuses a body that is not a Kubernetes protobuf object', () => {
    expect(() => decodeObjectMeta(Buffer.from('{"kind":"Secret"}'))).toThrow(/not a Kubernetes object/);
    expect(() =>
      decodeObjectMeta(Buffer.concat([Buffer.from([0x6b, 0x38, 0x73, 0x00]), Buffer.from([0x0a, 0x40])])),
    ).toThrow(/truncated/);
  });
});

describe('decodeStatus', () => {
  it('reads code (a varint), reason and message of a protobuf Status', () => {
    const status = envelope(
      'Status',
      Buffer.concat([
        ld(2, 'Failure'),
        ld(3, 'Operation cannot be fulfilled on secrets "x": the object has been modified'),
        ld(4, 'Conflict'),
        Buffer.from([6 << 3, 0x99, 0x03]), // 409
      ]),
    );
    expect(decodeStatus(status)).toEqual({
      code: 409,
      reason: 'Conflict',
      message: 'Operation cannot be fulfilled on secrets "x": the object has been modified',
    });
  });

  it('is undefined for JSON, plain text, or a protobuf object that is not a Status', () => {
    expect(decodeStatus(Buffer.from('{"kind":"Status","code":409}'))).toBeUndefined();
    expect(decodeStatus(Buffer.from('upstream connect error'))).toBeUndefined();
    expect(decodeStatus(envelope('Secret', ld(1, ld(1, 'x'))))).toBeUndefined();
  });
});
