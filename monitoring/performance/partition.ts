import { decodeFrame, encodeFrame } from '../partials.js';
import type { ProcessorStore } from '../state.js';
import { addDecided, emptyAccumulator, type AccumulatorShape, type PerformanceAccumulator } from './accumulator.js';
import type { Outcome } from './outcomes.js';

/**
 * The performance stage's join in one partition of the outcomes topic, as plain code over a store:
 * predictions ⋈ labels in event time. A prediction at time t is decided once the label stream has
 * passed t + labelWindow (+ grace): positive if its label came within the window, else negative.
 * Windows are by prediction time; a window is PROVISIONAL once the prediction stream has passed its
 * end (its predictions are all in: metrics over those decided so far) and FINAL once the label
 * stream has passed its end + the label window (every prediction decided). The joined state — the
 * window's predictions until FINAL, labels that came before their prediction — is bounded by the
 * window and the label window; labels too late for their prediction are counted, not lost.
 *
 * Progress is tracked per input partition (each router's records and marks), and a record is late
 * by its own partition's progress only, so which predictions count and how each is decided does not
 * depend on how the routers' records interleave here: a replay decides the same. The metrics of a
 * FINAL window are computed from its predictions in key order, so they are equal to the last bit.
 */
export interface PerformancePartitionOptions {
  readonly partition: number;
  /** Partitions of the outcomes topic (the merger waits for every one). */
  readonly partitions: number;
  readonly windowMs: number;
  readonly graceMs: number;
  readonly shape: AccumulatorShape;
  /** Per model: its label window and how many partitions its predictions and labels topics have. */
  readonly models: ReadonlyMap<
    string,
    { readonly labelWindowMs: number; readonly predictionPartitions: number; readonly labelPartitions: number }
  >;
}

export type PerformancePartial =
  | {
      readonly kind: 'window';
      readonly stage: 'PROVISIONAL' | 'FINAL';
      readonly model: string;
      readonly version: number;
      readonly start: number;
      readonly end: number;
      readonly partition: number;
      readonly accumulator: PerformanceAccumulator;
      readonly latePredictions: number;
      readonly lateLabels: number;
    }
  | {
      readonly kind: 'progress';
      readonly model: string;
      readonly partition: number;
      readonly partitions: number;
      readonly provisionalThrough: number;
      readonly finalThrough: number;
    };

interface ModelProgress {
  /** Per source partition, the largest event time seen here (records and marks). */
  predictions: Record<string, number>;
  labels: Record<string, number>;
  /** Windows with predictions in the store; `provisional` once their provisional partial is out. */
  open: { start: number; versions: number[]; provisional: boolean }[];
  provisionalThrough: number | null;
  finalThrough: number | null;
  latePredictions: number;
  lateLabels: number;
  /** Windows (by label time) with early labels in the store. */
  earlyLabelWindows: number[];
}

/** A prediction waiting for its label window to close. */
interface Pending {
  readonly v: number;
  readonly t: number;
  readonly s: number;
  readonly d: boolean;
  /** Its label's time, once joined. */
  l: number | null;
}

/** A label that came before its prediction, and how far its partition was then. */
interface EarlyLabel {
  readonly t: number;
  readonly wm: number;
}

type Stored = ModelProgress | Pending | EarlyLabel | string[];

export class PerformancePartition {
  constructor(
    private readonly options: PerformancePartitionOptions,
    private readonly store: ProcessorStore<Stored>,
  ) {}

