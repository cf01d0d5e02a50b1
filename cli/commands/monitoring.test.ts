import { describe, expect, it } from 'vitest';
import type { AlertRecord } from '../../monitoring/index.js';
import { alertEpisodes, monitoringWindows } from './monitoring.js';

const alert = (id: string, state: 'FIRING' | 'RESOLVED', at: number): AlertRecord => ({
  alert_id: id,
  rule: id.split(':')[0] ?? id,
  state,
  severity: 'WARNING',
  model_name: 'fraud',
  feature: null,
  value: 1,
  threshold: 0.5,
  message: `${id} ${state}`,
  at,
  subject: 'fraud',
  condition: 'feature-drift',
  clear_threshold: 0.1,
  model_version: 1,
  window_kind: 'TUMBLING',
  window_start: at - 10,
  window_end: at,
  fired_at: state === 'RESOLVED' ? 0 : null,
  action: null,
  evidence: '{}',
});

describe('alertEpisodes', () => {
  it('has no episodes without records', () => {
    expect(alertEpisodes([])).toEqual([]);
  });

  it('pairs each firing with its resolution, in order of firing, and keeps open ones open', () => {
    const episodes = alertEpisodes([
      alert('b:fraud:20', 'FIRING', 20),
      alert('a:fraud:10', 'FIRING', 10),
      alert('a:fraud:10', 'RESOLVED', 30),
    ]);
    expect(episodes.map((episode) => [episode.alert.alert_id, episode.resolved?.at])).toEqual([
      ['a:fraud:10', 30],
      ['b:fraud:20', undefined],
    ]);
  });

  it('keeps the first of a repeated firing (a redelivery) and ignores a resolution without its firing', () => {
    const first = alert('a:fraud:10', 'FIRING', 10);
    const episodes = alertEpisodes([first, { ...first, message: 'again' }, alert('z:fraud:5', 'RESOLVED', 50)]);
    expect(episodes).toEqual([{ alert: first, resolved: undefined }]);
  });
});

describe('monitoringWindows', () => {
  it('selects windows by event time, everything without bounds', () => {
    expect(monitoringWindows({})).toEqual({});
    expect(monitoringWindows({ eventTime: { from: 5, to: 9 } })).toEqual({ from: 5, to: 9 });
  });

  it('has no window selection for record-time or offset ranges', () => {
    expect(monitoringWindows({ record: { fromTime: 5 } })).toBeUndefined();
    expect(monitoringWindows({ record: { fromOffsets: { 0: '10' } } })).toBeUndefined();
  });
});
