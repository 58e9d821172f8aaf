import { describe, expect, it } from 'vitest';
import { tokenWorkFingerprint } from '../../../../functions/core/registry-tokens/plan-registry-tokens.js';
import type { FunctionsRuntime } from '../../../../functions/runtime/build-runtime.js';
import { registryTokensTickHasWork } from '../../../../functions/runtime/schedules.js';

/** The two things a tick looks at: the fleet (from the runtime) and the refresher's note in Redis. */
function runtime(note: string | undefined | Error, clusters = ['prod-1']): FunctionsRuntime {
  return {
    registryTokensDeps: () => ({ clusters, registries: [] }),
    tokenReports: {
      isIdle: async (fingerprint: string) => {
        if (note instanceof Error) throw note;
        return note === fingerprint;
      },
    },
  } as unknown as FunctionsRuntime;
}

describe('registryTokensTickHasWork', () => {
  const idleNote = tokenWorkFingerprint({ clusters: ['prod-1'], registries: [] });
  it.each<[string, string | undefined | Error, string[], boolean]>([
    ['no note: run', undefined, ['prod-1'], true],
    ['the last run found nothing for this fleet: skip', idleNote, ['prod-1'], false],
    ['a note about another fleet (a cluster added since): run', idleNote, ['prod-1', 'prod-2'], true],
    [
      'Redis does not answer: run (the note is only an optimisation)',
      new Error('ECONNREFUSED'),
      ['prod-1'],
      true,
    ],
  ])('%s', async (_what, note, clusters, hasWork) => {
    expect(await registryTokensTickHasWork(runtime(note, clusters))).toBe(hasWork);
  });
});
