// The emulator's SCF, driven through tencentcloud-sdk-nodejs's real SCF client: instances are processes that
// load a function's code once and are reused while warm, the concurrency limit and the time limit hold, and
// asynchronous invocations queue and retry as SCF's do.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { scf } from 'tencentcloud-sdk-nodejs/tencentcloud/services/scf/index.js';
import { tcr } from 'tencentcloud-sdk-nodejs/tencentcloud/services/tcr/index.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { nextFire, parseScfCron } from '../../../infra/tencent-emulator/cron.js';
import type { ScfFunctionConfig } from '../../../infra/tencent-emulator/scf.js';
import { startTencentEmulator, type TencentEmulator } from '../../../infra/tencent-emulator/server.js';

const REGION = 'ap-guangzhou';
const KEY = { secretId: 'AKIDUNITSCF000000000000000000000000', secretKey: 'unit-scf-secret-key' };
const INVOKE_ONLY = { secretId: 'AKIDUNITSCFINVOKEONLY0000000000000', secretKey: 'unit-scf-invoke-key' };

// A function of our own making: it reports what SCF passed it and keeps a per-instance counter.
const CODE = `
let count = 0;
exports.main_handler = async (event, context) => {
  count += 1;
  if (event.throw) throw new Error('boom: ' + event.throw);
  if (event.sleepMs) await new Promise((r) => setTimeout(r, event.sleepMs));
  if (event.hang) await new Promise(() => {});
  if (event.allocMb) { globalThis.kept = Buffer.alloc(event.allocMb * 1024 * 1024, 1); await new Promise((r) => setTimeout(r, 3000)); }
  console.log('handled ' + context.request_id);
  return { event, context, count, pid: process.pid, env: process.env.GREETING, proxy: process.env.http_proxy ?? null,
    remaining: context.getRemainingTimeInMillis() };
};
exports.callback_handler = (event, context, callback) => { callback(null, { callback: true }); };
`;

let codeDir: string;
let emulator: TencentEmulator;
let running = false;

const fn = (over: Partial<ScfFunctionConfig> = {}): ScfFunctionConfig => ({
  name: 'unit-fn',
  region: REGION,
  codeDir,
  handler: 'index.main_handler',
  timeoutSeconds: 3,
  memoryMb: 128,
  concurrency: 2,
  environment: { GREETING: 'hello' },
  ...over,
});

function client(key = KEY) {
  return new scf.v20180416.Client({
    credential: key,
    region: REGION,
    profile: { httpProfile: { endpoint: emulator.endpoint, protocol: 'http://', agent: new http.Agent() } },
  });
}

async function invokeSync(event: unknown, name = 'unit-fn') {
  const r = await client().Invoke({ FunctionName: name, ClientContext: JSON.stringify(event) });
  return r.Result!;
}

const alive = (pid: number | undefined) => {
  try {
    process.kill(pid ?? -1, 0);
    return true;
  } catch {
    return false;
  }
};

beforeAll(() => {
  codeDir = mkdtempSync(path.join(os.tmpdir(), 'scf-unit-'));
  writeFileSync(path.join(codeDir, 'index.js'), CODE);
});
afterAll(() => rmSync(codeDir, { recursive: true, force: true }));
afterEach(async () => {
  if (running) await emulator.stop();
  running = false;
});

async function start(functions: ScfFunctionConfig[], extra: { asyncRetryDelayMs?: number } = {}) {
  emulator = await startTencentEmulator({
    credentials: [
      KEY,
      {
        ...INVOKE_ONLY,
        policy: {
          version: '2.0',
          statement: [
            {
              effect: 'allow',
              action: ['scf:Invoke'],
              resource: [`qcs::scf:${REGION}:uin/100000000001:namespace/default/function/unit-fn`],
            },
          ],
        },
      },
    ],
    registries: [{ registryId: 'tcr-unit', region: REGION }],
    scf: { functions, asyncRetryDelayMs: extra.asyncRetryDelayMs ?? 50 },
  });
  running = true;
}

