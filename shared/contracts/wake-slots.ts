import type { RedisClient } from '../redis-connection.js';
import { QUEUE_NAME } from './jobs.js';

// Wake slots: how the relay and the SCF invocations it wakes agree on "one invocation in flight per slot",
// in the same Redis as the queue (same key prefix, so with a `{tcr}` prefix every key below and the queue's
// own keys hash to one Redis Cluster slot and the scripts may read both).
//
// A slot is a key `<prefix>:wake:<n>` holding `<state>|<invocation id>|<since ms>`:
//   invoking  the relay took the slot and is calling Invoke (expires after the lease time);
//   invoked   Invoke accepted it; a relay may take the slot over if the invocation has not started within
//             the start timeout (an event SCF lost or still holds);
//   running   the invocation started and holds the slot until it returns (the lease expires at its time limit,
//             so a killed invocation frees it too).
// An invocation that finds nothing left to do releases its slot atomically *unless* jobs are waiting, in which
// case it keeps draining: a relay that saw the slot busy has its jobs taken by that invocation, and one that
// comes after the release takes the slot and invokes. No wake-up is lost in between.

export type SlotState = 'invoking' | 'invoked' | 'running';

export interface SlotView {
  slot: number;
  state: SlotState;
  id: string;
  since: number;
}

/** Backlog (waiting + prioritized jobs) and the slots currently held. */
export interface WakeSnapshot {
  backlog: number;
  held: SlotView[];
}

export type ReleaseOutcome = 'released' | 'busy' | 'lost';

const PARSE = `
local function parse(v)
  if not v then return nil end
  local state, id, since = string.match(v, '^(%a+)|([^|]+)|(%d+)$')
  return state, id, tonumber(since)
end
`;

/** KEYS: wait, prioritized, slot keys... → backlog, then each slot's value (false when free). */
const INSPECT = `
local out = { redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) }
for i = 3, #KEYS do out[#out + 1] = redis.call('GET', KEYS[i]) or '' end
return out
`;

/** KEYS: slot. ARGV: id, now, leaseMs, startTimeoutMs → 1 when taken (free, or invoked and never started). */
const ACQUIRE = `${PARSE}
local state, id, since = parse(redis.call('GET', KEYS[1]))
if state and not (state == 'invoked' and tonumber(ARGV[2]) - since >= tonumber(ARGV[4])) then return 0 end
redis.call('SET', KEYS[1], 'invoking|' .. ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
return 1
`;

/** KEYS: slot. ARGV: id, newState, now, leaseMs → 1 when the slot is still this id's (and now in newState). */
const MOVE = `${PARSE}
local state, id = parse(redis.call('GET', KEYS[1]))
if id ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2] .. '|' .. ARGV[1] .. '|' .. ARGV[3], 'PX', ARGV[4])
return 1
`;

/** KEYS: slot, wait, prioritized. ARGV: id, force → released | busy | lost. */
const RELEASE = `${PARSE}
local state, id = parse(redis.call('GET', KEYS[1]))
if id ~= ARGV[1] then return 'lost' end
if ARGV[2] ~= '1' and redis.call('LLEN', KEYS[2]) + redis.call('ZCARD', KEYS[3]) > 0 then return 'busy' end
redis.call('DEL', KEYS[1])
return 'released'
`;

/** The slot keys and the queue keys the scripts read, for one BullMQ prefix. */
export function wakeKeys(prefix: string) {
  const queue = `${prefix}:${QUEUE_NAME}`;
  return {
    slot: (n: number) => `${prefix}:wake:${n}`,
    wait: `${queue}:wait`,
    prioritized: `${queue}:prioritized`,
  };
}

function parseSlot(slot: number, value: string): SlotView | undefined {
  const m = /^(invoking|invoked|running)\|([^|]+)\|(\d+)$/.exec(value);
  return m ? { slot, state: m[1] as SlotState, id: m[2] as string, since: Number(m[3]) } : undefined;
}

/** The relay's and the invocations' operations on wake slots (each one Lua script: atomic). */
export class WakeSlots {
  private readonly keys: ReturnType<typeof wakeKeys>;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
  ) {
    this.keys = wakeKeys(prefix);
  }

  async inspect(slots: number): Promise<WakeSnapshot> {
    const keys = [this.keys.wait, this.keys.prioritized];
    for (let n = 0; n < slots; n++) keys.push(this.keys.slot(n));
    const out = (await this.redis.eval(INSPECT, keys.length, ...keys)) as [number, ...string[]];
    const held: SlotView[] = [];
    out.slice(1).forEach((value, n) => {
      const view = parseSlot(n, String(value));
      if (view) held.push(view);
    });
    return { backlog: Number(out[0]), held };
  }

  /** Relay: takes a free slot (or one whose invocation never started) for a new invocation. */
  async acquire(slot: number, id: string, now: number, leaseMs: number, startTimeoutMs: number) {
    const r = await this.redis.eval(ACQUIRE, 1, this.keys.slot(slot), id, now, leaseMs, startTimeoutMs);
    return r === 1;
  }

  /** Relay: Invoke accepted the invocation; the start timeout runs from `now`. */
  async markInvoked(slot: number, id: string, now: number, leaseMs: number): Promise<boolean> {
    return (await this.redis.eval(MOVE, 1, this.keys.slot(slot), id, 'invoked', now, leaseMs)) === 1;
  }

  /** Invocation: it runs and holds the slot for `leaseMs` (its remaining time); false if it lost the slot. */
  async claim(slot: number, id: string, now: number, leaseMs: number): Promise<boolean> {
    return (await this.redis.eval(MOVE, 1, this.keys.slot(slot), id, 'running', now, leaseMs)) === 1;
  }

  /**
   * Invocation (or a relay whose Invoke failed): gives the slot back. Without `force`, only when no job is
   * waiting ('busy' then: keep draining).
   */
  async release(slot: number, id: string, force: boolean): Promise<ReleaseOutcome> {
    const k = this.keys;
    const r = await this.redis.eval(RELEASE, 3, k.slot(slot), k.wait, k.prioritized, id, force ? '1' : '0');
    return r as ReleaseOutcome;
  }
}
