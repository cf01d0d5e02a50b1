import { uniformRandom } from 'sluice';

/**
 * The demo's event generator: card transactions, web clicks and — for fraudulent transactions —
 * chargebacks some time later (the labels), for the raw.* topics. Seeded, so a run repeats
 * exactly. Events come out in event-time order (with a little jitter, so a few arrive out of
 * order, as from real producers); a chargeback comes out when its own time is reached.
 *
 * Fraud pattern: now and then a card is taken over and used in a burst — several online payments
 * within minutes, at merchants the card never used, for several times its usual amount. The demo
 * features (counts and sums per hour and day, distinct merchants, typical amount) reveal it.
 * Drift: from `driftFrom` on, ordinary amounts are larger and many merchants are new — online
 * shops and money transfer services, merchant categories the history never had.
 */
export interface DemoRecord {
  readonly topic: 'raw.transactions' | 'raw.clicks' | 'raw.chargebacks';
  readonly key: string;
  readonly value: Record<string, unknown>;
  /** Ground truth for transactions (not sent): whether it is fraudulent. */
  readonly fraud?: boolean;
}

export interface DemoDataOptions {
  readonly seed: number;
  /** Transactions and clicks to generate (chargebacks come on top). */
  readonly events: number;
  /** Event time of the last event (ms); default now. */
  readonly end?: number;
  /** Event-time span the events cover (ms); default one day. */
  readonly spanMs?: number;
  readonly cards?: number;
  readonly users?: number;
  /** Share of events that are transactions (the rest are clicks). */
  readonly transactionShare?: number;
  /** Largest backwards jitter of event times (ms). */
  readonly jitterMs?: number;
  /** Chance that a transaction starts a fraud burst. */
  readonly fraudRate?: number;
  /** Chargebacks follow their transaction after up to this long (ms); default 30 minutes. */
  readonly chargebackDelayMs?: number;
  /** From this event time on, amounts are shifted and merchants new. */
  readonly driftFrom?: number;
  /** Emit chargebacks even when their time is after `end` (a live producer waits for them). */
  readonly includeFutureChargebacks?: boolean;
}

const CATEGORIES = ['5411', '5812', '5999', '4111', '5732', '7011'];
/** Categories of the merchants that appear with drift: direct marketing and money transfer. */
const NEW_MERCHANT_CATEGORIES = ['5965', '4829'];
const COUNTRIES = ['NL', 'DE', 'FR', 'BE', 'GB', 'ES'];
const CHANNELS = ['ONLINE', 'IN_STORE', 'ATM'];
const PAGES = ['/', '/search', '/product', '/cart', '/checkout', '/account'];
const ACTIONS = ['VIEW', 'CLICK', 'ADD_TO_CART', 'PURCHASE'];
const REASONS = ['FRAUD_CARD_NOT_PRESENT', 'FRAUD_UNAUTHORIZED', 'FRAUD_ACCOUNT_TAKEOVER'];

