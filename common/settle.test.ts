import { describe, expect, it } from 'vitest';
import { settleAll } from './settle.js';

describe('settleAll', () => {
  it('gives the values at once, without a promise, when none is pending', () => {
    const settled = settleAll([1, 2, 3]);
    expect(settled).not.toBeInstanceOf(Promise);
    expect(settled).toEqual([1, 2, 3]);
    expect(settleAll([])).toEqual([]);
  });

  it('waits for the pending ones and keeps the order', async () => {
    const settled = settleAll([1, Promise.resolve(2), 3]);
    expect(settled).toBeInstanceOf(Promise);
    await expect(settled).resolves.toEqual([1, 2, 3]);
  });

  it('rejects with a pending value’s error', async () => {
    await expect(settleAll([1, Promise.reject(new Error('refused'))])).rejects.toThrow('refused');
  });
});
