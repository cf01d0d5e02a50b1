import { parseArgs } from 'node:util';
import { emptyEntityState, SourceFeatures } from '../streams/features/engine.js';
import { transactions } from '../examples/fraud/sources.js';
import { views } from '../examples/fraud/views.js';
import { uniformRandom } from '../common/random.js';
import { printTable } from './report.js';

/**
 * The feature engine alone (no Kafka, no store): microseconds of CPU per event by how much
 * history its entities hold, for the demo's transaction views (1-hour, 24-hour and 7-day sliding
 * windows). Each of `--entities` cards (default 50) gets one event a second of event time, for
 * `--hours` hours (default 2); the table gives each 10 minutes of event time. It shows what a
 * live run of minutes cannot: what an event costs once its windows are full and start to slide.
 */
const BLOCK_SECONDS = 600;

export function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(3),
    options: { entities: { type: 'string', default: '50' }, hours: { type: 'string', default: '2' } },
  });
  const entities = positive('--entities', values.entities);
  const hours = positive('--hours', values.hours);
  const txViews = views.filter((view) => view.source.name === transactions.name);
  const features = new SourceFeatures(transactions, txViews, new Map());
  const states = Array.from({ length: entities }, () => emptyEntityState());
  const random = uniformRandom(7);
  const start = Date.UTC(2026, 0, 1);
  const rows: Record<string, string | number>[] = [];
  let sequence = 0;
  for (let block = 0; block < (hours * 3600) / BLOCK_SECONDS; block++) {
    const began = process.cpuUsage();
    for (let second = block * BLOCK_SECONDS; second < (block + 1) * BLOCK_SECONDS; second++)
      for (const [index, state] of states.entries())
        features.apply(state, {
          entity: `card-${index}`,
          eventId: `t-${sequence}`,
          eventTime: start + second * 1000,
          sequence: sequence++,
          value: { amount: Math.round(1 + random() * 20_000) / 100, merchant_id: `m-${Math.floor(random() * 20)}` },
        });
    const used = process.cpuUsage(began);
    rows.push({
      'event time (min)': `${(block * BLOCK_SECONDS) / 60}–${((block + 1) * BLOCK_SECONDS) / 60}`,
      'history per card': states[0]?.events.length ?? 0,
      'µs of CPU per event': ((used.user + used.system) / (BLOCK_SECONDS * entities)).toFixed(1),
    });
  }
  printTable(`feature engine, demo transaction views, ${entities} cards at one event a second each`, rows);
  return Promise.resolve();
}

function positive(name: string, text: string): number {
  const value = Number(text);
  if (!(value > 0)) throw new Error(`${name} wants a positive number, not ${text}`);
  return value;
}
