import { randomUUID } from 'node:crypto';
import type { FeatureRow } from '../topology/features.js';
import { featureNames, type FeatureView } from '../topology/features.js';
import { quoteIdentifier } from './chdb-engine.js';
import type { OfflineStore } from './store.js';
import { tableName } from './tables.js';

/**
 * Point-in-time training sets: each label joined with every requested feature as of the label
 * time — the row of the newest event at or before it (equal times: the last to arrive), never a
 * later one — and missing when that row is older than the view's TTL. Two executions that agree:
 * an ASOF JOIN over the offline store's feature tables, and a join over rows from a replay.
 */
export interface Label {
  readonly label_id: string;
  readonly entity_id: string;
  /** Epoch milliseconds. */
  readonly label_time: number;
  readonly label: number;
}

export interface FeatureRequest {
  readonly view: FeatureView;
  /** The definition version whose rows to use. */
  readonly version: number;
  /** Features of the view (default: all). */
  readonly features?: readonly string[];
}

export interface TrainingRow extends Label {
  /** `<view>.<feature>` → value, null when missing. */
  readonly features: Readonly<Record<string, number | null>>;
}

function requested(request: FeatureRequest): string[] {
  const all = featureNames(request.view);
  for (const feature of request.features ?? []) {
    if (!all.includes(feature)) throw new Error(`view ${request.view.name} has no feature ${feature}; it has ${all.join(', ')}`);
  }
  return [...(request.features ?? all)];
}

/** The training set by SQL: labels into a scratch table, one ASOF LEFT JOIN per view. */
export async function pointInTimeSql(
  store: OfflineStore,
  labels: readonly Label[],
  requests: readonly FeatureRequest[],
): Promise<TrainingRow[]> {
  const scratch = `_labels_${randomUUID().replaceAll('-', '')}`;
  await store.command(
    `CREATE TABLE ${scratch} (label_id String, entity_id String, label_time DateTime64(3, 'UTC'), label Float64) ENGINE = Memory`,
  );
  try {
    for (let start = 0; start < labels.length; start += 50_000)
      await store.insert(
        scratch,
        labels.slice(start, start + 50_000).map((label) => ({ ...label })),
      );
    const selects: string[] = [];
    const joins: string[] = [];
    requests.forEach((request, index) => {
      const alias = `f${index}`;
      const features = requested(request);
      const ttl = request.view.ttlMs;
      // Equal event times: the row of the last event to arrive (highest event_sequence) wins.
      const tuple = features.map(quoteIdentifier).join(', ');
      joins.push(`ASOF LEFT JOIN (
        SELECT entity_id, event_time, argMax(tuple(${tuple}, 0), event_sequence) AS v
        FROM ${quoteIdentifier(tableName(`features.${request.view.name}`))}
        WHERE view_version = ${request.version}
        GROUP BY entity_id, event_time
      ) AS ${alias} ON l.entity_id = ${alias}.entity_id AND l.label_time >= ${alias}.event_time`);
      features.forEach((feature, position) => {
        const value = `tupleElement(${alias}.v, ${position + 1})`;
        const fresh =
          ttl === undefined
            ? `${alias}.event_time IS NOT NULL`
            : `${alias}.event_time IS NOT NULL AND toUnixTimestamp64Milli(l.label_time) - toUnixTimestamp64Milli(${alias}.event_time) <= ${ttl}`;
        selects.push(`if(${fresh}, ${value}, NULL) AS ${quoteIdentifier(`${request.view.name}.${feature}`)}`);
      });
    });
    const sql = `SELECT l.label_id AS label_id, l.entity_id AS entity_id, toUnixTimestamp64Milli(l.label_time) AS label_time, l.label AS label${selects.length > 0 ? `, ${selects.join(', ')}` : ''}
      FROM ${scratch} AS l ${joins.join('\n')}
      ORDER BY label_id
      SETTINGS join_use_nulls = 1, output_format_json_quote_64bit_integers = 0`;
    const rows = await store.query<Record<string, unknown>>(sql);
    const columns = requests.flatMap((request) => requested(request).map((feature) => `${request.view.name}.${feature}`));
    return rows.map((row) => ({
      label_id: String(row.label_id),
      entity_id: String(row.entity_id),
      label_time: Number(row.label_time),
      label: Number(row.label),
      features: Object.fromEntries(
        columns.map((column) => [column, row[column] === null || row[column] === undefined ? null : Number(row[column])]),
      ),
    }));
  } finally {
    await store.command(`DROP TABLE IF EXISTS ${scratch}`);
  }
}

/** The training set from rows of a replay (any order): the same join, in memory. */
export function pointInTimeJoin(rows: Iterable<FeatureRow>, labels: readonly Label[], requests: readonly FeatureRequest[]): TrainingRow[] {
  // Per view and entity: rows by (event time, arrival).
  const index = new Map<string, FeatureRow[]>();
  const wanted = new Map(requests.map((request) => [request.view.name, request.version]));
  for (const row of rows) {
    if (wanted.get(row.view) !== row.version) continue;
    const key = `${row.view}\u0000${row.entity}`;
    let list = index.get(key);
    if (!list) {
      list = [];
      index.set(key, list);
    }
    list.push(row);
  }
  for (const list of index.values()) list.sort((left, right) => left.eventTime - right.eventTime || left.sequence - right.sequence);
  return [...labels]
    .sort((left, right) => (left.label_id < right.label_id ? -1 : left.label_id > right.label_id ? 1 : 0))
    .map((label) => {
      const features: Record<string, number | null> = {};
      for (const request of requests) {
        const list = index.get(`${request.view.name}\u0000${label.entity_id}`) ?? [];
        const row = lastAtOrBefore(list, label.label_time);
        const fresh = row !== undefined && (request.view.ttlMs === undefined || label.label_time - row.eventTime <= request.view.ttlMs);
        for (const feature of requested(request))
          features[`${request.view.name}.${feature}`] = fresh ? (row.values[feature] ?? null) : null;
      }
      return { ...label, features };
    });
}

function lastAtOrBefore(rows: readonly FeatureRow[], time: number): FeatureRow | undefined {
  let low = 0;
  let high = rows.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((rows[middle]?.eventTime ?? Infinity) <= time) low = middle + 1;
    else high = middle;
  }
  return low > 0 ? rows[low - 1] : undefined;
}