  async add(outcome: Outcome): Promise<PerformancePartial[]> {
    const settings = this.options.models.get(outcome.model);
    if (!settings) return [];
    const { windowMs, graceMs } = this.options;
    const progressKey = `s:${outcome.model}`;
    const progress = ((await this.store.get(progressKey)) as ModelProgress | undefined) ?? {
      predictions: {},
      labels: {},
      open: [],
      provisionalThrough: null,
      finalThrough: null,
      latePredictions: 0,
      lateLabels: 0,
      earlyLabelWindows: [],
    };
    const source = String(outcome.source);
    switch (outcome.type) {
      case 'mark': {
        const marks = outcome.stream === 'prediction' ? progress.predictions : progress.labels;
        marks[source] = Math.max(marks[source] ?? Number.NEGATIVE_INFINITY, outcome.time);
        break;
      }
      case 'prediction': {
        const before = progress.predictions[source] ?? Number.NEGATIVE_INFINITY;
        progress.predictions[source] = Math.max(before, outcome.time);
        const start = Math.floor(outcome.time / windowMs) * windowMs;
        if (before - graceMs >= start + windowMs) {
          progress.latePredictions++;
          break;
        }
        const pending: Pending = { v: outcome.version, t: outcome.time, s: outcome.score, d: outcome.decision, l: null };
        const earlyKey = `l:${outcome.model}:${outcome.id}`;
        const early = (await this.store.get(earlyKey)) as EarlyLabel | undefined;
        if (early) {
          this.store.delete(earlyKey);
          if (joins(early.t, early.wm, outcome.time, settings.labelWindowMs, graceMs)) pending.l = early.t;
          else progress.lateLabels++;
        }
        this.store.put(pendingKey(outcome.model, start, outcome.id), pending);
        let open = progress.open.find((entry) => entry.start === start);
        if (!open) {
          open = { start, versions: [], provisional: false };
          progress.open.push(open);
          progress.open.sort((left, right) => left.start - right.start);
        }
        if (!open.versions.includes(outcome.version)) open.versions.push(outcome.version);
        break;
      }
      case 'label': {
        const before = progress.labels[source] ?? Number.NEGATIVE_INFINITY;
        progress.labels[source] = Math.max(before, outcome.time);
        // Its prediction is at most a label window earlier (or in the label's own window).
        let found: { key: string; pending: Pending } | undefined;
        for (
          let start = Math.floor((outcome.time - settings.labelWindowMs) / windowMs) * windowMs;
          start <= outcome.time;
          start += windowMs
        ) {
          const key = pendingKey(outcome.model, start, outcome.id);
          const pending = (await this.store.get(key)) as Pending | undefined;
          if (pending) {
            found = { key, pending };
            break;
          }
        }
        if (found) {
          if (found.pending.l !== null) break; // a second label of the same event: the first one counts
          if (joins(outcome.time, before, found.pending.t, settings.labelWindowMs, graceMs)) {
            found.pending.l = outcome.time;
            this.store.put(found.key, found.pending);
          } else {
            progress.lateLabels++;
          }
        } else {
          this.store.put(`l:${outcome.model}:${outcome.id}`, { t: outcome.time, wm: before });
          const bucket = Math.floor(outcome.time / windowMs) * windowMs;
          const indexKey = `lx:${outcome.model}:${bucket}`;
          const index = ((await this.store.get(indexKey)) as string[] | undefined) ?? [];
          index.push(outcome.id);
          this.store.put(indexKey, index);
          if (!progress.earlyLabelWindows.includes(bucket)) progress.earlyLabelWindows.push(bucket);
        }
        break;
      }
    }
    const partials = await this.advance(outcome.model, settings, progress);
    this.store.put(progressKey, progress);
    return partials;
  }

