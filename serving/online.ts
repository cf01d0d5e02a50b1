import type http from 'node:http';
import { z } from 'zod';
import { decodePathSegment, readBody } from '../common/http.js';
import { SluiceError } from '../common/errors.js';
import type { FeatureValues, FeatureView } from '../topology/features.js';
import type { QueryResult, RunningStage } from '../streams/runtime/index.js';
import type { StoredEntity } from '../streams/features/entity-history.js';
import { ENTITY_STORE } from '../streams/features/stage.js';

/**
 * Online feature lookups: the latest row of a view for an entity, read from the features stage's
 * own RocksDB state (interactive queries), in-process or over HTTP. A row older than the view's
 * TTL at the lookup time is reported as OUTSIDE_MAX_AGE with no values: never served stale. The
 * lookup time is the request's `at`, else the view's TTL clock: the wall clock, or for
 * `ttlClock: 'event'` the entity's newest event time (topology/features.ts, TtlClock).
 */
export type LookupStatus = 'PRESENT' | 'NOT_FOUND' | 'OUTSIDE_MAX_AGE';

export interface OnlineValue {
  readonly view: string;
  readonly entity_id: string;
  readonly status: LookupStatus;
  readonly version: number | null;
  /** Event time the values are valid as of. */
  readonly event_time: number | null;
  /** The event whose arrival produced the values. */
  readonly event_id: string | null;
  readonly values: FeatureValues | null;
  /** The time the TTL was judged against: the request's `at`, or the view's clock (wall, or the entity's newest event). */
  readonly as_of: number;
}

type QueryAnswer = QueryResult<StoredEntity>;

export class UnknownViewError extends SluiceError {
  constructor(view: string, known: readonly string[]) {
    super('SLUICE_UNKNOWN_VIEW', `no online feature view named "${view}"; online views: ${known.join(', ')}`, { context: { view } });
  }
}

export class EntityElsewhereError extends SluiceError {
  constructor(view: string, entity: string, partition: number, owner: string | undefined) {
    super(
      'SLUICE_ENTITY_ELSEWHERE',
      `entity ${entity} of ${view} is in partition ${partition}, owned by ${owner ?? 'no member right now'}; ask that instance`,
      {
        retriable: true,
        context: { view, entity, partition, owner },
      },
    );
  }
}

export class OnlineStore {
  private readonly views: Map<string, FeatureView>;
  /** Reads of an entity's state in flight, by topic and entity: concurrent lookups share one. */
  private readonly reading = new Map<string, Promise<QueryAnswer>>();

  constructor(
    private readonly stage: RunningStage,
    views: readonly FeatureView[],
    private readonly topicPrefix: string,
  ) {
    this.views = new Map(views.filter((view) => view.online).map((view) => [view.name, view]));
  }

  get viewNames(): string[] {
    return [...this.views.keys()];
  }

  /** The latest values of a view for an entity; the TTL judged as of `at` (default: the view's clock). */
  async get(viewName: string, entity: string, at?: number): Promise<OnlineValue> {
    const view = this.views.get(viewName);
    if (!view) throw new UnknownViewError(viewName, this.viewNames);
    const result = await this.read(view.source.name, entity);
    if (!result.owned) throw new EntityElsewhereError(view.name, entity, result.partition, result.owner?.clientId);
    return this.answer(view, entity, result.value, at);
  }

  /**
   * An entity's state of a source, read from the features stage's store. Lookups that arrive
   * while a read of the same entity is in flight share its answer (one RocksDB read and one
   * decode instead of one per request): under load many requests ask for the same hot entities,
   * and a read that started microseconds earlier is as current as a new one.
   */
  private read(source: string, entity: string): Promise<QueryAnswer> {
    const key = `${source}\u0000${entity}`;
    let pending = this.reading.get(key);
    if (!pending) {
      pending = this.stage.query<StoredEntity>(ENTITY_STORE, entity, `${this.topicPrefix}events.${source}`);
      this.reading.set(key, pending);
      const done = (): void => {
        this.reading.delete(key);
      };
      pending.then(done, done);
    }
    return pending;
  }

  private answer(view: FeatureView, entity: string, stored: StoredEntity | undefined, at: number | undefined): OnlineValue {
    // An entity's key holds its head (a segment's key is no entity id the stage accepts).
    const state = stored?.kind === 'segment' ? undefined : stored;
    const row = state?.latest[view.name];
    const asOf = at ?? (view.ttlClock === 'event' ? (state?.newest ?? row?.eventTime ?? Date.now()) : Date.now());
    if (!row)
      return {
        view: view.name,
        entity_id: entity,
        status: 'NOT_FOUND',
        version: null,
        event_time: null,
        event_id: null,
        values: null,
        as_of: asOf,
      };
    const expired = view.ttlMs !== undefined && asOf - row.eventTime > view.ttlMs;
    return {
      view: view.name,
      entity_id: entity,
      status: expired ? 'OUTSIDE_MAX_AGE' : 'PRESENT',
      version: row.version,
      event_time: row.eventTime,
      event_id: row.eventId,
      values: expired ? null : row.values,
      as_of: asOf,
    };
  }

  /** The online views that share a view's source (and so one entity state). */
  viewsLike(viewName: string): string[] {
    const source = this.views.get(viewName)?.source.name;
    return [...this.views.values()].filter((view) => view.source.name === source).map((view) => view.name);
  }

