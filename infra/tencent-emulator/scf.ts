// Tencent SCF (Serverless Cloud Function, API 2018-04-16) as the emulator plays it: `Invoke` of a function
// whose code is a folder on this machine (the bundled dist/scf), run the way SCF runs it:
// - one process per instance (infra/tencent-emulator/scf-runtime.cjs), the code loaded once (a cold start),
//   an instance reused for later invocations while warm, one invocation at a time per instance;
// - a cold start when no warm instance is free, up to the function's concurrency limit; beyond it a
//   synchronous Invoke is refused (status 432) and an asynchronous one waits for a free instance;
// - the event and context SCF passes (context: time_limit_in_ms, memory_limit_in_mb, request_id, ...);
// - the time limit enforced by killing the instance (status 433), the memory limit too: an instance whose
//   resident memory exceeds the function's memory size is killed (434), as the container's limit would;
// - asynchronous invocations (InvocationType Event, and timer triggers) retried after an execution error
//   (twice by default, as SCF does), timer triggers from a seven-field cron.
// Execution outcomes use SCF's status codes (0 success, 430 user code error, 432 concurrency limit reached,
// 433 time limit reached, 434/439 instance gone): in Result.InvokeResult with the message in ErrMsg. Request
// errors (unknown function, bad parameters) are API errors, as the real Invoke answers them.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { scfFunctionResource } from './cam.js';
import { nextFire, parseScfCron } from './cron.js';

export const SCF_VERSION = '2018-04-16';
const RUNTIME_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'scf-runtime.cjs');
/** Event size limits of Invoke's ClientContext: 6 MB synchronous, 128 KB asynchronous. */
const SYNC_EVENT_LIMIT = 6 * 1024 * 1024;
const ASYNC_EVENT_LIMIT = 128 * 1024;
/** Log kept per function in memory (what LogType Tail and tests read); older output is dropped. */
const LOG_KEEP_BYTES = 4 * 1024 * 1024;

export interface ScfTimerTrigger {
  name: string;
  /** Seven fields: second minute hour day month weekday year. */
  cronExpression: string;
  /** The event's `Message`. */
  argument?: string;
  enable?: boolean;
}

export interface ScfFunctionConfig {
  name: string;
  namespace?: string;
  region: string;
  /** The folder SCF would unpack the code into (e.g. dist/scf). */
  codeDir: string;
  /** `<file without .js>.<export>`, e.g. index.main_handler. */
  handler: string;
  /** Informational: instances run this machine's Node. */
  runtime?: string;
  timeoutSeconds: number;
  memoryMb: number;
  environment?: Record<string, string>;
  /** Instances at most (the function's reserved concurrency). */
  concurrency: number;
  timers?: ScfTimerTrigger[];
  /** Retries of an asynchronous invocation after an execution error (SCF's default: 2). */
  asyncRetries?: number;
}

export interface ScfEmulatorOptions {
  functions?: ScfFunctionConfig[];
  /** An idle instance is kept (warm) this long, then stopped. */
  keepWarmMs?: number;
  /** Delay before an asynchronous invocation's retry. */
  asyncRetryDelayMs?: number;
  /** A cold start (process start and code load) may take this long before it counts as failed. */
  initTimeoutMs?: number;
  /** Also append each function's instance output to `<logDir>/scf-<namespace>.<name>.log`. */
  logDir?: string;
}

export type InvocationOutcome =
  | 'success'
  | 'error'
  | 'timeout'
  | 'memory'
  | 'crash'
  | 'throttled'
  | 'init-error';

export interface InvocationRecord {
  requestId: string;
  functionName: string;
  /** RequestResponse (synchronous Invoke), Event (asynchronous Invoke) or Timer. */
  type: 'RequestResponse' | 'Event' | 'Timer';
  trigger?: string;
  attempt: number;
  queuedAt: number;
  startedAt?: number;
  endedAt?: number;
  cold?: boolean;
  pid?: number;
  outcome?: InvocationOutcome;
  /** SCF status code: 0, 430, 432, 433, 434, 439. */
  statusCode?: number;
  error?: string;
}

