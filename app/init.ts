import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PROJECT_ROOT } from '../common/config.js';
import { SluiceError } from '../common/errors.js';

/**
 * `sluice init <dir>`: a project of one's own, outside this repository — a topology file with one
 * source (orders, keyed by customer_id) and two feature views, the source's raw Avro schema beside
 * it, a sample CSV, and a README that says how to run it with this installation.
 */
export interface ScaffoldFile {
  /** Relative to the project folder. */
  readonly path: string;
  readonly content: string;
}

export class ScaffoldError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_INIT', message);
  }
}

/** Writes the project; refuses, writing nothing, when any of its files exists. Returns the files written. */
export async function scaffoldProject(dir: string, sluiceRoot: string = PROJECT_ROOT): Promise<string[]> {
  const folder = path.resolve(dir);
  const files = projectFiles(path.basename(folder), sluiceRoot);
  const existing = files.map((file) => path.join(folder, file.path)).filter((file) => existsSync(file));
  if (existing.length > 0)
    throw new ScaffoldError(`${existing.join(', ')} ${existing.length === 1 ? 'exists' : 'exist'} already; sluice init overwrites nothing`);
  for (const file of files) {
    const target = path.join(folder, file.path);
    await fs.mkdir(path.dirname(target), { recursive: true });
    // 'wx': fail rather than overwrite a file that appeared meanwhile.
    await fs.writeFile(target, file.content, { flag: 'wx' });
  }
  return files.map((file) => path.join(folder, file.path));
}

/** The project's files, for a project folder named `name` run with the sluice checkout at `sluiceRoot`. */
export function projectFiles(name: string, sluiceRoot: string): ScaffoldFile[] {
  const topologyName =
    name
      .toLowerCase()
      .replace(/[^a-z0-9_]+/g, '_')
      .replace(/^_+|_+$/g, '') || 'my_pipeline';
  return [
    { path: 'sluice.config.ts', content: configFile(topologyName) },
    { path: 'schemas/raw.orders.avsc', content: ORDERS_SCHEMA },
    { path: 'data/orders.csv', content: ORDERS_CSV },
    { path: 'README.md', content: readme(name, sluiceRoot) },
  ];
}

function configFile(name: string): string {
  return `import { count, defineTopology, featureView, max, mean, slidingWindow, source, sum } from 'sluice';

/**
 * The ${name} pipeline: one source and two feature views. \`sluice up --topology .\` runs it
 * (README.md); sluice derives topics, schema subjects, ClickHouse tables and stages from this file.
 */

/** Orders from the shop. Producers write them to raw.orders, keyed by customer_id. */
const orders = source({
  name: 'orders',
  // The Avro schema of raw.orders values; events.orders gets it plus event_id, event_time, ingest_time.
  schema: new URL('./schemas/raw.orders.avsc', import.meta.url),
  description: 'Orders from the shop.',
  // Identifies an order: the same order sent twice is dropped.
  idField: 'order_id',
  // When it happened: the event time that windows, TTLs and --from/--to ranges use.
  eventTimeField: 'ordered_at',
  // The entity: views are computed per customer, and raw.orders messages must be keyed by it.
  entityField: 'customer_id',
  rules: {
    order_id: { required: true },
    customer_id: { required: true },
    amount: { required: true, min: 0 },
  },
});

/** Per customer, the last hour: how many orders, how much spent. */
const customerOrders1h = featureView({
  name: 'customer_orders_1h',
  source: orders,
  window: slidingWindow('1h'),
  features: { orders: count(), spent: sum('amount') },
  // Late orders up to 10 minutes still count.
  grace: '10m',
  // Served online while the newest order is less than 2 hours old — judged in event time, the
  // customer's newest order, so the 2024 sample data is served as it was ('wall' judges by now).
  ttl: '2h',
  ttlClock: 'event',
  owner: 'you',
  description: 'Orders and amount spent per customer over the last hour.',
});

/** Per customer, the last 30 days: typical and largest order, items bought. */
const customerSpend30d = featureView({
  name: 'customer_spend_30d',
  source: orders,
  window: slidingWindow('30d'),
  features: { amount_mean: mean('amount'), amount_max: max('amount'), items: sum('items') },
  grace: '10m',
  owner: 'you',
  description: 'Typical and largest order and items bought per customer over the last 30 days.',
});

export default defineTopology({
  name: '${name}',
  sources: [orders],
  views: [customerOrders1h, customerSpend30d],
  // A model needs labels: a second source whose events name the scored event (e.g. returns naming
  // order_id), then model({ ... }) from 'sluice' — see examples/fraud/models.ts in the sluice checkout.
  models: [],
});
`;
}

