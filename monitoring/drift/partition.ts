import { decodeFrame, encodeFrame } from '../partials.js';
import { seedOf, type ProcessorStore } from '../state.js';
import { DriftSummary, type PredictionInput, type SummaryLayout } from './summary.js';

/**
 * The drift stage's work in one partition of predictions.<model>, as plain code over a store:
 * each prediction goes into the summary of its version's tumbling window (by event time) and into
 * the partition's current last-N block. The partition's own watermark (its largest event time
 * minus the grace) closes windows: their summaries go out as partials, with a progress mark
 * ("every window ending at or before `through` is out"), and leave the store. A prediction whose
 * window has already closed is counted late (reported with the next mark), never summarized.
 * A block is sealed after `blockSize` predictions (all versions together, each summarized apart).
 *
 * Lateness is judged against this partition's own watermark only, so what each partition sends
 * depends on its records alone: the merger combines them the same way live and in replay.
 */
export interface DriftPartitionOptions {
  readonly model: string;
  readonly partition: number;
  /** Partitions of predictions.<model>: the merger waits for all of them. */
  readonly partitions: number;
  readonly windowMs: number;
  readonly graceMs: number;
  /** Predictions per block of this partition; undefined: no last-N view. */
  readonly blockSize: number | undefined;
  /** The layout of a version's reference (cached by the caller). */
  readonly layout: (version: number) => Promise<SummaryLayout>;
}

export type DriftPartial =
  | {
      readonly kind: 'window';
      readonly model: string;
      readonly version: number;
      readonly start: number;
      readonly end: number;
      readonly partition: number;
      readonly summary: DriftSummary;
    }
  | {
      readonly kind: 'block';
      readonly model: string;
      readonly round: number;
      readonly partition: number;
      readonly partitions: number;
      readonly summaries: readonly { readonly version: number; readonly summary: DriftSummary }[];
    }
  | {
      readonly kind: 'progress';
      readonly model: string;
      readonly partition: number;
      readonly partitions: number;
      /** Every window of this partition ending at or before this is out. */
      readonly through: number;
      /** Predictions that came after their window had closed, per version, since the previous mark. */
      readonly late: Readonly<Record<string, number>>;
    };

/** A partition's progress, kept in its store under one key. */
export interface PartitionProgress {
  maxTime: number | null;
  through: number | null;
  /** Windows with summaries in the store: start → versions. */
  open: { start: number; versions: number[] }[];
  late: Record<string, number>;
  round: number;
  blockCount: number;
  blockVersions: number[];
}

const PROGRESS = 'progress';

export class DriftPartition {
  constructor(
    private readonly options: DriftPartitionOptions,
    private readonly summaries: ProcessorStore<DriftSummary>,
    private readonly progress: ProcessorStore<PartitionProgress>,
  ) {}

