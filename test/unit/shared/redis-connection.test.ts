import { describe, expect, it } from 'vitest';
import { parseClusterNodes, slotOf } from '../../../infra/local/redis-cluster.js';
import { FunctionsEnv, parseEnv } from '../../../shared/config.js';
import { hashTagOf, parseRedisUrl, requireHashTag } from '../../../shared/redis-connection.js';

describe('REDIS_URL', () => {
  it.each([
    ['redis://127.0.0.1:6379', { mode: 'standalone', url: 'redis://127.0.0.1:6379' }],
    ['rediss://:pw@redis.example:6380/2', { mode: 'standalone', url: 'rediss://:pw@redis.example:6380/2' }],
    [
      'redis+cluster://127.0.0.1:7000,127.0.0.1:7001',
      {
        mode: 'cluster',
        nodes: [
          { host: '127.0.0.1', port: 7000 },
          { host: '127.0.0.1', port: 7001 },
        ],
        tls: false,
      },
    ],
    [
      'rediss+cluster://app:p%40ss:word@a.example:6379,[::1]:6380/',
      {
        mode: 'cluster',
        nodes: [
          { host: 'a.example', port: 6379 },
          { host: '::1', port: 6380 },
        ],
        username: 'app',
        password: 'p@ss:word',
        tls: true,
      },
    ],
  ])('%s', (url, target) => {
    expect(parseRedisUrl(url)).toEqual(target);
  });

  it.each([
    ['http://127.0.0.1:6379', /REDIS_URL must look like redis:\/\/host:port/],
    ['redis+cluster://127.0.0.1', /cluster node 1 \("127\.0\.0\.1"\) must be host:port/],
    ['redis+cluster://a:1,b:99999', /cluster node 2 \("b:99999"\) must be host:port/],
    ['redis+cluster://a:1/3', /a Redis Cluster has only database 0/],
    ['redis+cluster://a:1?tls=true', /takes no options in the URL/],
  ])('refuses %s, naming what is wrong', (url, message) => {
    expect(() => parseRedisUrl(url)).toThrow(message);
  });

  it('is checked with the rest of the configuration, without echoing a password', () => {
    expect(() => parseEnv(FunctionsEnv, { REDIS_URL: 'redis+cluster://:secret@a:1,b' })).toThrow(
      /invalid configuration: REDIS_URL: cluster node 2 \("b"\) must be host:port/,
    );
    try {
      parseEnv(FunctionsEnv, { REDIS_URL: 'redis+cluster://:secret@a:1,b' });
    } catch (error) {
      expect((error as Error).message).not.toContain('secret');
    }
    expect(parseEnv(FunctionsEnv, { REDIS_URL: 'redis+cluster://a:1,b:2' }).REDIS_URL).toBe(
      'redis+cluster://a:1,b:2',
    );
  });
});

describe('hash tags and slots', () => {
  it('finds the hash tag Redis Cluster hashes by', () => {
    expect(hashTagOf('{tcr}')).toBe('tcr');
    expect(hashTagOf('app{tcr}x')).toBe('tcr');
    expect(hashTagOf('{}tcr')).toBeUndefined();
    expect(hashTagOf('tcr')).toBeUndefined();
    expect(hashTagOf('{tcr')).toBeUndefined();
    expect(() => requireHashTag('tcr')).toThrow(/QUEUE_PREFIX "tcr" has no hash tag.*e\.g\. \{tcr\}/);
    expect(() => requireHashTag('{tcr}')).not.toThrow();
  });

  it('maps keys to slots as Redis does (CRC16/XMODEM of the tag, mod 16384)', () => {
    // The reference value of the Redis Cluster specification: CRC16("123456789") = 0x31C3.
    expect(slotOf('123456789')).toBe(0x31c3);
    expect(slotOf('{user1000}.following')).toBe(slotOf('{user1000}.followers'));
    expect(slotOf('{tcr}:reconcile:wait')).toBe(slotOf('{tcr}:audit'));
    expect(slotOf('foo{}{bar}')).toBe(slotOf('foo{}{bar}'));
    expect(slotOf('{}x')).not.toBe(slotOf('x'));
  });

  it('reads CLUSTER NODES', () => {
    const nodes = parseClusterNodes(
      [
        'aaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460',
        'bbb 127.0.0.1:7001@17001 slave aaa 0 1 1 connected',
        'ccc 127.0.0.1:7002@17002 master,fail - 0 1 2 disconnected',
        'ddd 127.0.0.1:7003@17003 master - 0 1 3 connected 5461-10922 10923 [100->-eee]',
      ].join('\n'),
    );
    expect(nodes).toEqual([
      { port: 7000, busPort: 17000, id: 'aaa', role: 'primary', slots: [[0, 5460]], up: true },
      { port: 7001, busPort: 17001, id: 'bbb', role: 'replica', primaryId: 'aaa', slots: [], up: true },
      { port: 7002, busPort: 17002, id: 'ccc', role: 'primary', slots: [], up: false },
      {
        port: 7003,
        busPort: 17003,
        id: 'ddd',
        role: 'primary',
        slots: [
          [5461, 10922],
          [10923, 10923],
        ],
        up: true,
      },
    ]);
  });
});