describe('SCF Invoke (RequestResponse)', () => {
  it('runs the code with SCF’s event and context, in its own environment, and reuses the warm instance', async () => {
    await start([fn()]);
    const first = await invokeSync({ hello: 'world' });
    expect(first.InvokeResult).toBe(0);
    const out = JSON.parse(first.RetMsg!);
    expect(out.event).toEqual({ hello: 'world' });
    expect(out.context).toMatchObject({
      time_limit_in_ms: 3000,
      memory_limit_in_mb: 128,
      request_id: first.FunctionRequestId,
      function_name: 'unit-fn',
      namespace: 'default',
      tencentcloud_region: REGION,
      function_version: '$LATEST',
    });
    expect(out.remaining).toBeGreaterThan(2000);
    expect(out.env).toBe('hello');
    expect(out.proxy).toBeNull();
    const second = JSON.parse((await invokeSync({})).RetMsg!);
    expect(second.pid).toBe(out.pid);
    expect(second.count).toBe(2);
    const records = emulator.scf.invocations('unit-fn');
    expect(records.map((r) => r.cold)).toEqual([true, false]);
    expect(emulator.scf.logs('unit-fn')).toContain(`handled ${first.FunctionRequestId}`);
  });

  it('starts a cold instance when the warm one is busy, and refuses beyond the concurrency limit (432)', async () => {
    await start([fn({ concurrency: 2 })]);
    const results = await Promise.all([
      invokeSync({ sleepMs: 800 }),
      invokeSync({ sleepMs: 800 }),
      new Promise((r) => setTimeout(r, 300)).then(() => invokeSync({})),
    ]);
    expect(results.map((r) => r.InvokeResult).sort()).toEqual([0, 0, 432]);
    expect(results.find((r) => r.InvokeResult === 432)?.ErrMsg).toMatch(/concurrency exceeded/);
    const pids = new Set(results.filter((r) => r.InvokeResult === 0).map((r) => JSON.parse(r.RetMsg!).pid));
    expect(pids.size).toBe(2);
    expect(emulator.scf.instances('unit-fn').length).toBe(2);
  });

  it('kills the instance at the time limit (433); the next invocation is a cold start', async () => {
    await start([fn({ timeoutSeconds: 1 })]);
    const warm = JSON.parse((await invokeSync({})).RetMsg!).pid as number;
    const started = Date.now();
    const timedOut = await invokeSync({ hang: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(timedOut.InvokeResult).toBe(433);
    expect(timedOut.ErrMsg).toMatch(/timed out after 1000 ms/);
    await new Promise((r) => setTimeout(r, 100));
    expect(alive(warm)).toBe(false);
    const next = JSON.parse((await invokeSync({})).RetMsg!);
    expect(next.pid).not.toBe(warm);
    expect(next.count).toBe(1);
  });

  it('kills an instance whose resident memory exceeds the memory size (434)', async () => {
    await start([fn({ memoryMb: 100, timeoutSeconds: 10 })]);
    const pid = JSON.parse((await invokeSync({})).RetMsg!).pid as number;
    const result = await invokeSync({ allocMb: 150 });
    expect(result.InvokeResult).toBe(434);
    expect(result.ErrMsg).toMatch(/Memory limit reached: \d+ MB used of 100 MB/);
    await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid)).toBe(false);
  });

  it('reports a handler error (430) and supports callback-style handlers', async () => {
    await start([fn(), fn({ name: 'cb-fn', handler: 'index.callback_handler' })]);
    const failed = await invokeSync({ throw: 'x' });
    expect(failed.InvokeResult).toBe(430);
    expect(failed.ErrMsg).toBe('boom: x');
    expect(JSON.parse((await invokeSync({}, 'cb-fn')).RetMsg!)).toEqual({ callback: true });
  });

  it('answers API errors for an unknown function and for a key its CAM policy does not allow', async () => {
    await start([fn(), fn({ name: 'other-fn' })]);
    await expect(client().Invoke({ FunctionName: 'nope' })).rejects.toMatchObject({
      code: 'ResourceNotFound.Function',
    });
    await expect(
      client().Invoke({ FunctionName: 'unit-fn', InvocationType: 'Event', ClientContext: 'not json' }),
    ).rejects.toMatchObject({ code: 'InvalidParameterValue.ClientContext' });
    const limited = client(INVOKE_ONLY);
    expect((await limited.Invoke({ FunctionName: 'unit-fn', InvocationType: 'Event' })).Result).toBeDefined();
    await expect(limited.Invoke({ FunctionName: 'other-fn' })).rejects.toMatchObject({
      code: 'AuthFailure.UnauthorizedOperation',
    });
    const tcrClient = new tcr.v20190924.Client({
      credential: INVOKE_ONLY,
      region: REGION,
      profile: { httpProfile: { endpoint: emulator.endpoint, protocol: 'http://', agent: new http.Agent() } },
    });
    await expect(tcrClient.CreateInstanceToken({ RegistryId: 'tcr-unit' })).rejects.toMatchObject({
      code: 'AuthFailure.UnauthorizedOperation',
    });
  });
});