export interface InstanceInfo {
  id: string;
  functionName: string;
  pid: number | undefined;
  state: 'starting' | 'idle' | 'busy' | 'dead';
  invocations: number;
  startedAt: number;
}

export interface ScfEmulator {
  addFunction(config: ScfFunctionConfig): void;
  /** Invokes as the API would (for timers and tests); resolves when the invocation ends. */
  invoke(
    name: string,
    event: unknown,
    type: 'RequestResponse' | 'Event',
    namespace?: string,
  ): Promise<InvocationRecord>;
  invocations(name?: string): readonly InvocationRecord[];
  instances(name?: string): readonly InstanceInfo[];
  /** What the function's instances wrote to stdout and stderr (the last 4 MB). */
  logs(name: string, namespace?: string): string;
  stop(): Promise<void>;
}

/** An API error, answered as `{"Response":{"Error":{Code,Message}}}` (server.ts maps it). */
export class ScfApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Instance {
  info: InstanceInfo;
  child: ChildProcess;
  ready: Promise<void>;
  idleTimer?: NodeJS.Timeout;
  current?: { requestId: string; settle: (outcome: Settled) => void };
}

interface Settled {
  outcome: InvocationOutcome;
  statusCode: number;
  value?: string;
  error?: string;
}

interface PendingEvent {
  record: InvocationRecord;
  event: unknown;
  done: (record: InvocationRecord) => void;
}

interface FunctionState {
  config: Required<Pick<ScfFunctionConfig, 'namespace' | 'asyncRetries'>> & ScfFunctionConfig;
  instances: Instance[];
  queue: PendingEvent[];
  log: string;
  timers: NodeJS.Timeout[];
}

const InvokeParams = z.strictObject({
  FunctionName: z.string().min(1),
  InvocationType: z.enum(['RequestResponse', 'Event']).default('RequestResponse'),
  Qualifier: z.string().default('$LATEST'),
  ClientContext: z.string().optional(),
  LogType: z.enum(['None', 'Tail']).optional(),
  Namespace: z.string().default('default'),
  RoutingKey: z.string().optional(),
});

const key = (namespace: string, name: string) => `${namespace}/${name}`;

