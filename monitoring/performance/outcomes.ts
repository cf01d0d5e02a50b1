import type { ProcessorStore } from '../state.js';

/**
 * Predictions and labels on their way to the join, keyed by the scored event's id (the join key),
 * so that a prediction and its label meet in one partition of the outcomes topic whatever their
 * topics are keyed by (a Kafka Streams repartition before a join). Each carries the partition it
 * came from; every router also broadcasts marks — how far its partition's event time has come — to
 * every outcomes partition, so the join knows each input partition's progress even when few of its
 * records are routed there (labels are rare).
 */
export type Outcome =
  | {
      readonly type: 'prediction';
      readonly model: string;
      readonly version: number;
      readonly id: string;
      readonly time: number;
      readonly score: number;
      readonly decision: boolean;
      readonly source: number;
    }
  | { readonly type: 'label'; readonly model: string; readonly id: string; readonly time: number; readonly source: number }
  | {
      readonly type: 'mark';
      readonly stream: 'prediction' | 'label';
      readonly model: string;
      readonly time: number;
      readonly source: number;
    };

export function encodeOutcome(outcome: Outcome): Buffer {
  return Buffer.from(JSON.stringify(outcome));
}

export function decodeOutcome(bytes: Buffer): Outcome {
  const value = JSON.parse(bytes.toString('utf8')) as Partial<Outcome>;
  if (value.type !== 'prediction' && value.type !== 'label' && value.type !== 'mark') throw new RangeError('not an outcome');
  if (typeof value.model !== 'string' || typeof value.time !== 'number' || typeof value.source !== 'number')
    throw new RangeError('an outcome without model, time or source');
  return value as Outcome;
}

/** A routed record: to the partition of its key, or (marks) to an explicit partition. */
export interface Routed {
  readonly key: string;
  readonly partition: number | undefined;
  readonly outcome: Outcome;
}

/**
 * The router of one input partition: its records, plus a mark to every outcomes partition each
 * time its event time enters a new `markEveryMs` slot. The largest time seen is kept in the store,
 * so the marks a partition sends depend on its records only (restarts and replays send the same).
 */
export class OutcomeRouter {
  constructor(
    private readonly options: {
      readonly stream: 'prediction' | 'label';
      readonly source: number;
      readonly outcomePartitions: number;
      readonly markEveryMs: number;
    },
    private readonly state: ProcessorStore<number>,
  ) {}

  async route(model: string, outcome: Outcome & { readonly id: string }): Promise<Routed[]> {
    const routed: Routed[] = [{ key: `${model}|${outcome.id}`, partition: undefined, outcome }];
    const key = `max:${model}`;
    const previous = await this.state.get(key);
    if (previous === undefined || outcome.time > previous) {
      this.state.put(key, outcome.time);
      const slot = (time: number): number => Math.floor(time / this.options.markEveryMs);
      if (previous === undefined || slot(outcome.time) > slot(previous)) {
        for (let partition = 0; partition < this.options.outcomePartitions; partition++) {
          routed.push({
            key: model,
            partition,
            outcome: { type: 'mark', stream: this.options.stream, model, time: outcome.time, source: this.options.source },
          });
        }
      }
    }
    return routed;
  }
}
