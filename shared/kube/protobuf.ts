// Our Secret writes in the API server's protobuf encoding (application/vnd.kubernetes.protobuf), both ways:
// a JSON body costs kube-apiserver a JSON decode, and a JSON answer a JSON encode, on every create and rewrite
// (issue #15: 7–12 % of its CPU per rewrite of our Secret, bench/results/protobuf-writes-2026-11-30.md); client-go speaks protobuf
// for core types for the same reason. Only what we write and read back: ObjectMeta's name, namespace,
// resourceVersion, labels, annotations, ownerReferences; Secret's type and data; an answer's metadata; a
// Status. Field numbers: k8s.io/api core/v1, k8s.io/apimachinery meta/v1 and runtime generated.proto (v0.34).

export const PROTOBUF = 'application/vnd.kubernetes.protobuf';

/** The four bytes before every protobuf object of the API server: "k8s" and a zero. */
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

export interface ProtoOwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean | undefined;
  blockOwnerDeletion?: boolean | undefined;
}

export interface ProtoSecret {
  metadata: {
    name: string;
    namespace?: string | undefined;
    resourceVersion?: string | undefined;
    labels?: Record<string, string> | undefined;
    annotations?: Record<string, string> | undefined;
    ownerReferences?: ProtoOwnerReference[] | undefined;
  };
  type?: string | undefined;
  /** Base64, as in JSON; protobuf carries the bytes. */
  data?: Record<string, string> | undefined;
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** A length-delimited field (wire type 2). */
function bytesField(field: number, value: Buffer): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(value.length), value]);
}

function stringField(field: number, value: string | undefined): Buffer[] {
  return value === undefined ? [] : [bytesField(field, Buffer.from(value, 'utf8'))];
}

function boolField(field: number, value: boolean | undefined): Buffer[] {
  return value === undefined ? [] : [Buffer.concat([varint(field << 3), varint(value ? 1 : 0)])];
}

/** A map field: one entry message (key = 1, value = 2) per key, in key order (as Go writes them). */
function mapField(field: number, map: Record<string, Buffer> | undefined): Buffer[] {
  return Object.keys(map ?? {})
    .sort()
    .map((k) =>
      bytesField(field, Buffer.concat([bytesField(1, Buffer.from(k, 'utf8')), bytesField(2, map![k]!)])),
    );
}

const utf8Map = (m: Record<string, string> | undefined) =>
  m && Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Buffer.from(v, 'utf8')]));

function encodeOwner(o: ProtoOwnerReference): Buffer {
  return Buffer.concat([
    ...stringField(1, o.kind),
    ...stringField(3, o.name),
    ...stringField(4, o.uid),
    ...stringField(5, o.apiVersion),
    ...boolField(6, o.controller),
    ...boolField(7, o.blockOwnerDeletion),
  ]);
}

/** The request body of a create or replace of `secret`, with the envelope the API server expects. */
export function encodeSecret(secret: ProtoSecret): Buffer {
  const m = secret.metadata;
  const meta = Buffer.concat([
    ...stringField(1, m.name),
    ...stringField(3, m.namespace),
    ...stringField(6, m.resourceVersion),
    ...mapField(11, utf8Map(m.labels)),
    ...mapField(12, utf8Map(m.annotations)),
    ...(m.ownerReferences ?? []).map((o) => bytesField(13, encodeOwner(o))),
  ]);
  const data =
    secret.data &&
    Object.fromEntries(Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
  const raw = Buffer.concat([bytesField(1, meta), ...mapField(2, data), ...stringField(3, secret.type)]);
  const typeMeta = Buffer.concat([...stringField(1, 'v1'), ...stringField(2, 'Secret')]);
  return Buffer.concat([MAGIC, bytesField(1, typeMeta), bytesField(2, raw)]);
}

/** One message's fields by number: length-delimited ones as bytes, varints as numbers (the last one wins). */
function fieldsOf(buf: Buffer): { bytes: Map<number, Buffer>; ints: Map<number, number> } {
  const bytes = new Map<number, Buffer>();
  const ints = new Map<number, number>();
  let i = 0;
  const read = () => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (i >= buf.length) throw new Error('protobuf: truncated');
      const b = buf[i++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (i < buf.length) {
    const tag = read();
    const wire = tag % 8;
    const field = Math.floor(tag / 8);
    if (wire === 0) ints.set(field, read());
    else if (wire === 2) {
      const len = read();
      if (i + len > buf.length) throw new Error('protobuf: truncated');
      bytes.set(field, buf.subarray(i, i + len));
      i += len;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`protobuf: wire type ${wire} not expected`);
  }
  return { bytes, ints };
}

const EMPTY = Buffer.alloc(0);
const text = (b: Buffer | undefined) => b?.toString('utf8') ?? '';

/** The envelope's kind and the object's bytes; throws when `body` is not a Kubernetes protobuf object. */
function unwrap(body: Buffer): { kind: string; raw: Buffer } {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC))
    throw new Error('protobuf: not a Kubernetes object');
  const unknown = fieldsOf(body.subarray(4)).bytes;
  return { kind: text(fieldsOf(unknown.get(1) ?? EMPTY).bytes.get(2)), raw: unknown.get(2) ?? EMPTY };
}

/** The kind and metadata (name, namespace, uid, resourceVersion) of a protobuf answer of the API server. */
export function decodeObjectMeta(body: Buffer): {
  kind: string;
  name: string;
  namespace: string;
  uid: string;
  resourceVersion: string;
} {
  const { kind, raw } = unwrap(body);
  const meta = fieldsOf(fieldsOf(raw).bytes.get(1) ?? EMPTY).bytes;
  return {
    kind,
    name: text(meta.get(1)),
    namespace: text(meta.get(3)),
    uid: text(meta.get(5)),
    resourceVersion: text(meta.get(6)),
  };
}

/** A protobuf Status (an error answer): its code, reason and message; undefined when `body` is not one. */
export function decodeStatus(body: Buffer): { code: number; reason: string; message: string } | undefined {
  try {
    const { kind, raw } = unwrap(body);
    if (kind !== 'Status') return undefined;
    const f = fieldsOf(raw);
    return { code: f.ints.get(6) ?? 0, reason: text(f.bytes.get(4)), message: text(f.bytes.get(3)) };
  } catch {
    return undefined;
  }
}
