import { describe, expect, it } from 'vitest';
import { STAGES } from './stages.js';
import { STAGE_NAMES } from './stage-names.js';

describe('stage names', () => {
  it('name exactly the stages stages.ts defines (the CLI lists them without loading the stages)', () => {
    expect(Object.keys(STAGES)).toEqual([...STAGE_NAMES]);
  });
});
