import { readFileSync } from 'node:fs';
import net from 'node:net';

// Ports are chosen at run time so that control planes can run side by side. They are taken from below the
// kernel's ephemeral range: a port from inside it (what `listen(0)` hands out) is free when asked, but every
// outgoing connection of every process on the machine draws from the same range, and one of them may take it
// before the server we start binds it ("address already in use", seen with two test runs and a benchmark at
// once). Below the range, only another listener can collide, and the random pick makes that rare.

const FALLBACK_RANGE_START = 32768;
const LOWEST = 20000;

function ephemeralRangeStart(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const n = Number(low);
    return Number.isInteger(n) && n > LOWEST + 1000 ? n : FALLBACK_RANGE_START;
  } catch {
    return FALLBACK_RANGE_START;
  }
}

const canListen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

// Ports this process handed out: a caller usually asks for several before the first is bound (a control plane's
// etcd, API server and controller-manager), and a second pick of the same free port would fail to bind later.
const handedOut = new Set<number>();

/** A loopback port nothing listens on, below the ephemeral range, and not handed out before by this process. */
export async function findFreePort(): Promise<number> {
  const top = ephemeralRangeStart();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (top - LOWEST));
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free loopback port between ${LOWEST} and ${top - 1} after 200 tries`);
}
