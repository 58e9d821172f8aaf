import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConfigMapEventType,
  type ConfigMapSource,
  runHostsUpdater,
} from '../../../hosts-updater/agent.js';
import { HostsFileDetachedError, nodeFs } from '../../../hosts-updater/crash-safe-write.js';
import { applyHostsBlock } from '../../../hosts-updater/hosts-block.js';
import {
  formatUpdaterConfigData,
  readDesiredHosts,
  UpdaterConfigDataSchema,
} from '../../../shared/contracts/updater-config.js';
import { WatchExpiredError } from '../../../shared/kube/resource-watcher.js';
import { createLogger } from '../../../shared/logging.js';
import { waitFor } from '../../support/wait.js';

const REG = 'myreg.tencentcloudcr.com';
const BASE = '127.0.0.1 localhost\n# node line\n';

const configMap = (data: Record<string, string>): V1ConfigMap => ({
  metadata: { name: 'updater-config', namespace: 'tcr-assistant-system' },
  data,
});
const enabled = (hosts: unknown) => configMap({ enabled: 'true', hosts: JSON.stringify(hosts) });

/** An API server stand-in: the current ConfigMap, list failures on demand, a watch we can feed or break. */
class FakeSource implements ConfigMapSource {
  current: V1ConfigMap | undefined;
  lists = 0;
  failLists = 0;
  private onEvent: ((type: ConfigMapEventType, cm: V1ConfigMap) => void) | undefined;
  private endWatch: ((error?: Error) => void) | undefined;

  async list() {
    this.lists++;
    if (this.failLists > 0) {
      this.failLists--;
      throw new Error('connection refused');
    }
    return { configMap: this.current, resourceVersion: String(this.lists) };
  }

