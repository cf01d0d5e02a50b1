import { describe, expect, it } from 'vitest';
import { isWatcherGroup, watcherGroup } from './deployment.js';

describe('watcher groups: how a blue-green switch finds the live instances of one model of one stack', () => {
  it("recognises the model's watchers under the stack's prefix only", () => {
    const group = watcherGroup('staging.', 'fraud');
    expect(group).toMatch(/^staging\.sluice-model-watch:fraud:[0-9a-f-]{36}$/);
    expect(isWatcherGroup(group, 'staging.', 'fraud')).toBe(true);
    expect(isWatcherGroup(group, '', 'fraud')).toBe(false);
    expect(isWatcherGroup(group, 'staging.', 'fraud2')).toBe(false);
    expect(isWatcherGroup(watcherGroup('staging.', 'fraud:x'), 'staging.', 'fraud')).toBe(false);
    expect(isWatcherGroup('staging.sluice-model-watch:fraud:not-an-instance', 'staging.', 'fraud')).toBe(false);
  });
});