/** An instance's resident memory (MB), from /proc; 0 when it is gone. */
function residentMb(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}
const isoSeconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export function createScfService(
  options: ScfEmulatorOptions,
  platform: { uin: string; appId: string; log: (line: string) => void },
) {
  const functions = new Map<string, FunctionState>();
  const records: InvocationRecord[] = [];
  const keepWarmMs = options.keepWarmMs ?? 5 * 60_000;
  const retryDelayMs = options.asyncRetryDelayMs ?? 1000;
  const initTimeoutMs = options.initTimeoutMs ?? 30_000;
  const pendingRetries = new Set<NodeJS.Timeout>();
  let stopped = false;
  // The memory limit, as a container's: resident memory over the function's memory size kills the instance.
  const memoryWatch = setInterval(() => {
    for (const state of functions.values()) {
      for (const instance of state.instances) {
        const rssMb = residentMb(instance.info.pid);
        if (rssMb <= state.config.memoryMb) continue;
        retire(state, instance);
        instance.child.kill('SIGKILL');
        instance.current?.settle({
          outcome: 'memory',
          statusCode: 434,
          error: `Memory limit reached: ${Math.round(rssMb)} MB used of ${state.config.memoryMb} MB`,
        });
      }
    }
  }, 500);
  memoryWatch.unref();

  function addFunction(config: ScfFunctionConfig): void {
    if (config.timeoutSeconds < 1 || config.timeoutSeconds > 900)
      throw new Error(`function ${config.name}: timeout must be 1-900 s`);
    const state: FunctionState = {
      config: { namespace: 'default', asyncRetries: 2, ...config },
      instances: [],
      queue: [],
      log: '',
      timers: [],
    };
    functions.set(key(state.config.namespace, config.name), state);
    for (const timer of config.timers ?? []) {
      if (timer.enable === false) continue;
      const schedule = parseScfCron(timer.cronExpression);
      const arm = (after: number) => {
        const at = nextFire(schedule, after);
        if (at === undefined || stopped) return;
        const handle = setTimeout(() => {
          state.timers = state.timers.filter((t) => t !== handle);
          const event = {
            Type: 'Timer',
            TriggerName: timer.name,
            Time: isoSeconds(at),
            Message: timer.argument ?? '',
          };
          void submitAsync(state, event, 'Timer', timer.name);
          arm(at);
        }, at - Date.now());
        handle.unref?.();
        state.timers.push(handle);
      };
      arm(Date.now());
    }
  }

  function find(name: string, namespace: string): FunctionState {
    const state = functions.get(key(namespace, name));
    if (!state)
      throw new ScfApiError(
        'ResourceNotFound.Function',
        `The function \`${name}\` does not exist in namespace \`${namespace}\`.`,
      );
    return state;
  }

  function appendLog(state: FunctionState, text: string): void {
    state.log = (state.log + text).slice(-LOG_KEEP_BYTES);
    if (options.logDir)
      appendFileSync(
        path.join(options.logDir, `scf-${state.config.namespace}.${state.config.name}.log`),
        text,
      );
  }

  /** A new instance: a process of its own with the function's environment only (not the emulator's). */
  function startInstance(state: FunctionState): Instance {
    const c = state.config;
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...c.environment,
      SCF_RUNTIME: c.runtime ?? 'Nodejs18.15',
      SCF_FUNCTIONNAME: c.name,
      SCF_FUNCTIONVERSION: '$LATEST',
      SCF_NAMESPACE: c.namespace,
      TENCENTCLOUD_REGION: c.region,
      TENCENTCLOUD_APPID: platform.appId,
      TENCENTCLOUD_UIN: platform.uin,
    };
    const child = spawn(process.execPath, [RUNTIME_FILE, c.codeDir, c.handler], {
      cwd: c.codeDir,
      env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const info: InstanceInfo = {
      id: randomUUID().slice(0, 8),
      functionName: c.name,
      pid: child.pid,
      state: 'starting',
      invocations: 0,
      startedAt: Date.now(),
    };
    child.stdout?.on('data', (d: Buffer) => appendLog(state, d.toString('utf8')));
    child.stderr?.on('data', (d: Buffer) => appendLog(state, d.toString('utf8')));
    const instance: Instance = { info, child, ready: Promise.resolve() };
    instance.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`instance did not start within ${initTimeoutMs} ms`));
      }, initTimeoutMs);
      child.on('message', (m: { type?: string; error?: { message?: string } }) => {
        if (m.type === 'ready') {
          clearTimeout(timer);
          resolve();
        } else if (m.type === 'init-error') {
          clearTimeout(timer);
          reject(new Error(`the code failed to load: ${m.error?.message ?? 'unknown error'}`));
        }
      });
      child.once('exit', () => {
        clearTimeout(timer);
        reject(new Error('the instance exited while starting'));
      });
    });
    instance.ready.catch(() => {});
    child.on(
      'message',
      (m: {
        type?: string;
        requestId?: string;
        ok?: boolean;
        value?: string;
        error?: { message?: string };
      }) => {
        if (m.type === 'result' && instance.current && m.requestId === instance.current.requestId) {
          instance.current.settle(
            m.ok
              ? { outcome: 'success', statusCode: 0, value: m.value ?? 'null' }
              : { outcome: 'error', statusCode: 430, error: m.error?.message ?? 'error' },
          );
        } else if (m.type === 'crash') {
          // The runtime exits after an uncaught error: the instance is not reused.
          retire(state, instance);
          instance.current?.settle({ outcome: 'crash', statusCode: 430, error: m.error?.message ?? 'crash' });
        }
      },
    );
    child.on('exit', (code, signal) => {
      retire(state, instance);
      // Killed by the heap limit or anything else while running: the invocation fails with the instance.
      instance.current?.settle({
        outcome: 'crash',
        statusCode: 439,
        error: `the instance exited (${signal ?? `code ${code}`}) during the invocation`,
      });
      if (!stopped) pump(state);
    });
    state.instances.push(instance);
    return instance;
  }

  /** Takes an instance out of service (it is dying): never placed again. */
  function retire(state: FunctionState, instance: Instance): void {
    instance.info.state = 'dead';
    if (instance.idleTimer) clearTimeout(instance.idleTimer);
    state.instances = state.instances.filter((i) => i !== instance);
  }

  /** Runs one invocation on `instance` (ready), enforcing the time limit by killing the instance. */
  function execute(state: FunctionState, instance: Instance, pending: PendingEvent, cold: boolean): void {
    const c = state.config;
    const record = pending.record;
    const limitMs = c.timeoutSeconds * 1000;
    instance.info.state = 'busy';
    instance.info.invocations += 1;
    if (instance.idleTimer) clearTimeout(instance.idleTimer);
    record.startedAt = Date.now();
    record.cold = cold;
    record.pid = instance.info.pid;
    const timer = setTimeout(() => {
      // SCF stops an invocation at its time limit; here the instance is killed with it (SIGKILL works on a
      // stopped process too), so nothing of that invocation can keep running.
      retire(state, instance);
      instance.child.kill('SIGKILL');
      settle({ outcome: 'timeout', statusCode: 433, error: `Invocation timed out after ${limitMs} ms` });
    }, limitMs);
    const settle = (s: Settled) => {
      if (instance.current?.requestId !== record.requestId) return;
      clearTimeout(timer);
      instance.current = undefined;
      record.endedAt = Date.now();
      record.outcome = s.outcome;
      record.statusCode = s.statusCode;
      if (s.error) record.error = s.error;
      (record as InvocationRecord & { value?: string }).value = s.value;
      platform.log(
        `SCF ${c.name} ${record.type}${record.trigger ? ` ${record.trigger}` : ''} ${record.requestId.slice(0, 8)} -> ${s.statusCode} ${s.outcome} (${record.endedAt - (record.startedAt ?? record.endedAt)} ms${cold ? ', cold' : ''})`,
      );
      if (instance.info.state !== 'dead') {
        instance.info.state = 'idle';
        instance.idleTimer = setTimeout(() => instance.child.kill('SIGKILL'), keepWarmMs);
        instance.idleTimer.unref?.();
      }
      pending.done(record);
      pump(state);
    };
    instance.current = { requestId: record.requestId, settle };
    const context = {
      callbackWaitsForEmptyEventLoop: true,
      memory_limit_in_mb: c.memoryMb,
      time_limit_in_ms: limitMs,
      request_id: record.requestId,
      environment: JSON.stringify({ SCF_NAMESPACE: c.namespace }),
      environ: `SCF_NAMESPACE=${c.namespace};SCF_FUNCTIONNAME=${c.name}`,
      function_version: '$LATEST',
      function_name: c.name,
      namespace: c.namespace,
      tencentcloud_region: c.region,
      tencentcloud_appid: platform.appId,
      tencentcloud_uin: platform.uin,
    };
    instance.child.send({
      type: 'invoke',
      requestId: record.requestId,
      event: pending.event,
      context,
      deadline: record.startedAt + limitMs,
    });
  }

  /** Places one pending invocation: a warm idle instance (most recently used first), else a cold start. */
  function place(state: FunctionState, pending: PendingEvent): boolean {
    const idle = state.instances.filter((i) => i.info.state === 'idle' && !i.current);
    const warm = idle.at(-1);
    if (warm) {
      warm.current = { requestId: pending.record.requestId, settle: () => {} };
      execute(state, warm, pending, false);
      return true;
    }
    if (state.instances.length >= state.config.concurrency) return false;
    const instance = startInstance(state);
    // Reserved for this invocation while it starts.
    instance.current = { requestId: pending.record.requestId, settle: () => {} };
    instance.ready.then(
      () => {
        instance.info.state = 'idle';
        execute(state, instance, pending, true);
      },
      (error: unknown) => {
        instance.current = undefined;
        const record = pending.record;
        record.startedAt = Date.now();
        record.endedAt = Date.now();
        record.cold = true;
        record.outcome = 'init-error';
        record.statusCode = 405;
        record.error = error instanceof Error ? error.message : String(error);
        instance.child.kill('SIGKILL');
        pending.done(record);
      },
    );
    return true;
  }

  /** Starts queued asynchronous invocations while instances are free. */
  function pump(state: FunctionState): void {
    while (state.queue.length > 0 && !stopped) {
      const next = state.queue[0] as PendingEvent;
      if (!place(state, next)) return;
      state.queue.shift();
    }
  }

  function newRecord(
    state: FunctionState,
    type: InvocationRecord['type'],
    trigger?: string,
  ): InvocationRecord {
    const record: InvocationRecord = {
      requestId: randomUUID(),
      functionName: state.config.name,
      type,
      attempt: 1,
      queuedAt: Date.now(),
      ...(trigger ? { trigger } : {}),
    };
    records.push(record);
    return record;
  }

  /** Asynchronous: queued until an instance is free; an execution error is retried `asyncRetries` times. */
  function submitAsync(
    state: FunctionState,
    event: unknown,
    type: 'Event' | 'Timer',
    trigger?: string,
  ): { first: InvocationRecord; finished: Promise<InvocationRecord> } {
    const first = newRecord(state, type, trigger);
    const finished = new Promise<InvocationRecord>((resolve) => {
      const attempt = (record: InvocationRecord) => {
        state.queue.push({
          record,
          event,
          done: (r) => {
            if (r.outcome === 'success' || r.attempt > state.config.asyncRetries || stopped) {
              resolve(r);
              return;
            }
            const t = setTimeout(() => {
              pendingRetries.delete(t);
              const next = newRecord(state, type, trigger);
              next.attempt = r.attempt + 1;
              attempt(next);
            }, retryDelayMs);
            pendingRetries.add(t);
          },
        });
        pump(state);
      };
      attempt(first);
    });
    return { first, finished };
  }

  /** Synchronous: runs now on a free instance, or is refused when the concurrency limit is reached. */
  function invokeSync(state: FunctionState, event: unknown): Promise<InvocationRecord> {
    const record = newRecord(state, 'RequestResponse');
    return new Promise((resolve) => {
      const pending: PendingEvent = { record, event, done: resolve };
      if (state.queue.length > 0 || !place(state, pending)) {
        record.startedAt = record.endedAt = Date.now();
        record.outcome = 'throttled';
        record.statusCode = 432;
        record.error = `Function [${state.config.name}] concurrency exceeded reserved quota (${state.config.concurrency} instances)`;
        resolve(record);
      }
    });
  }

  function parseEvent(text: string | undefined, limit: number): unknown {
    if (text === undefined || text === '') return {};
    if (Buffer.byteLength(text) > limit)
      throw new ScfApiError(
        'InvalidParameterValue.ClientContext',
        `ClientContext exceeds ${limit} bytes (the limit of this invocation type).`,
      );
    try {
      return JSON.parse(text);
    } catch {
      throw new ScfApiError('InvalidParameterValue.ClientContext', 'ClientContext is not valid JSON.');
    }
  }

  function resultOf(record: InvocationRecord, tail: string | undefined) {
    const value = (record as InvocationRecord & { value?: string }).value;
    const duration = (record.endedAt ?? 0) - (record.startedAt ?? 0);
    return {
      FunctionRequestId: record.requestId,
      RetMsg: record.outcome === 'success' ? (value ?? 'null') : '',
      ErrMsg: record.outcome === 'success' ? '' : (record.error ?? ''),
      Log: tail ?? '',
      Duration: duration,
      BillDuration: Math.ceil(duration),
      MemUsage: 0,
      InvokeResult: record.statusCode ?? 0,
    };
  }

  const definition = {
    version: SCF_VERSION,
    /** The CAM resource a request acts on (for policies scoped to one function). */
    resourceOf(action: string, params: Record<string, unknown>, region: string): string {
      if (action !== 'Invoke') return '*';
      return scfFunctionResource(
        region,
        platform.uin,
        typeof params.Namespace === 'string' ? params.Namespace : 'default',
        String(params.FunctionName ?? ''),
      );
    },
    actions: {
      async Invoke(params: Record<string, unknown>, context: { region: string }) {
        const parsed = InvokeParams.safeParse(params);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          throw new ScfApiError(
            issue?.code === 'unrecognized_keys' ? 'UnknownParameter' : 'InvalidParameterValue',
            `The value of parameter \`${issue?.path.join('.') ?? ''}\` is not valid: ${issue?.message ?? 'invalid'}.`,
          );
        }
        const p = parsed.data;
        const state = find(p.FunctionName, p.Namespace);
        if (state.config.region !== context.region)
          throw new ScfApiError(
            'ResourceNotFound.Function',
            `The function \`${p.FunctionName}\` does not exist in region \`${context.region}\`.`,
          );
        if (p.Qualifier !== '$LATEST' && p.Qualifier !== '$DEFAULT')
          throw new ScfApiError(
            'ResourceNotFound.Qualifier',
            `The version \`${p.Qualifier}\` does not exist.`,
          );
        if (p.InvocationType === 'Event') {
          const event = parseEvent(p.ClientContext, ASYNC_EVENT_LIMIT);
          const { first } = submitAsync(state, event, 'Event');
          return { Result: resultOf(first, undefined) };
        }
        const event = parseEvent(p.ClientContext, SYNC_EVENT_LIMIT);
        const record = await invokeSync(state, event);
        return { Result: resultOf(record, p.LogType === 'Tail' ? state.log.slice(-4096) : undefined) };
      },
    },
  };

  const handle: ScfEmulator = {
    addFunction,
    async invoke(name, event, type, namespace = 'default') {
      const state = find(name, namespace);
      return type === 'Event' ? submitAsync(state, event, 'Event').finished : invokeSync(state, event);
    },
    invocations: (name) => records.filter((r) => name === undefined || r.functionName === name),
    instances: (name) =>
      [...functions.values()]
        .filter((f) => name === undefined || f.config.name === name)
        .flatMap((f) => f.instances.map((i) => ({ ...i.info }))),
    logs: (name, namespace = 'default') => functions.get(key(namespace, name))?.log ?? '',
    async stop() {
      stopped = true;
      clearInterval(memoryWatch);
      for (const t of pendingRetries) clearTimeout(t);
      const exits: Promise<unknown>[] = [];
      for (const f of functions.values()) {
        for (const t of f.timers) clearTimeout(t);
        f.queue.length = 0;
        for (const i of f.instances) {
          if (i.idleTimer) clearTimeout(i.idleTimer);
          if (i.child.exitCode === null && i.child.signalCode === null) {
            exits.push(new Promise((r) => i.child.once('exit', r)));
            i.child.kill('SIGKILL');
          }
        }
      }
      await Promise.all(exits);
    },
  };
  for (const f of options.functions ?? []) addFunction(f);
  return { definition, handle };
}
