import { count, distinctCount, featureView, max, mean, slidingWindow, stddev, sum, type FeatureView } from 'sluice';
import { clicks, transactions } from './sources.js';

/** The demo's feature views: card activity for fraud, user engagement from clicks. */
export const views: readonly FeatureView[] = [
  featureView({
    name: 'card_txn_1h',
    source: transactions,
    window: slidingWindow('1h'),
    features: { txn_count: count(), amount_sum: sum('amount') },
    grace: '10m',
    ttl: '2h',
    owner: 'fraud-team',
    description: 'Transactions and amount spent per card over the last hour.',
  }),
  featureView({
    name: 'card_txn_24h',
    source: transactions,
    window: slidingWindow('24h'),
    features: { txn_count: count(), amount_sum: sum('amount'), merchant_count: distinctCount('merchant_id') },
    grace: '10m',
    ttl: '2d',
    owner: 'fraud-team',
    description: 'Transactions, amount spent and distinct merchants per card over the last day.',
  }),
  featureView({
    name: 'card_amount_7d',
    source: transactions,
    window: slidingWindow('7d'),
    features: { amount_mean: mean('amount'), amount_stddev: stddev('amount'), amount_max: max('amount') },
    grace: '10m',
    ttl: '14d',
    owner: 'fraud-team',
    description: 'Typical spend per card over the last week: mean, spread and largest amount.',
  }),
  featureView({
    name: 'user_engagement_7d',
    source: clicks,
    window: slidingWindow('7d'),
    features: { clicks: count(), duration_ms: sum('duration_ms'), sessions: distinctCount('session_id') },
    // Engagement: log-scaled activity, time on site (minutes) and sessions, weighted into one score.
    derive: ({ clicks: clickCount, duration_ms: durationMs, sessions }) => ({
      engagement_score:
        typeof clickCount === 'number' && typeof durationMs === 'number' && typeof sessions === 'number'
          ? Math.log1p(clickCount) + 0.5 * Math.log1p(durationMs / 60_000) + Math.log1p(sessions)
          : null,
    }),
    grace: '10m',
    ttl: '14d',
    owner: 'growth-team',
    description: 'How engaged a user was over the last week: clicks, time on site, sessions, and a score.',
  }),
];

/** A view of this file by name. */
export function view(name: string): FeatureView {
  const found = views.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no view ${name}`);
  return found;
}