  /** Several views for several entities: results per entity, in request order (one state read per entity and source). */
  async getMany(
    views: readonly string[],
    entities: readonly string[],
    at?: number,
  ): Promise<{ entity_id: string; features: Record<string, OnlineValue> }[]> {
    const wanted = views.map((name) => {
      const view = this.views.get(name);
      if (!view) throw new UnknownViewError(name, this.viewNames);
      return view;
    });
    const sources = [...new Set(wanted.map((view) => view.source.name))];
    return Promise.all(
      entities.map(async (entity) => {
        const states = new Map<string, StoredEntity | undefined>();
        for (const source of sources) {
          const result = await this.read(source, entity);
          if (!result.owned) throw new EntityElsewhereError(source, entity, result.partition, result.owner?.clientId);
          states.set(source, result.value);
        }
        return {
          entity_id: entity,
          features: Object.fromEntries(wanted.map((view) => [view.name, this.answer(view, entity, states.get(view.source.name), at)])),
        };
      }),
    );
  }
}

/**
 * Features as of an event for inference: waits (polling, up to `maxWaitMs`) until the features
 * stage has folded this very event into the entity's state — the latest row is this event's or a
 * newer one — so a prediction sees what training saw; then takes what is there. The views of one
 * event come from one read of the entity's state.
 */
export function featuresAsOfEvent(
  online: OnlineStore,
  maxWaitMs = 2_000,
): { valuesAt(view: string, entity: string, eventId: string, eventTime: number): Promise<FeatureValues | null> } {
  let last: { key: string; rows: Promise<Map<string, OnlineValue>> } | undefined;
  const rowsOf = async (view: string, entity: string, eventTime: number): Promise<Map<string, OnlineValue>> => {
    const found = await online.getMany(online.viewsLike(view), [entity], eventTime);
    return new Map(Object.entries(found[0]?.features ?? {}));
  };
  return {
    async valuesAt(view, entity, eventId, eventTime) {
      const deadline = Date.now() + maxWaitMs;
      for (let delay = 1; ; delay = Math.min(50, delay * 2)) {
        const key = `${entity}\u0000${eventId}\u0000${eventTime}`;
        if (last?.key !== key) last = { key, rows: rowsOf(view, entity, eventTime) };
        const found = (await last.rows).get(view) ?? (await online.get(view, entity, eventTime));
        const caughtUp = found.status !== 'NOT_FOUND' && (found.event_id === eventId || (found.event_time ?? 0) > eventTime);
        if (caughtUp || Date.now() >= deadline) return found.status === 'PRESENT' ? found.values : null;
        last = undefined; // not there yet: read again
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    },
  };
}

// ---- HTTP ----------------------------------------------------------------------------------

export interface RouteResponse {
  readonly status: number;
  readonly body: unknown;
}

/** Answers a request it owns, or undefined for the next handler. */
export type RouteHandler = (request: http.IncomingMessage, url: URL) => Promise<RouteResponse | undefined>;

const batchRequest = z.strictObject({
  views: z.array(z.string().min(1).max(256)).min(1).max(100),
  entities: z.array(z.string().min(1).max(1024)).min(1).max(1_000),
  at: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
});

const MAX_BODY = 1024 * 1024;

/**
 * `GET /features/<view>/<entity>[?at=<ms>]` and `POST /features` with
 * `{"views": [...], "entities": [...], "at"?: ms}`. Unknown views are 404, malformed requests 400,
 * entities owned by another instance 421 (naming the owner).
 */
export function onlineRoutes(store: () => OnlineStore | undefined): RouteHandler {
  return async (request, url) => {
    const parts = url.pathname.split('/').filter((part) => part !== '');
    if (parts[0] !== 'features') return undefined;
    const online = store();
    if (!online) return { status: 503, body: { error: 'the features stage is not running in this process' } };
    try {
      if (request.method === 'GET' && parts.length === 3) {
        const at = url.searchParams.get('at');
        if (at !== null && (!/^\d{1,16}$/.test(at) || !Number.isSafeInteger(Number(at))))
          return { status: 400, body: { error: '"at" must be epoch milliseconds' } };
        const view = decodePathSegment(parts[1] ?? '');
        const entity = decodePathSegment(parts[2] ?? '');
        if (view === undefined || entity === undefined) return { status: 400, body: { error: 'malformed percent-encoding in the path' } };
        return { status: 200, body: await online.get(view, entity, at === null ? undefined : Number(at)) };
      }
      if (request.method === 'GET' && parts.length === 1) return { status: 200, body: { views: online.viewNames } };
      if (request.method === 'POST' && parts.length === 1) {
        const text = (await readBody(request, MAX_BODY))?.toString('utf8');
        if (text === undefined) return { status: 413, body: { error: `the body exceeds ${MAX_BODY} bytes` } };
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch (error) {
          return { status: 400, body: { error: `the body is not JSON: ${(error as Error).message}` } };
        }
        const parsed = batchRequest.safeParse(json);
        if (!parsed.success) {
          return {
            status: 400,
            body: { error: parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ') },
          };
        }
        return { status: 200, body: { results: await online.getMany(parsed.data.views, parsed.data.entities, parsed.data.at) } };
      }
      return { status: 405, body: { error: 'use GET /features/<view>/<entity> or POST /features' } };
    } catch (error) {
      if (error instanceof UnknownViewError) return { status: 404, body: { error: error.message } };
      if (error instanceof EntityElsewhereError) return { status: 421, body: { error: error.message, ...error.context } };
      throw error;
    }
  };
}