  /** One prediction of this partition (in offset order); returns the partials it completes. */
  async add(prediction: PredictionInput & { readonly version: number }): Promise<DriftPartial[]> {
    const { windowMs, graceMs, model, partition } = this.options;
    const layout = await this.options.layout(prediction.version);
    const state = (await this.progress.get(PROGRESS)) ?? {
      maxTime: null,
      through: null,
      open: [],
      late: {},
      round: 0,
      blockCount: 0,
      blockVersions: [],
    };
    const outputs: DriftPartial[] = [];
    const time = prediction.eventTime;
    if (state.maxTime === null || time > state.maxTime) state.maxTime = time;

    // ---- the tumbling window of its event time ----------------------------------------------
    const start = Math.floor(time / windowMs) * windowMs;
    if (state.through !== null && start + windowMs <= state.through) {
      state.late[String(prediction.version)] = (state.late[String(prediction.version)] ?? 0) + 1;
    } else {
      const key = windowKey(start, prediction.version);
      const summary =
        (await this.summaries.get(key)) ?? DriftSummary.empty(layout, seedOf(`${model}|${prediction.version}|${start}|${partition}`));
      summary.add(prediction, layout);
      this.summaries.put(key, summary);
      let open = state.open.find((entry) => entry.start === start);
      if (!open) {
        open = { start, versions: [] };
        state.open.push(open);
        state.open.sort((left, right) => left.start - right.start);
      }
      if (!open.versions.includes(prediction.version)) open.versions.push(prediction.version);
    }

    // ---- the last-N block ---------------------------------------------------------------------
    if (this.options.blockSize !== undefined) {
      const key = blockKey(prediction.version);
      const summary =
        (await this.summaries.get(key)) ??
        DriftSummary.empty(layout, seedOf(`${model}|${prediction.version}|block ${state.round}|${partition}`));
      summary.add(prediction, layout);
      this.summaries.put(key, summary);
      if (!state.blockVersions.includes(prediction.version)) state.blockVersions.push(prediction.version);
      state.blockCount++;
      if (state.blockCount >= this.options.blockSize) outputs.push(await this.sealBlock(state));
    }

    // ---- windows the partition's watermark has passed ------------------------------------------
    const boundary = Math.floor((state.maxTime - graceMs) / windowMs) * windowMs;
    if (state.through === null || boundary > state.through) {
      while (state.open.length > 0 && (state.open[0]?.start ?? Infinity) + windowMs <= boundary) {
        const window = state.open.shift();
        if (!window) break;
        for (const version of [...window.versions].sort((left, right) => left - right)) {
          const key = windowKey(window.start, version);
          const summary = await this.summaries.get(key);
          this.summaries.delete(key);
          if (summary)
            outputs.push({ kind: 'window', model, version, start: window.start, end: window.start + windowMs, partition, summary });
        }
      }
      state.through = boundary;
      outputs.push({ kind: 'progress', model, partition, partitions: this.options.partitions, through: boundary, late: state.late });
      state.late = {};
    }
    this.progress.put(PROGRESS, state);
    return outputs;
  }

  private async sealBlock(state: PartitionProgress): Promise<DriftPartial> {
    const summaries: { version: number; summary: DriftSummary }[] = [];
    for (const version of [...state.blockVersions].sort((left, right) => left - right)) {
      const summary = await this.summaries.get(blockKey(version));
      this.summaries.delete(blockKey(version));
      if (summary) summaries.push({ version, summary });
    }
    const partial: DriftPartial = {
      kind: 'block',
      model: this.options.model,
      round: state.round,
      partition: this.options.partition,
      partitions: this.options.partitions,
      summaries,
    };
    state.round++;
    state.blockCount = 0;
    state.blockVersions = [];
    return partial;
  }
}

const windowKey = (start: number, version: number): string => `w:${start}:${version}`;
const blockKey = (version: number): string => `b:${version}`;

export function encodeDriftPartial(partial: DriftPartial): Buffer {
  switch (partial.kind) {
    case 'window': {
      const { summary, ...header } = partial;
      return encodeFrame(header, [summary.toBuffer()]);
    }
    case 'block': {
      const { summaries, ...header } = partial;
      return encodeFrame(
        { ...header, versions: summaries.map((entry) => entry.version) },
        summaries.map((entry) => entry.summary.toBuffer()),
      );
    }
    case 'progress':
      return encodeFrame(partial);
  }
}

export function decodeDriftPartial(buffer: Buffer): DriftPartial {
  const { header, bodies } = decodeFrame(buffer);
  const value = header as { kind?: unknown; versions?: unknown };
  switch (value.kind) {
    case 'window': {
      const [body] = bodies;
      if (!body) throw new RangeError('a window partial without its summary');
      return { ...(header as Omit<Extract<DriftPartial, { kind: 'window' }>, 'summary'>), summary: DriftSummary.fromBuffer(body) };
    }
    case 'block': {
      const versions = value.versions as number[];
      if (!Array.isArray(versions) || versions.length !== bodies.length) throw new RangeError('a block partial with mismatched summaries');
      const rest = { ...(header as Omit<Extract<DriftPartial, { kind: 'block' }>, 'summaries'>) };
      Reflect.deleteProperty(rest, 'versions');
      return {
        ...rest,
        summaries: versions.map((version, index) => ({ version, summary: DriftSummary.fromBuffer(bodies[index] as Buffer) })),
      };
    }
    case 'progress':
      return header as Extract<DriftPartial, { kind: 'progress' }>;
    default:
      throw new RangeError(`unknown drift partial kind ${String(value.kind)}`);
  }
}
