import { describe, expect, it } from 'vitest';
import { namespaceToRepair, writtenByOthers } from '../../../../functions/runtime/secret-watch.js';

const secret = (managers: string[]) => ({
  metadata: {
    namespace: 'team-a',
    name: 'tcr.ipsx',
    managedFields: managers.map((manager) => ({ manager, operation: 'Update' })),
  },
});

describe('which Secret events the watch turns into a namespace job', () => {
  it('every deletion of one of our pull Secrets', () => {
    expect(namespaceToRepair('deleted', 'team-a/tcr.ipsx', undefined)).toBe('team-a');
  });

  it('a change that another field manager made, not our own writes', () => {
    expect(writtenByOthers(secret(['tcr-assistant']))).toBe(false);
    expect(namespaceToRepair('modified', 'team-a/tcr.ipsx', secret(['tcr-assistant']))).toBeUndefined();
    expect(namespaceToRepair('added', 'team-a/tcr.ipsx', secret(['tcr-assistant']))).toBeUndefined();
    expect(namespaceToRepair('modified', 'team-a/tcr.ipsx', secret(['tcr-assistant', 'kubectl-edit']))).toBe(
      'team-a',
    );
  });

  it('nothing for Secrets that are not pull Secrets (the token store)', () => {
    expect(
      namespaceToRepair('deleted', 'tcr-assistant-system/tcr-token.tcr-a.longterm', undefined),
    ).toBeUndefined();
  });
});