  watch(_rv: string, onEvent: (type: ConfigMapEventType, cm: V1ConfigMap) => void, signal: AbortSignal) {
    return new Promise<void>((resolve, reject) => {
      this.onEvent = onEvent;
      this.endWatch = (error) => (error ? reject(error) : resolve());
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  get watching(): boolean {
    return this.onEvent !== undefined;
  }

  emit(type: ConfigMapEventType, cm: V1ConfigMap): void {
    this.current = type === 'DELETED' ? undefined : cm;
    this.onEvent?.(type, cm);
  }

  breakWatch(error: Error): void {
    this.onEvent = undefined;
    this.endWatch?.(error);
  }
}

let root: string;
let seq = 0;
beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'hosts-agent-test-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function start(source: FakeSource, options: { resyncIntervalMs?: number; detached?: boolean } = {}) {
  const dir = path.join(root, `case-${++seq}`);
  mkdirSync(path.join(dir, 'state'), { recursive: true });
  const hostsPath = path.join(dir, 'hosts');
  writeFileSync(hostsPath, BASE);
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const stop = new AbortController();
  const run = runHostsUpdater({
    source,
    namespace: 'tcr-assistant-system',
    configMapName: 'updater-config',
    hostsPath,
    stateDir: path.join(dir, 'state'),
    log: createLogger('hosts-updater', 'debug', sink),
    signal: stop.signal,
    resyncIntervalMs: options.resyncIntervalMs ?? 60_000,
    retryInitialMs: 5,
    retryMaxMs: 20,
    fs: options.detached
      ? { ...nodeFs, stat: async (f) => ({ ...(await nodeFs.stat(f)), nlink: 0 }) }
      : nodeFs,
  });
  const hosts = () => readFileSync(hostsPath, 'utf8');
  return { hostsPath, hosts, lines, stop: () => stop.abort(), run };
}

describe('runHostsUpdater', () => {
  it('applies the listed ConfigMap, then ADDED/MODIFIED events, and removes the block on DELETED', async () => {
    const source = new FakeSource();
    source.current = enabled([{ domain: REG, ip: '10.0.0.5' }]);
    const agent = start(source);
    await waitFor(
      'block from the list',
      () => agent.hosts() === applyHostsBlock(BASE, [{ domain: REG, ip: '10.0.0.5' }]),
    );
    await waitFor('watch', () => source.watching);

    source.emit(
      'MODIFIED',
      enabled([
        { domain: REG, ip: '10.0.0.6' },
        { domain: 'b.tencentcloudcr.com', ip: 'fd00::1' },
      ]),
    );
    await waitFor(
      'updated block',
      () =>
        agent.hosts().includes(`10.0.0.6 ${REG}\nfd00::1 b.tencentcloudcr.com`) ||
        agent.hosts().includes(`fd00::1 b.tencentcloudcr.com\n10.0.0.6 ${REG}`),
    );

    source.emit('DELETED', configMap({}));
    await waitFor('block removed', () => agent.hosts() === BASE);

    source.emit('ADDED', enabled([{ domain: REG, ip: '10.0.0.7' }]));
    await waitFor('block back', () => agent.hosts().includes(`10.0.0.7 ${REG}`));
    agent.stop();
    await agent.run;
    expect(agent.lines.at(-1)).toMatchObject({ msg: 'hosts updater stopped' });
  });

  it('removes the block when disabled; leaves the file alone when data.hosts is not a JSON array', async () => {
    const source = new FakeSource();
    source.current = enabled([{ domain: REG, ip: '10.0.0.5' }]);
    const agent = start(source);
    await waitFor('watch', () => source.watching && agent.hosts().includes(REG));
    const withBlock = agent.hosts();

    source.emit('MODIFIED', configMap({ enabled: 'true', hosts: '{"domain": "half-written' }));
    await waitFor('error logged', () =>
      agent.lines.find((l) => l.msg === 'ConfigMap is invalid: hosts file left as it is'),
    );
    expect(agent.hosts()).toBe(withBlock);

    source.emit(
      'MODIFIED',
      configMap({ enabled: 'false', hosts: JSON.stringify([{ domain: REG, ip: '10.0.0.5' }]) }),
    );
    await waitFor('block removed', () => agent.hosts() === BASE);
    agent.stop();
    await agent.run;
  });

  it('skips bad entries, logging each with its reason (once, not on every resync)', async () => {
    const source = new FakeSource();
    source.current = enabled([
      { domain: '*.tencentcloudcr.com', ip: '10.0.0.1' },
      { domain: REG, ip: 'not-an-ip' },
      { domain: 'ok.tencentcloudcr.com', ip: '10.0.0.2' },
    ]);
    const agent = start(source, { resyncIntervalMs: 30 });
    await waitFor('good entry written', () => agent.hosts().includes('10.0.0.2 ok.tencentcloudcr.com'));
    await waitFor('a few resyncs', () => source.lists >= 4);
    agent.stop();
    await agent.run;
    expect(agent.hosts()).not.toContain('*.tencentcloudcr.com');
    expect(agent.hosts()).not.toContain('not-an-ip');
    const skipped = agent.lines.filter((l) => l.msg === 'skipping hosts entry');
    expect(skipped.map((l) => [l.index, l.reason])).toEqual([
      [0, 'wildcard domains are not supported by hosts files'],
      [1, '"not-an-ip" is not an IPv4 or IPv6 address'],
    ]);
  });

  it('retries a failing list with backoff, and lists again after a watch error or 410 Gone', async () => {
    const source = new FakeSource();
    source.failLists = 3;
    source.current = enabled([{ domain: REG, ip: '10.0.0.5' }]);
    const agent = start(source);
    await waitFor('applied after retries', () => agent.hosts().includes(REG) && source.watching);
    expect(source.lists).toBe(4);
    expect(agent.lines.filter((l) => l.msg === 'list/watch failed')).toHaveLength(3);

    source.current = enabled([{ domain: REG, ip: '10.0.0.9' }]); // changed while nobody watched
    source.breakWatch(new Error('socket hang up'));
    await waitFor('relisted after error', () => agent.hosts().includes(`10.0.0.9 ${REG}`) && source.watching);

    source.current = undefined;
    source.breakWatch(new WatchExpiredError('too old'));
    await waitFor('relisted after 410', () => agent.hosts() === BASE);
    agent.stop();
    await agent.run;
  });

  it('lists again every resync interval: a block removed by hand comes back', async () => {
    const source = new FakeSource();
    source.current = enabled([{ domain: REG, ip: '10.0.0.5' }]);
    const agent = start(source, { resyncIntervalMs: 40 });
    await waitFor('block', () => agent.hosts().includes(REG));
    writeFileSync(agent.hostsPath, BASE);
    await waitFor('block restored by a resync', () => agent.hosts().includes(REG));
    agent.stop();
    await agent.run;
  });

  it('stops with HostsFileDetachedError when the hosts file was replaced behind the mount', async () => {
    const source = new FakeSource();
    source.current = enabled([{ domain: REG, ip: '10.0.0.5' }]);
    const agent = start(source, { detached: true });
    await expect(agent.run).rejects.toBeInstanceOf(HostsFileDetachedError);
    expect(agent.hosts()).toBe(BASE);
  });
});

describe('ConfigMap contract', () => {
  it('reads absent, disabled, enabled and invalid ConfigMaps', () => {
    expect(readDesiredHosts(undefined)).toEqual({ state: 'absent' });
    expect(readDesiredHosts(configMap({ enabled: 'yes' }))).toEqual({ state: 'disabled', enabled: 'yes' });
    expect(readDesiredHosts(configMap({}))).toEqual({ state: 'disabled', enabled: undefined });
    expect(readDesiredHosts(configMap({ enabled: 'true' }))).toEqual({
      state: 'enabled',
      entries: [],
      rejected: [],
    });
    expect(readDesiredHosts(configMap({ enabled: 'true', hosts: '{}' }))).toMatchObject({ state: 'invalid' });
    expect(readDesiredHosts(configMap({ enabled: 'true', hosts: '[' }))).toMatchObject({ state: 'invalid' });
    expect(
      readDesiredHosts(
        enabled([
          { domain: REG, ip: '10.0.0.5' },
          { domain: 'x y', ip: '1.1.1.1' },
        ]),
      ),
    ).toMatchObject({
      state: 'enabled',
      entries: [{ domain: REG, ip: '10.0.0.5' }],
      rejected: [{ index: 1 }],
    });
  });

  it('the strict schema accepts what formatUpdaterConfigData writes and names bad fields', () => {
    const data = formatUpdaterConfigData(true, [{ domain: REG, ip: '10.0.0.5' }]);
    expect(data).toEqual({ enabled: 'true', hosts: `[{"domain":"${REG}","ip":"10.0.0.5"}]` });
    expect(UpdaterConfigDataSchema.parse(data)).toEqual({
      enabled: 'true',
      hosts: [{ domain: REG, ip: '10.0.0.5' }],
    });
    const bad = UpdaterConfigDataSchema.safeParse({
      enabled: 'true',
      hosts: '[{"domain":"*.x.com","ip":"1.2.3"}]',
    });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['hosts.0.domain', 'wildcard domains are not supported by hosts files'],
      ['hosts.0.ip', '"1.2.3" is not an IPv4 or IPv6 address'],
    ]);
  });
});
