import { describe, expect, it } from 'vitest';
import {
  decodeProcAddress,
  hasForbiddenPeer,
  isLoopback,
  parseProcNetTable,
} from '../../../infra/local/node-network.js';

// Lines in the kernel's /proc/net/tcp and tcp6 format: what the node's network check reads for every
// process of the node. It must flag a peer outside 127.0.0.0/8 and ::1, and nothing else.
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:8235 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C0D6 0100007F:8AF1 01 00000000:00000000 02:000A7B8E 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1
   2: 0B0011AC:D2B4 0100000A:01BB 02 00000001:00000000 01:00000100 00000002     0        0 1003 1 0000000000000000 200 0 0 1 7
   3: 0100017F:A1B2 0101017F:01BB 01 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 20 4 30 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:D431 00000000000000000000000001000000:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 20 4 30 10 -1
   2: 0000000000000000FFFF00000100007F:D432 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2003 1 0000000000000000 20 4 30 10 -1
   3: 0000000000000000FFFF0000350AFF0A:D433 0000000000000000FFFF0000350AFF0A:0035 01 00000000:00000000 00:00000000 00000000     0        0 2004 1 0000000000000000 20 4 30 10 -1
   4: 00000000000000000000000000000000:D434 B80D0120000000000000000001000000:01BB 02 00000000:00000000 00:00000000 00000000     0        0 2005 1 0000000000000000 20 4 30 10 -1
`;

describe('node network check', () => {
  it('decodes IPv4, IPv6 and IPv4-mapped addresses as the kernel prints them', () => {
    expect(decodeProcAddress('0100007F:1F90')).toEqual({ ip: '127.0.0.1', port: 8080 });
    expect(decodeProcAddress('0100000A:01BB')).toEqual({ ip: '10.0.0.1', port: 443 });
    expect(decodeProcAddress('00000000000000000000000001000000:1F90')).toEqual({
      ip: '0:0:0:0:0:0:0:1',
      port: 8080,
    });
    expect(decodeProcAddress('0000000000000000FFFF00000100007F:1F90').ip).toBe('127.0.0.1');
    expect(decodeProcAddress('B80D0120000000000000000001000000:01BB').ip).toBe('2001:db8:0:0:0:0:0:1');
  });

  it('flags exactly the sockets whose peer is outside loopback', () => {
    const entries = [...parseProcNetTable(TCP, 'tcp'), ...parseProcNetTable(TCP6, 'tcp6')];
    expect(entries).toHaveLength(9);
    const forbidden = entries.filter(hasForbiddenPeer);
    expect(forbidden.map((e) => [e.inode, e.remote, e.state])).toEqual([
      [1003, '10.0.0.1:443', 'SYN_SENT'],
      [2004, '10.255.10.53:53', 'ESTABLISHED'],
      [2005, '[2001:db8:0:0:0:0:0:1]:443', 'SYN_SENT'],
    ]);
    // A listener (no peer), a loopback connection, 127.1.0.1 (the loopback service CIDR), ::1 and a mapped
    // 127.0.0.1 are all fine.
    expect(entries.filter((e) => !hasForbiddenPeer(e)).map((e) => e.inode)).toEqual([
      1001, 1002, 1004, 2001, 2002, 2003,
    ]);
  });

  it('decodes only the sockets asked for (the host table lists every socket of the machine)', () => {
    expect(parseProcNetTable(TCP, 'tcp', new Set([1003, 9999])).map((e) => e.remote)).toEqual([
      '10.0.0.1:443',
    ]);
    expect(parseProcNetTable(TCP6, 'tcp6', new Set())).toEqual([]);
  });

  it('treats all of 127.0.0.0/8 and ::1 as loopback, and nothing else', () => {
    expect(['127.0.0.1', '127.1.0.1', '127.255.255.254', '0:0:0:0:0:0:0:1'].every(isLoopback)).toBe(true);
    expect(['10.0.0.1', '128.0.0.1', '172.16.0.1', '192.168.1.1', '0:0:0:0:0:0:0:2'].some(isLoopback)).toBe(
      false,
    );
  });
});
