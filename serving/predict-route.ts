import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ModelWatcher } from '../models/deployment.js';
import type { MetricsRegistry } from '../common/metrics.js';
import type { OpsRoute } from './ops-server.js';
import type { ModelDefinition } from '../topology/models.js';
import type { OnlineStore } from './online.js';
import { predict } from '../streams/inference/stage.js';
import { readBody } from '../common/http.js';

const MAX_BODY = 1024 * 1024;

/**
 * `POST /predict/<model>` with `{"entity_id": "card-1", "event": {"amount": 12.5}, "event_id"?: "..."}`:
 * a synchronous prediction with the same model version in service and the same features (the
 * entity's latest online values) the streaming stage uses; same fallbacks, same answer shape.
 */
const body = z.object({
  entity_id: z.string().min(1),
  event_id: z.string().min(1).optional(),
  event: z.record(z.string(), z.unknown()).default({}),
  event_time: z.number().int().nonnegative().optional(),
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
    const deployed = models.get(decodeURIComponent(parts[1] ?? ''));
    if (!deployed) return { status: 404, body: { error: `no model named "${parts[1] ?? ''}"; models: ${[...models.keys()].join(', ')}` } };
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
    const store = online();
    const started = Date.now();
    const prediction = await predict(
      {
        model: deployed.model,
        watcher: deployed.watcher,
        metrics,
        features: {
          async valuesAt(view, entity) {
            if (!store) return null;
            const found = await store.get(view, entity);
            return found.status === 'PRESENT' ? found.values : null;
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
    return { status: 200, body: prediction };
  };
}
