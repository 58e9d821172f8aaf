// The functions on (emulated) Tencent SCF, for `npm start -- --runtime scf`, the benchmark and e2e tests: the
// bundle built by infra/scripts/build-scf.mjs, deployed to the Tencent emulator as serverless.yml declares it
// (handler, timeout, memory, literal environment, timers), and the relay's own key to wake it (allowed only
// scf:Invoke on this function by infra/cam/relay-invoke-policy.json, as in the cloud).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { CamPolicy } from '../tencent-emulator/cam.js';
import type { ScfFunctionConfig, ScfTimerTrigger } from '../tencent-emulator/scf.js';
import type { TencentEmulator } from '../tencent-emulator/server.js';
import { REPO_ROOT } from './paths.js';

export const SERVERLESS_FILE = path.join(REPO_ROOT, 'serverless.yml');
export const SCF_BUNDLE_DIR = path.join(REPO_ROOT, 'dist', 'scf');
export const RELAY_INVOKE_POLICY_FILE = path.join(REPO_ROOT, 'infra', 'cam', 'relay-invoke-policy.json');

const Serverless = z.object({
  inputs: z.object({
    name: z.string(),
    handler: z.string(),
    runtime: z.string(),
    region: z.string(),
    memorySize: z.number().int(),
    timeout: z.number().int(),
    environment: z.object({ variables: z.record(z.string(), z.union([z.string(), z.number()])) }),
    events: z.array(
      z.object({
        timer: z.object({
          parameters: z.object({
            name: z.string(),
            cronExpression: z.string(),
            enable: z.boolean().default(true),
            argument: z.string().optional(),
          }),
        }),
      }),
    ),
  }),
});

export interface ServerlessFunction {
  name: string;
  handler: string;
  runtime: string;
  timeoutSeconds: number;
  memoryMb: number;
  /** The variables with literal values (`${env:...}` ones are the deployer's to fill). */
  literalEnvironment: Record<string, string>;
  timers: ScfTimerTrigger[];
}

/** The function as serverless.yml declares it (the region and `${env:}` values are the deployer's). */
export function readServerlessFunction(file = SERVERLESS_FILE): ServerlessFunction {
  const { inputs } = Serverless.parse(parse(readFileSync(file, 'utf8')));
  const literalEnvironment: Record<string, string> = {};
  for (const [k, v] of Object.entries(inputs.environment.variables)) {
    if (!String(v).includes('${')) literalEnvironment[k] = String(v);
  }
  return {
    name: inputs.name,
    handler: inputs.handler,
    runtime: inputs.runtime,
    timeoutSeconds: inputs.timeout,
    memoryMb: inputs.memorySize,
    literalEnvironment,
    timers: inputs.events.map((e) => ({
      name: e.timer.parameters.name,
      cronExpression: e.timer.parameters.cronExpression,
      enable: e.timer.parameters.enable,
      ...(e.timer.parameters.argument === undefined ? {} : { argument: e.timer.parameters.argument }),
    })),
  };
}

/** The relay's CAM policy (infra/cam) for one function of one account. */
export function relayInvokePolicy(
  region: string,
  uin: string,
  namespace: string,
  functionName: string,
): CamPolicy {
  const text = readFileSync(RELAY_INVOKE_POLICY_FILE, 'utf8')
    .replaceAll('<REGION>', region)
    .replaceAll('<UIN>', uin)
    .replaceAll('<NAMESPACE>', namespace)
    .replaceAll('<FUNCTION_NAME>', functionName);
  return CamPolicy.parse(JSON.parse(text));
}

/** Builds dist/scf/index.js (esbuild, a second or two). */
export function buildScfBundle(): void {
  execFileSync(process.execPath, [path.join(REPO_ROOT, 'infra', 'scripts', 'build-scf.mjs')], {
    stdio: 'pipe',
  });
}

export interface DeployScfOptions {
  emulator: TencentEmulator;
  region: string;
  /** The account the emulator plays (its default). */
  uin?: string;
  /** Environment the deployer supplies (REDIS_URL, KUBECONFIG, ...); wins over serverless.yml's literals. */
  environment: Record<string, string>;
  /** Instances at most (the function's reserved concurrency). */
  concurrency: number;
  /** Overrides of what serverless.yml says (tests shorten timers and timeouts). */
  overrides?: Partial<
    Pick<ScfFunctionConfig, 'name' | 'timeoutSeconds' | 'memoryMb' | 'timers' | 'asyncRetries'>
  >;
  build?: boolean;
}

export interface DeployedScf {
  functionName: string;
  /** The relay's environment to wake it (its own key, allowed only scf:Invoke on this function). */
  relayEnv: Record<string, string>;
  /** The relay's SecretKey (tests scan for it). */
  relaySecretKey: string;
}

/** Deploys the bundle to the emulator as serverless.yml declares it; returns what the relay needs. */
export function deployScfFunction(opts: DeployScfOptions): DeployedScf {
  if (opts.build !== false) buildScfBundle();
  const serverless = readServerlessFunction();
  const declared = { ...serverless, name: opts.overrides?.name ?? serverless.name };
  const uin = opts.uin ?? '100000000001';
  opts.emulator.scf.addFunction({
    name: declared.name,
    region: opts.region,
    codeDir: SCF_BUNDLE_DIR,
    handler: declared.handler,
    runtime: declared.runtime,
    timeoutSeconds: declared.timeoutSeconds,
    memoryMb: declared.memoryMb,
    concurrency: opts.concurrency,
    environment: { ...declared.literalEnvironment, ...opts.environment },
    timers: declared.timers,
    ...opts.overrides,
  });
  const relayKey = {
    secretId: `AKIDRELAY${randomBytes(8).toString('hex').toUpperCase()}`,
    secretKey: randomBytes(24).toString('hex'),
  };
  opts.emulator.addCredential({
    ...relayKey,
    policy: relayInvokePolicy(opts.region, uin, 'default', declared.name),
  });
  return {
    functionName: declared.name,
    relaySecretKey: relayKey.secretKey,
    relayEnv: {
      SCF_WAKE_FUNCTION: declared.name,
      SCF_WAKE_REGION: opts.region,
      SCF_WAKE_SECRET_ID: relayKey.secretId,
      SCF_WAKE_SECRET_KEY: relayKey.secretKey,
      SCF_WAKE_ENDPOINT: opts.emulator.endpoint,
      SCF_WAKE_PROTOCOL: 'http://',
      SCF_WAKE_LEASE_MS: String((opts.overrides?.timeoutSeconds ?? declared.timeoutSeconds) * 1000 + 10_000),
    },
  };
}
