import { describe, expect, it } from 'vitest';
import { DEMO_RATE, TRAIN_SPAN_MS, demoHistory } from './demo.js';

describe('demoHistory', () => {
  it('sends 30 hours at the live rate by default, so the features warm up before the training span', () => {
    expect(demoHistory(2)).toEqual({ historyEvents: 216_000, historySpanMs: 30 * 3_600_000 });
    expect(demoHistory(5).historyEvents).toBe(540_000);
    expect(demoHistory(2).historySpanMs - TRAIN_SPAN_MS).toBe(24 * 3_600_000);
  });

  it('uses the default rate for a history-only run (rate 0)', () => {
    expect(demoHistory(0).historyEvents).toBe(Math.round(DEMO_RATE * 30 * 3_600));
  });

  it('spreads a given number of events over the training span', () => {
    expect(demoHistory(20, 3_000)).toEqual({ historyEvents: 3_000, historySpanMs: TRAIN_SPAN_MS });
  });
});
