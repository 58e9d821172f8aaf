import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { findFreePort } from '../../../infra/local/free-port.js';

describe('findFreePort', () => {
  it('never hands out the same port twice in one process, even before any is bound', async () => {
    // 500 random picks from ~12,000 ports would repeat one almost surely (birthday bound) without the memory.
    const ports: number[] = [];
    for (let i = 0; i < 500; i++) ports.push(await findFreePort());
    expect(new Set(ports).size).toBe(ports.length);
  });

  it('gives a loopback port below the ephemeral range that can be bound', async () => {
    const port = await findFreePort();
    expect(port).toBeGreaterThanOrEqual(20000);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    await new Promise((r) => server.close(r));
  });
});
