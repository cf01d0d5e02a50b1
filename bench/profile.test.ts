import { describe, expect, it } from 'vitest';
import { selfTimes, type CpuProfile } from './profile.js';

const frame = (
  functionName: string,
  url = '',
  lineNumber = 0,
): { functionName: string; url: string; lineNumber: number; columnNumber: number } => ({
  functionName,
  url,
  lineNumber,
  columnNumber: 0,
});

// (root) → write (JavaScript) → crc32c (native, a guessed name) and encode (JavaScript);
// (root) → (garbage collector); (root) → orphan (native, no JavaScript caller).
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)'), children: [2, 5, 6] },
    { id: 2, callFrame: frame('write', 'file:///app/node_modules/leveldown/chained-batch.js', 23), children: [3, 4] },
    { id: 3, callFrame: frame('crc32c') },
    { id: 4, callFrame: frame('encode', 'file:///app/state/serde.ts', 9) },
    { id: 5, callFrame: frame('(garbage collector)') },
    { id: 6, callFrame: frame('orphan') },
  ],
  // Each sample counts the time to the next one: the last one counts nothing.
  samples: [3, 3, 4, 5, 6, 1],
  timeDeltas: [0, 10, 20, 30, 40, 50],
};

describe('selfTimes', () => {
  it('names native frames with their JavaScript caller and keeps V8 entries and JavaScript frames as they are', () => {
    expect(Object.fromEntries(selfTimes(profile))).toEqual({
      'crc32c (native, in write chained-batch.js:24)': 30,
      'encode serde.ts:10': 30,
      '(garbage collector)': 40,
      'orphan (native)': 50,
      '(root)': 0,
    });
  });
});