const ORDERS_SCHEMA = `${JSON.stringify(
  {
    type: 'record',
    name: 'Order',
    namespace: 'example.shop',
    doc: 'An order as the shop reports it: the value of raw.orders.',
    fields: [
      { name: 'order_id', type: 'string', doc: 'Unique id of the order; ingest derives the event id from it.' },
      { name: 'customer_id', type: 'string', doc: 'Who ordered: the entity of the views and the message key.' },
      { name: 'amount', type: 'double', doc: 'Order total.' },
      { name: 'items', type: 'int', default: 1, doc: 'Number of items.' },
      { name: 'country', type: 'string', default: '', doc: 'Shipping country, ISO 3166-1 alpha-2.' },
      { name: 'ordered_at', type: { type: 'long', logicalType: 'timestamp-millis' }, doc: 'When the order was placed: the event time.' },
    ],
  },
  null,
  2,
)}\n`;

/** Sample orders of four customers on one day of 2024 (times in UTC; CSV cells take ISO times or epoch ms). */
const ORDERS_CSV = `order_id,customer_id,amount,items,country,ordered_at
o-1001,customer-1,42.50,2,NL,2024-03-01T09:05:00Z
o-1002,customer-2,18.00,1,DE,2024-03-01T09:12:00Z
o-1003,customer-1,7.25,1,NL,2024-03-01T09:40:00Z
o-1004,customer-3,120.00,4,FR,2024-03-01T10:02:00Z
o-1005,customer-2,33.10,3,DE,2024-03-01T10:15:00Z
o-1006,customer-4,9.99,1,BE,2024-03-01T10:31:00Z
o-1007,customer-1,64.00,5,NL,2024-03-01T11:20:00Z
o-1008,customer-3,15.50,1,FR,2024-03-01T11:48:00Z
o-1009,customer-2,27.80,2,DE,2024-03-01T12:05:00Z
o-1010,customer-1,12.00,1,NL,2024-03-01T12:10:00Z
o-1011,customer-4,250.00,6,BE,2024-03-01T13:30:00Z
o-1012,customer-3,8.40,1,FR,2024-03-01T14:00:00Z
`;

function readme(name: string, sluiceRoot: string): string {
  const sluice = `npx --prefix ${sluiceRoot} sluice`;
  return `# ${name}

A [sluice](${sluiceRoot}/README.md) pipeline: \`sluice.config.ts\` declares one source, \`orders\`
(its raw Avro schema in \`schemas/raw.orders.avsc\`, keyed by \`customer_id\`), and two feature
views over it, \`customer_orders_1h\` and \`customer_spend_30d\`. \`data/orders.csv\` holds sample
orders.

## Run it

sluice is the checkout at \`${sluiceRoot}\`. From this folder (the stack keeps its data in
\`.sluice/\` here; add it to \`.gitignore\`), start the stack — Kafka, the schema registry, ClickHouse
and the stages of this topology — in the foreground (Ctrl-C stops it):

\`\`\`sh
${sluice} up --topology .
\`\`\`

From another terminal, in this folder, send the sample orders, then look at the results:

\`\`\`sh
${sluice} produce orders data/orders.csv
\`\`\`

\`\`\`sh
${sluice} features get customer_spend_30d customer-1
\`\`\`

\`\`\`sh
${sluice} sql "SELECT customer_id, count() AS orders, sum(amount) AS spent FROM events_orders GROUP BY customer_id ORDER BY customer_id"
\`\`\`

\`\`\`sh
${sluice} sql "SELECT entity_id AS customer, event_time, orders, spent FROM features_customer_orders_1h ORDER BY event_time"
\`\`\`

\`sluice status\` lists every endpoint (the SQL endpoint speaks ClickHouse's HTTP interface); \`sluice
--help\` every command. Shorter: \`alias sluice='node ${sluiceRoot}/bin/sluice.js'\`.

## Make it yours

- Change \`schemas/raw.orders.avsc\` to your fields, or add a source: a raw schema in \`schemas/\`, a
  \`source({...})\` naming its id, event-time and entity fields, and views over it in
  \`sluice.config.ts\`. Restart \`sluice up\` to pick it up.
- Producers must key \`raw.<source>\` messages by the source's entity field (\`customer_id\` here), as
  \`sluice produce\` does: each entity's events then stay in one partition, in order.
- CSV cells are typed by the raw schema; timestamps take ISO times or epoch milliseconds.
- Ranges are in event time: \`sluice backfill --from 2024-03-01 --to 2024-03-02\` recomputes the
  views for that day's orders.
`;
}
