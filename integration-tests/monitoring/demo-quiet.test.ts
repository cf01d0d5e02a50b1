import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertRecord, DriftRecord } from '../../monitoring/index.js';
import { DemoRun, HOUR, MONITOR_FROM } from './demo-run.js';

/**
 * The demo without drift: 30 monitored hours of the generator's steady traffic through the whole
 * stack (see DemoRun) raise no drift alert and retrain nothing, while every hour is evaluated.
 */
const MONITORED_HOURS = 30;
const DRIFT_RULES = new Set(['input_drift', 'input_drift_hourly', 'dataset_drift']);

describe('the demo with monitoring, without drift', () => {
  const run = new DemoRun({ monitoredHours: MONITORED_HOURS });

  beforeAll(() => run.setUp());
  afterAll(() => run.tearDown());

  it(`${MONITORED_HOURS} monitored hours without drift raise no drift alert and retrain nothing`, async () => {
    const { transactions } = await run.run();

    const drift = await run.decodeAll<DriftRecord>('monitoring.drift');
    const hourly = drift.filter((record) => record.window_kind === 'TUMBLING' && record.model_version === 1);
    const hours = new Set(hourly.map((record) => (record.window_start - MONITOR_FROM) / HOUR));
    const dataset = hourly.filter((record) => record.feature === '__dataset__');
    const drifted = hourly.filter((record) => record.feature !== '__dataset__' && record.verdict === 'DRIFT');
    console.log(
      `${transactions} transactions scored; ${drift.length} drift records over ${hours.size} hourly windows; ` +
        `dataset drift share: max ${Math.max(...dataset.map((record) => record.drift_share ?? 0))}; ` +
        `single-input drift verdicts: ${drifted.map((record) => `${record.feature} +${(record.window_start - MONITOR_FROM) / HOUR} h`).join(', ') || 'none'}`,
    );
    // The last-N view's single-input verdicts and its largest PSI per input, for the record.
    const lastN = drift.filter((record) => record.window_kind === 'LAST_N' && record.model_version === 1);
    const largest = new Map<string, number>();
    for (const record of lastN) largest.set(record.feature, Math.max(largest.get(record.feature) ?? 0, record.psi ?? 0));
    console.log(
      `last-N: ${new Set(lastN.map((record) => record.window_end)).size} views; drift verdicts: ${
        lastN
          .filter((record) => record.verdict === 'DRIFT' && record.feature !== '__dataset__')
          .map((record) => `${record.feature} (PSI ${record.psi?.toFixed(3)}) +${((record.window_end - MONITOR_FROM) / HOUR).toFixed(2)} h`)
          .join(', ') || 'none'
      }; largest PSI: ${[...largest].map(([feature, psi]) => `${feature} ${psi.toFixed(3)}`).join(', ')}`,
    );
    // Every monitored hour but the last (its window closes with traffic after it) was evaluated.
    for (let hour = 0; hour < MONITORED_HOURS - 1; hour++) expect(hours.has(hour), `hour ${hour} evaluated`).toBe(true);
    expect(dataset.every((record) => record.verdict !== 'DRIFT')).toBe(true);

    const alerts = await run.decodeAll<AlertRecord>('monitoring.alerts');
    console.log(alerts.map((alert) => `${alert.state} ${alert.rule} ${alert.subject}: ${alert.message}`).join('\n'));
    expect(alerts.filter((alert) => DRIFT_RULES.has(alert.rule))).toEqual([]);
    expect(await run.decodeAll('monitoring.actions')).toEqual([]);
  }, 1_800_000);
});
