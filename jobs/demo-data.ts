/**
 * The demo's event generator: card transactions and web clicks for the raw.* topics, seeded so a
 * run can be repeated exactly. Event times advance through a time span with a little jitter, so a
 * few events arrive out of order, as they do from real producers.
 */
export interface DemoRecord {
  readonly topic: 'raw.transactions' | 'raw.clicks';
  readonly key: string;
  readonly value: Record<string, unknown>;
}

export interface DemoDataOptions {
  readonly seed: number;
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
}

/** mulberry32: a small, fast, seedable generator (uniform in [0, 1)). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const CATEGORIES = ['5411', '5812', '5999', '4111', '5732', '7011'];
const COUNTRIES = ['NL', 'DE', 'FR', 'BE', 'GB', 'ES'];
const CHANNELS = ['ONLINE', 'IN_STORE', 'ATM'];
const PAGES = ['/', '/search', '/product', '/cart', '/checkout', '/account'];
const ACTIONS = ['VIEW', 'CLICK', 'ADD_TO_CART', 'PURCHASE'];

export function* demoEvents(options: DemoDataOptions): Generator<DemoRecord> {
  const random = seededRandom(options.seed);
  const end = options.end ?? Date.now();
  const span = options.spanMs ?? 86_400_000;
  const cards = options.cards ?? 500;
  const users = options.users ?? 300;
  const share = options.transactionShare ?? 0.6;
  const jitter = options.jitterMs ?? 60_000;
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)] as T;
  for (let index = 0; index < options.events; index++) {
    const base = end - span + Math.floor((span * (index + 1)) / options.events);
    const timestamp = Math.max(0, base - Math.floor(random() * random() * jitter));
    if (random() < share) {
      const card = Math.floor(random() ** 2 * cards); // some cards are used far more than others
      // Log-normal-ish amounts around 40, cents kept.
      const amount = Math.round(Math.exp(Math.log(40) + 0.9 * gaussian(random)) * 100) / 100;
      yield {
        topic: 'raw.transactions',
        key: `card-${card}`,
        value: {
          transaction_id: `t-${options.seed}-${index}`,
          card_id: `card-${card}`,
          merchant_id: `m-${Math.floor(random() ** 1.5 * 200)}`,
          merchant_category: pick(CATEGORIES),
          amount: Math.min(999_999, Math.max(0.01, amount)),
          currency: 'EUR',
          country: pick(COUNTRIES),
          channel: pick(CHANNELS),
          timestamp,
        },
      };
    } else {
      const user = Math.floor(random() ** 2 * users);
      yield {
        topic: 'raw.clicks',
        key: `user-${user}`,
        value: {
          click_id: `c-${options.seed}-${index}`,
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
}

/** A standard normal draw (Box–Muller). */
function gaussian(random: () => number): number {
  const u = Math.max(Number.EPSILON, random());
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}