export function* demoEvents(options: DemoDataOptions): Generator<DemoRecord> {
  const random = uniformRandom(options.seed);
  const end = options.end ?? Date.now();
  const span = options.spanMs ?? 86_400_000;
  const cards = options.cards ?? 500;
  const users = options.users ?? 300;
  const share = options.transactionShare ?? 0.6;
  const jitter = options.jitterMs ?? 60_000;
  const fraudRate = options.fraudRate ?? 0.004;
  const chargebackDelay = options.chargebackDelayMs ?? 1_800_000;
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)] as T;
  /** Fraudulent payments of a burst in progress and chargebacks not yet due, by time. */
  let burst: { card: number; left: number; time: number } | undefined;
  const chargebacks: DemoRecord[] = [];
  let serial = 0;

  const transaction = (card: number, timestamp: number, fraud: boolean): DemoRecord => {
    const drifted = options.driftFrom !== undefined && timestamp >= options.driftFrom;
    const typical = 40 * (1 + (card % 7) / 7) * (drifted ? 1.8 : 1);
    const amount = fraud
      ? Math.round(typical * (4 + 6 * random()) * 100) / 100
      : Math.round(Math.exp(Math.log(typical) + 0.6 * gaussian(random)) * 100) / 100;
    // Each card has a few regular merchants; fraud goes to merchants it never used.
    const merchant = fraud
      ? `m-risk-${Math.floor(random() * 50)}`
      : drifted && random() < 0.3
        ? `m-new-${Math.floor(random() * 300)}`
        : `m-${(card * 7 + Math.floor(random() ** 2 * 6) * 13) % 200}`;
    const id = `t-${options.seed}-${serial++}`;
    if (fraud && (options.includeFutureChargebacks || timestamp + chargebackDelay <= end)) {
      const at = timestamp + Math.floor(chargebackDelay * (0.2 + 0.8 * random()));
      if (options.includeFutureChargebacks || at <= end) {
        chargebacks.push({
          topic: 'raw.chargebacks',
          key: `card-${card}`,
          value: {
            chargeback_id: `cb-${id}`,
            transaction_id: id,
            card_id: `card-${card}`,
            reason: pick(REASONS),
            amount: Math.min(999_999, Math.max(0.01, amount)),
            timestamp: at,
          },
        });
        chargebacks.sort((left, right) => (left.value.timestamp as number) - (right.value.timestamp as number));
      }
    }
    return {
      topic: 'raw.transactions',
      key: `card-${card}`,
      fraud,
      value: {
        transaction_id: id,
        card_id: `card-${card}`,
        merchant_id: merchant,
        merchant_category: fraud
          ? pick(['5732', '5999'])
          : merchant.startsWith('m-new-')
            ? pick(NEW_MERCHANT_CATEGORIES)
            : pick(CATEGORIES),
        amount: Math.min(999_999, Math.max(0.01, amount)),
        currency: 'EUR',
        country: fraud ? pick(['RO', 'BR', 'NG', 'US']) : pick(COUNTRIES),
        channel: fraud ? 'ONLINE' : pick(CHANNELS),
        timestamp,
      },
    };
  };

  for (let index = 0; index < options.events; index++) {
    const base = end - span + Math.floor((span * (index + 1)) / options.events);
    const timestamp = Math.max(0, base - Math.floor(random() * random() * jitter));
    while (chargebacks.length > 0 && (chargebacks[0]?.value.timestamp as number) <= base) yield chargebacks.shift() as DemoRecord;
    if (burst && random() < 0.5) {
      burst.left--;
      burst.time = Math.max(burst.time + 1, timestamp);
      yield transaction(burst.card, burst.time, true);
      if (burst.left <= 0) burst = undefined;
      continue;
    }
    if (random() < share) {
      const card = Math.floor(random() ** 2 * cards); // some cards are used far more than others
      if (!burst && random() < fraudRate) {
        burst = { card, left: 3 + Math.floor(random() * 6), time: timestamp };
        yield transaction(card, timestamp, true);
        continue;
      }
      yield transaction(card, timestamp, false);
    } else {
      const user = Math.floor(random() ** 2 * users);
      yield {
        topic: 'raw.clicks',
        key: `user-${user}`,
        value: {
          click_id: `c-${options.seed}-${serial++}`,
          user_id: `user-${user}`,
          session_id: `s-${user}-${Math.floor(timestamp / 1_800_000)}`,
          page: pick(PAGES),
          action: pick(ACTIONS),
          duration_ms: Math.floor(random() * 120_000),
          timestamp,
        },
      };
    }
  }
  if (options.includeFutureChargebacks) yield* chargebacks;
  else for (const chargeback of chargebacks) if ((chargeback.value.timestamp as number) <= end) yield chargeback;
}

/** A standard normal draw (Box–Muller). */
function gaussian(random: () => number): number {
  const u = Math.max(Number.EPSILON, random());
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}
