import { describe, expect, it } from 'vitest';
import { MAX_CR_NAME_LENGTH, secretNameFor } from '../../../shared/contracts/names.js';

describe('secretNameFor', () => {
  it('follows the add-on naming: tcr.ips<cr-name>', () => {
    expect(secretNameFor('imagepullsecret-sample')).toBe('tcr.ipsimagepullsecret-sample');
  });
  it('leaves room for the prefix within a 253-character Secret name', () => {
    expect(secretNameFor('a'.repeat(MAX_CR_NAME_LENGTH))).toHaveLength(253);
  });
});
