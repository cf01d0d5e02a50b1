import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ModelWatcher } from '../models/deployment.js';
import type { MetricsRegistry } from '../common/metrics.js';
import type { OpsRoute } from './ops-server.js';
import type { ModelDefinition } from '../topology/models.js';
import type { OnlineStore, OnlineValue } from './online.js';
import { predict, type Prediction } from '../streams/inference/stage.js';
import { decodePathSegment, readBody } from '../common/http.js';
import { eventProblems } from './event-check.js';

const MAX_BODY = 1024 * 1024;

/**
 * `POST /predict/<model>` with `{"entity_id": "card-1", "event": {"amount": 12.5}, "event_id"?: "..."}`:
 * a synchronous prediction with the same model version in service and the same features (the
 * entity's latest online values) the streaming stage uses; same fallbacks, same answer shape.
 * The event is checked against the source's raw Avro schema first: a field of the wrong type, a
 * number that is not finite, an unknown field or a missing model input is a 400 naming the field.
 */
const body = z.strictObject({
  entity_id: z.string().min(1).max(1024),
  event_id: z.string().min(1).max(1024).optional(),
  event: z.record(z.string(), z.unknown()).default({}),
  event_time: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
});

export function predictRoutes(
  models: ReadonlyMap<string, { readonly model: ModelDefinition; readonly watcher: ModelWatcher }>,
  online: () => OnlineStore | undefined,
  metrics: MetricsRegistry,
): OpsRoute {
  return async (request, url) => {
    const parts = url.pathname.split('/').filter((part) => part !== '');
    if (parts[0] !== 'predict') return undefined;
    if (request.method !== 'POST' || parts.length !== 2) return { status: 405, body: { error: 'use POST /predict/<model>' } };
    const name = decodePathSegment(parts[1] ?? '');
    if (name === undefined) return { status: 400, body: { error: 'malformed percent-encoding in the model name' } };
    const deployed = models.get(name);
    if (!deployed)
      return { status: 404, body: { error: `no model named ${JSON.stringify(name)}; models: ${[...models.keys()].join(', ')}` } };
    const text = (await readBody(request, MAX_BODY))?.toString('utf8');
    if (text === undefined) return { status: 413, body: { error: `the body exceeds ${MAX_BODY} bytes` } };
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      return { status: 400, body: { error: `the body is not JSON: ${(error as Error).message}` } };
    }
    const parsed = body.safeParse(json);
    if (!parsed.success)
      return {
        status: 400,
        body: { error: parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ') },
      };
    const problems = eventProblems(deployed.model, parsed.data.event);
    if (problems.length > 0)
      return { status: 400, body: { error: problems.join('; '), fields: problems.map((problem) => problem.split(':')[0]) } };
    const store = online();
    const started = Date.now();
    // The views of one source come from one read of the entity's state, as in the inference stage.
    const rows = new Map<string, Promise<Map<string, OnlineValue>>>();
    const prediction = await predict(
      {
        model: deployed.model,
        watcher: deployed.watcher,
        metrics,
        features: {
          async valuesAt(view, entity) {
            if (!store) return null;
            const views = store.viewsLike(view);
            const key = views.join('\u0000');
            let found = rows.get(key);
            if (!found) {
              found = store.getMany(views, [entity]).then((answer) => new Map(Object.entries(answer[0]?.features ?? {})));
              rows.set(key, found);
            }
            const value = (await found).get(view);
            return value?.status === 'PRESENT' ? value.values : null;
          },
        },
      },
      {
        eventId: parsed.data.event_id ?? `request:${randomUUID()}`,
        entity: parsed.data.entity_id,
        eventTime: parsed.data.event_time ?? started,
        value: parsed.data.event,
      },
      started,
    );
    return { status: 200, body: finiteOrFallback(prediction, deployed.model) };
  };
}

/**
 * A score that is not a finite number is never a CHAMPION prediction: it becomes the model's
 * fallback, with the reason. (The scorer already rejects such scores, which the prediction code
 * turns into a `model_error` fallback; this holds whatever the prediction code does.)
 */
export function finiteOrFallback(prediction: Prediction, model: ModelDefinition): Prediction {
  if (Number.isFinite(prediction.score)) return prediction;
  const score = model.fallbackScore;
  return {
    ...prediction,
    deployment: 'FALLBACK',
    score,
    decision: score >= model.threshold,
    fallback_reason: `non_finite_score: version ${prediction.model_version} scored ${String(prediction.score)}`,
  };
}