describe('SCF Invoke (Event) and timers', () => {
  it('returns at once, queues beyond the concurrency limit, and runs every event', async () => {
    await start([fn({ concurrency: 1 })]);
    const started = Date.now();
    const accepted = await Promise.all(
      [1, 2, 3].map((n) =>
        client().Invoke({
          FunctionName: 'unit-fn',
          InvocationType: 'Event',
          ClientContext: JSON.stringify({ n, sleepMs: 200 }),
        }),
      ),
    );
    expect(Date.now() - started).toBeLessThan(500);
    expect(accepted.every((a) => a.Result?.FunctionRequestId)).toBe(true);
    const deadline = Date.now() + 10_000;
    while (emulator.scf.invocations('unit-fn').some((r) => r.outcome === undefined) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const records = emulator.scf.invocations('unit-fn');
    expect(records.map((r) => r.outcome)).toEqual(['success', 'success', 'success']);
    expect(new Set(records.map((r) => r.pid)).size).toBe(1);
    // One instance at a time: each started after the previous ended.
    const sorted = [...records].sort((a, b) => a.startedAt! - b.startedAt!);
    for (let i = 1; i < sorted.length; i++)
      expect(sorted[i]!.startedAt!).toBeGreaterThanOrEqual(sorted[i - 1]!.endedAt!);
  });

  it('retries an asynchronous invocation after an execution error (twice by default)', async () => {
    await start([fn()]);
    const final = await emulator.scf.invoke('unit-fn', { throw: 'always' }, 'Event');
    expect(final.outcome).toBe('error');
    expect(emulator.scf.invocations('unit-fn').map((r) => r.attempt)).toEqual([1, 2, 3]);
  });

  it('fires timer triggers with SCF’s timer event', async () => {
    await start([
      fn({ timers: [{ name: 'every-second', cronExpression: '* * * * * * *', argument: 'drain' }] }),
    ]);
    const deadline = Date.now() + 5000;
    while (!emulator.scf.invocations('unit-fn').some((r) => r.outcome === 'success') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const record = emulator.scf.invocations('unit-fn').find((r) => r.outcome === 'success');
    expect(record).toMatchObject({ type: 'Timer', trigger: 'every-second' });
    const logs = emulator.scf.logs('unit-fn');
    expect(logs).toContain(`handled ${record?.requestId}`);
  });
});

describe('SCF cron (seven fields)', () => {
  it('parses SCF’s expressions and finds the next firing', () => {
    const everyMinute = parseScfCron('0 */1 * * * * *');
    const t = Date.UTC(2026, 0, 1, 10, 20, 30);
    expect(new Date(nextFire(everyMinute, t)!).toISOString()).toBe('2026-01-01T10:21:00.000Z');
    const half = parseScfCron('30 */1 * * * * *');
    expect(new Date(nextFire(half, t)!).toISOString()).toBe('2026-01-01T10:21:30.000Z');
    const fiveMin = parseScfCron('0 */5 * * * MON-FRI *');
    expect(new Date(nextFire(fiveMin, Date.UTC(2026, 0, 3, 0, 0, 0))!).toISOString()).toBe(
      '2026-01-05T00:00:00.000Z',
    );
    expect(() => parseScfCron('0 */1 * * * *')).toThrow(/7 fields/);
    expect(() => parseScfCron('61 * * * * * *')).toThrow(/second: "61"/);
  });
});
