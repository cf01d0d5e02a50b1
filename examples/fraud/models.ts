import { model } from 'sluice';
import { chargebacks, transactions } from './sources.js';
import { view } from './views.js';

/** The demo's fraud model: card activity features, chargebacks as labels. */
export const fraud = model({
  name: 'fraud',
  description: 'Probability that a card transaction is fraudulent (charged back).',
  owner: 'fraud-team',
  source: transactions,
  fields: ['amount'],
  // One-hot encoded before the network; tested for drift with chi-square.
  categorical: ['merchant_category', 'country', 'channel'],
  features: [
    { view: view('card_txn_1h'), features: ['txn_count', 'amount_sum'] },
    { view: view('card_txn_24h'), features: ['txn_count', 'amount_sum', 'merchant_count'] },
    { view: view('card_amount_7d'), features: ['amount_mean', 'amount_stddev', 'amount_max'] },
  ],
  label: { source: chargebacks, joinField: 'transaction_id', window: '1h' },
  trainer: 'mlp',
  params: { epochs: 15, learningRate: 0.01, batchSize: 128, hidden: 16, seed: 42 },
  threshold: 0.5,
  fallbackScore: 0,
});
