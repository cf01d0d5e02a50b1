import { describe, expect, it } from 'vitest';
import { MEASURED_ID, measuredIndex, Received } from './received.js';

describe('measuredIndex', () => {
  it('reads a measured event’s number from its prediction’s event id, and -1 for any other', () => {
    expect(measuredIndex(`transactions:${MEASURED_ID}0`)).toBe(0);
    expect(measuredIndex(`transactions:${MEASURED_ID}2999999`)).toBe(2_999_999);
    expect(measuredIndex('transactions:w12')).toBe(-1);
    expect(measuredIndex(`clicks:${MEASURED_ID}12`)).toBe(-1);
    expect(measuredIndex(`transactions:${MEASURED_ID}1.5`)).toBe(-1);
    expect(measuredIndex(`transactions:${MEASURED_ID}`)).toBe(-1);
    expect(measuredIndex(`transactions:${MEASURED_ID}07`)).toBe(-1);
    expect(measuredIndex(undefined)).toBe(-1);
  });
});

describe('Received', () => {
  it('keeps each prediction’s columns together, and its latencies sorted apart', () => {
    const received = new Received(4);
    received.add(0.5, 30, 20);
    received.add(0.1, 10, 5);
    received.add(1.2, 20, 15);
    expect(received.length).toBe(3);
    expect([...received.sortedLatencies()]).toEqual([10, 20, 30]);
    // Sorting copies: the columns still line up.
    expect([...received.latencies.subarray(0, 3)]).toEqual([30, 10, 20]);
    expect([...received.seconds.subarray(0, 3)]).toEqual([0.5, 0.1, 1.2]);
    expect([...received.toProduce.subarray(0, 3)]).toEqual([20, 5, 15]);
  });

  it('gives a measured event’s send time by its prediction’s event id, and NaN for any other', () => {
    const received = new Received(3);
    received.sent(0, 100);
    received.sent(2, 300);
    received.sent(3, 400);
    received.sent(-1, 500);
    expect(received.sentTimeOf(`transactions:${MEASURED_ID}0`)).toBe(100);
    expect(received.sentTimeOf(`transactions:${MEASURED_ID}2`)).toBe(300);
    // Not sent yet, beyond the capacity, not a measured event, no header.
    expect(received.sentTimeOf(`transactions:${MEASURED_ID}1`)).toBeNaN();
    expect(received.sentTimeOf(`transactions:${MEASURED_ID}3`)).toBeNaN();
    expect(received.sentTimeOf('transactions:w0')).toBeNaN();
    expect(received.sentTimeOf(undefined)).toBeNaN();
  });

  it('keeps nothing beyond its capacity', () => {
    const received = new Received(2);
    for (const latency of [3, 1, 2]) received.add(0, latency, 0);
    expect(received.length).toBe(2);
    expect([...received.sortedLatencies()]).toEqual([1, 3]);
  });
});
