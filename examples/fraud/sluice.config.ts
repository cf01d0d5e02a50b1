import { defineTopology } from 'sluice';
import { demoEvents } from './generator.js';
import { fraud } from './models.js';
import { alerts, settings } from './monitoring.js';
import { chargebacks, clicks, transactions } from './sources.js';
import { views } from './views.js';

/**
 * The fraud demo, loaded like any user's topology (`npm start` runs `sluice up --demo` with
 * `--topology examples/fraud`): card transactions and clicks with feature views, a fraud model
 * trained on chargebacks, and a generator of realistic traffic with fraud bursts and late labels.
 */
export default defineTopology({
  name: 'fraud',
  sources: [transactions, clicks, chargebacks],
  views,
  models: [fraud],
  monitoring: settings,
  alerts,
  demo: {
    *generate({ seed, events, end, spanMs, driftFrom, live }) {
      const records = demoEvents({
        seed,
        events,
        end,
        spanMs,
        // 5,000 cards: at the demo's 3 events/s most cards make tens of payments a day (500 cards
        // made hundreds, and the busiest card's 7-day history, re-aggregated on each of its
        // payments, slowed ingesting the history).
        cards: 5_000,
        users: 3_000,
        chargebackDelayMs: 10 * 60_000,
        fraudRate: 0.008,
        includeFutureChargebacks: live,
        ...(driftFrom !== undefined ? { driftFrom } : {}),
      });
      for (const record of records) yield { source: record.topic.slice('raw.'.length), key: record.key, value: record.value };
    },
  },
});
