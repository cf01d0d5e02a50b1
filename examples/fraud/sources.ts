import { source } from 'sluice';

/**
 * The fraud demo's sources: card transactions, web clicks, and chargebacks (disputed payments,
 * days later), which are the fraud labels. Each raw schema sits beside this file.
 */
const ISO_CURRENCY = /^[A-Z]{3}$/;
const ISO_COUNTRY = /^[A-Z]{2}$/;

export const transactions = source({
  name: 'transactions',
  schema: new URL('./schemas/raw.transactions.avsc', import.meta.url),
  description: 'Card payments from the payment system.',
  idField: 'transaction_id',
  eventTimeField: 'timestamp',
  entityField: 'card_id',
  rules: {
    transaction_id: { required: true },
    card_id: { required: true },
    merchant_id: { required: true },
    amount: { required: true, min: 0.01, max: 1_000_000 },
    currency: { required: true, pattern: ISO_CURRENCY },
    country: { required: true, pattern: ISO_COUNTRY },
  },
});

export const clicks = source({
  name: 'clicks',
  schema: new URL('./schemas/raw.clicks.avsc', import.meta.url),
  description: 'Web interactions of signed-in users.',
  idField: 'click_id',
  eventTimeField: 'timestamp',
  entityField: 'user_id',
  rules: {
    click_id: { required: true },
    user_id: { required: true },
    session_id: { required: true },
    duration_ms: { min: 0, max: 86_400_000 },
  },
});

export const chargebacks = source({
  name: 'chargebacks',
  schema: new URL('./schemas/raw.chargebacks.avsc', import.meta.url),
  description: 'Disputed payments, days after the fact: the fraud label.',
  idField: 'chargeback_id',
  eventTimeField: 'timestamp',
  entityField: 'card_id',
  rules: {
    chargeback_id: { required: true },
    transaction_id: { required: true },
    card_id: { required: true },
    amount: { min: 0.01, max: 1_000_000 },
  },
});