  /** Windows whose predictions are all in (PROVISIONAL) or all decided (FINAL); labels whose prediction can no longer come. */
  private async advance(
    model: string,
    settings: { readonly labelWindowMs: number; readonly predictionPartitions: number; readonly labelPartitions: number },
    progress: ModelProgress,
  ): Promise<PerformancePartial[]> {
    const { windowMs, graceMs, partition, partitions } = this.options;
    const predictionClock = clock(progress.predictions, settings.predictionPartitions) - graceMs;
    const labelClock = clock(progress.labels, settings.labelPartitions) - graceMs;
    if (!Number.isFinite(predictionClock)) return [];
    const outputs: PerformancePartial[] = [];
    const provisionalThrough = Math.floor(predictionClock / windowMs) * windowMs;
    const finalThrough = Number.isFinite(labelClock)
      ? Math.min(provisionalThrough, Math.floor((labelClock - settings.labelWindowMs) / windowMs) * windowMs)
      : Number.NEGATIVE_INFINITY;
    for (const window of [...progress.open]) {
      const end = window.start + windowMs;
      if (end > provisionalThrough) break;
      const final = end <= finalThrough;
      if (window.provisional && !final) continue;
      const entries = await this.store.range(`p:${model}:${pad(window.start)}:`);
      // Every window is PROVISIONAL first (also when it is final at once), so the merger hears both from every partition.
      const stages: ('PROVISIONAL' | 'FINAL')[] = [
        ...(window.provisional ? [] : ['PROVISIONAL' as const]),
        ...(final ? ['FINAL' as const] : []),
      ];
      for (const stage of stages) {
        const byVersion = new Map<number, PerformanceAccumulator>();
        for (const version of [...window.versions].sort((left, right) => left - right))
          byVersion.set(version, emptyAccumulator(this.options.shape));
        for (const [, value] of entries) {
          const pending = value as Pending;
          const accumulator = byVersion.get(pending.v);
          if (!accumulator) continue;
          accumulator.predictions++;
          if (pending.t + settings.labelWindowMs <= labelClock)
            addDecided(accumulator, this.options.shape, { score: pending.s, decision: pending.d, positive: pending.l !== null });
        }
        for (const [version, accumulator] of byVersion) {
          outputs.push({
            kind: 'window',
            stage,
            model,
            version,
            start: window.start,
            end,
            partition,
            accumulator,
            latePredictions: stage === 'FINAL' ? progress.latePredictions : 0,
            lateLabels: stage === 'FINAL' ? progress.lateLabels : 0,
          });
          if (stage === 'FINAL') {
            progress.latePredictions = 0;
            progress.lateLabels = 0;
          }
        }
      }
      window.provisional = true;
      if (final) {
        for (const [key] of entries) this.store.delete(key);
        progress.open = progress.open.filter((entry) => entry !== window);
      }
    }
    // Labels that came before a prediction that can no longer come (its window is closed everywhere).
    for (const bucket of [...progress.earlyLabelWindows].sort((left, right) => left - right)) {
      if (bucket + windowMs > provisionalThrough) break;
      const indexKey = `lx:${model}:${bucket}`;
      for (const id of ((await this.store.get(indexKey)) as string[] | undefined) ?? []) {
        const key = `l:${model}:${id}`;
        if ((await this.store.get(key)) !== undefined) {
          this.store.delete(key);
          progress.lateLabels++;
        }
      }
      this.store.delete(indexKey);
      progress.earlyLabelWindows = progress.earlyLabelWindows.filter((entry) => entry !== bucket);
    }
    const finalMark = Number.isFinite(finalThrough) ? finalThrough : null;
    if (provisionalThrough !== progress.provisionalThrough || finalMark !== progress.finalThrough) {
      progress.provisionalThrough = provisionalThrough;
      progress.finalThrough = finalMark;
      outputs.push({
        kind: 'progress',
        model,
        partition,
        partitions,
        provisionalThrough,
        finalThrough: finalMark ?? Number.MIN_SAFE_INTEGER,
      });
    }
    return outputs;
  }
}

/**
 * Whether a label at `labelTime` joins a prediction at `predictionTime`: at or after it and within
 * the label window, and not late by its own partition's progress (`partitionTimeBefore`: how far the
 * label's partition had come before it).
 */
function joins(labelTime: number, partitionTimeBefore: number, predictionTime: number, labelWindowMs: number, graceMs: number): boolean {
  const within = labelTime >= predictionTime && labelTime - predictionTime <= labelWindowMs;
  const onTime = partitionTimeBefore - graceMs < predictionTime + labelWindowMs;
  return within && onTime;
}

/** The slowest input partition's progress (−∞ until every partition has been heard from). */
function clock(times: Readonly<Record<string, number>>, partitions: number): number {
  let slowest = Number.POSITIVE_INFINITY;
  for (let partition = 0; partition < partitions; partition++) {
    const time = times[String(partition)];
    if (time === undefined) return Number.NEGATIVE_INFINITY;
    slowest = Math.min(slowest, time);
  }
  return slowest;
}

/** Window starts zero-padded, so keys sort by time. */
function pad(start: number): string {
  return String(start).padStart(16, '0');
}

const pendingKey = (model: string, start: number, id: string): string => `p:${model}:${pad(start)}:${id}`;

export function encodePerformancePartial(partial: PerformancePartial): Buffer {
  return encodeFrame(partial);
}

export function decodePerformancePartial(buffer: Buffer): PerformancePartial {
  const { header } = decodeFrame(buffer);
  const value = header as { kind?: unknown };
  if (value.kind !== 'window' && value.kind !== 'progress') throw new RangeError(`unknown performance partial ${String(value.kind)}`);
  return header as PerformancePartial;
}
