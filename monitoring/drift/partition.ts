import { decodeFrame, encodeFrame } from '../partials.js';
import { seedOf, type ProcessorStore } from '../state.js';
import { DriftSummary, type PredictionInput, type SummaryLayout } from './summary.js';

/**
 * The drift stage's work in one partition of predictions.<model>, as plain code over a store.
 *
 * Tumbling windows: each prediction goes into the summary of its version's window (by event time).
 * Last-N view: it also goes into its version's open block of its tick (event-time slices of
 * `tickMs`); a block is sealed after `blockSize` predictions, and the rest of a tick's blocks when
 * the tick closes, so a block never spans two ticks.
 *
 * The partition's own watermark (its largest event time minus the grace), rounded down to a tick
 * (to a window when there is no view), closes windows and ticks: window summaries go out as
 * partials, with a progress mark ("every window and tick ending at or before `through` is out").
 * A prediction whose window has already closed is counted late (reported with the next mark), never
 * summarized; one whose tick has closed but not its window goes into the window only. Either is
 * counted late for the view.
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
  /** The last-N view's blocks: at most `size` predictions, within one tick of `tickMs`; undefined: no view. */
  readonly blocks: { readonly size: number; readonly tickMs: number } | undefined;
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
      readonly version: number;
      /** The tick's start (event time). */
      readonly tick: number;
      /** The block's number within its tick, version and partition (0, 1, ...). */
      readonly sequence: number;
      readonly partition: number;
      readonly partitions: number;
      readonly summary: DriftSummary;
    }
  | {
      readonly kind: 'progress';
      readonly model: string;
      readonly partition: number;
      readonly partitions: number;
      /** Every window and tick of this partition ending at or before this is out. */
      readonly through: number;
      /** Predictions that came after their window had closed, per version, since the previous mark. */
      readonly late: Readonly<Record<string, number>>;
      /** Predictions that came after their tick (not their window) had closed, per version: not in the view. */
      readonly lateView?: Readonly<Record<string, number>>;
    };

/** A partition's progress, kept in its store under one key. */
export interface PartitionProgress {
  maxTime: number | null;
  through: number | null;
  /** Windows with summaries in the store: start → versions. */
  open: { start: number; versions: number[] }[];
  late: Record<string, number>;
  /** Ticks with open blocks in the store: start → versions and each version's next block number. */
  ticks?: { start: number; versions: number[]; sequences: number[] }[];
  lateView?: Record<string, number>;
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
    const { windowMs, graceMs, model, partition, blocks } = this.options;
    const layout = await this.options.layout(prediction.version);
    const state = (await this.progress.get(PROGRESS)) ?? { maxTime: null, through: null, open: [], late: {} };
    this.dropRoundState(state);
    const ticks = (state.ticks ??= []);
    const outputs: DriftPartial[] = [];
    const time = prediction.eventTime;
    const version = prediction.version;
    if (state.maxTime === null || time > state.maxTime) state.maxTime = time;

    // ---- the tumbling window of its event time ----------------------------------------------
    const start = Math.floor(time / windowMs) * windowMs;
    if (state.through !== null && start + windowMs <= state.through) {
      state.late[String(version)] = (state.late[String(version)] ?? 0) + 1;
      if (blocks) {
        state.lateView ??= {};
        state.lateView[String(version)] = (state.lateView[String(version)] ?? 0) + 1;
      }
    } else {
      const key = windowKey(start, version);
      const summary = (await this.summaries.get(key)) ?? DriftSummary.empty(layout, seedOf(`${model}|${version}|${start}|${partition}`));
      summary.add(prediction, layout);
      this.summaries.put(key, summary);
      let open = state.open.find((entry) => entry.start === start);
      if (!open) {
        open = { start, versions: [] };
        state.open.push(open);
        state.open.sort((left, right) => left.start - right.start);
      }
      if (!open.versions.includes(version)) open.versions.push(version);

      // ---- the open block of its tick (the last-N view) --------------------------------------
      if (blocks) {
        const tick = Math.floor(time / blocks.tickMs) * blocks.tickMs;
        if (state.through !== null && tick + blocks.tickMs <= state.through) {
          state.lateView ??= {};
          state.lateView[String(version)] = (state.lateView[String(version)] ?? 0) + 1;
        } else {
          let entry = ticks.find((candidate) => candidate.start === tick);
          if (!entry) {
            entry = { start: tick, versions: [], sequences: [] };
            ticks.push(entry);
            ticks.sort((left, right) => left.start - right.start);
          }
          let position = entry.versions.indexOf(version);
          if (position < 0) {
            position = entry.versions.push(version) - 1;
            entry.sequences.push(0);
          }
          const sequence = entry.sequences[position] ?? 0;
          const key = blockKey(tick, version);
          const block =
            (await this.summaries.get(key)) ??
            DriftSummary.empty(layout, seedOf(`${model}|${version}|tick ${tick}|${sequence}|${partition}`));
          block.add(prediction, layout);
          if (block.predictions >= blocks.size) {
            this.summaries.delete(key);
            entry.sequences[position] = sequence + 1;
            outputs.push(this.block(version, tick, sequence, block));
          } else this.summaries.put(key, block);
        }
      }
    }

    // ---- windows and ticks the partition's watermark has passed --------------------------------
    const step = blocks?.tickMs ?? windowMs;
    const boundary = Math.floor((state.maxTime - graceMs) / step) * step;
    if (state.through === null || boundary > state.through) {
      while (ticks.length > 0 && (ticks[0]?.start ?? Infinity) + (blocks?.tickMs ?? 0) <= boundary) {
        const entry = ticks.shift();
        if (!entry) break;
        for (const [position, version] of entry.versions.entries()) {
          const key = blockKey(entry.start, version);
          const block = await this.summaries.get(key);
          this.summaries.delete(key);
          if (block && !block.isEmpty) outputs.push(this.block(version, entry.start, entry.sequences[position] ?? 0, block));
        }
      }
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
      outputs.push({
        kind: 'progress',
        model,
        partition,
        partitions: this.options.partitions,
        through: boundary,
        late: state.late,
        ...(state.lateView ? { lateView: state.lateView } : {}),
      });
      state.late = {};
      delete state.lateView;
    }
    this.progress.put(PROGRESS, state);
    return outputs;
  }

  /** The open blocks of versions before ticks (count-aligned rounds): deleted once, when first seen. */
  private dropRoundState(state: PartitionProgress): void {
    const legacy = state as PartitionProgress & { round?: number; blockCount?: number; blockVersions?: number[] };
    if (legacy.blockVersions === undefined && legacy.round === undefined) return;
    for (const version of legacy.blockVersions ?? []) this.summaries.delete(`b:${version}`);
    delete legacy.round;
    delete legacy.blockCount;
    delete legacy.blockVersions;
  }

  private block(version: number, tick: number, sequence: number, summary: DriftSummary): DriftPartial {
    const { model, partition, partitions } = this.options;
    return { kind: 'block', model, version, tick, sequence, partition, partitions, summary };
  }
}

const windowKey = (start: number, version: number): string => `w:${start}:${version}`;
const blockKey = (tick: number, version: number): string => `t:${tick}:${version}`;

export function encodeDriftPartial(partial: DriftPartial): Buffer {
  switch (partial.kind) {
    case 'window': {
      const { summary, ...header } = partial;
      return encodeFrame(header, [summary.toBuffer()]);
    }
    case 'block': {
      const { summary, ...header } = partial;
      return encodeFrame(header, [summary.toBuffer()]);
    }
    case 'progress':
      return encodeFrame(partial);
  }
}

export function decodeDriftPartial(buffer: Buffer): DriftPartial {
  const { header, bodies } = decodeFrame(buffer);
  const value = header as { kind?: unknown };
  switch (value.kind) {
    case 'window': {
      const [body] = bodies;
      if (!body) throw new RangeError('a window partial without its summary');
      return { ...(header as Omit<Extract<DriftPartial, { kind: 'window' }>, 'summary'>), summary: DriftSummary.fromBuffer(body) };
    }
    case 'block': {
      const [body] = bodies;
      if (!body || typeof (header as { tick?: unknown }).tick !== 'number')
        throw new RangeError('a block partial without its summary or tick (written by a version before ticks)');
      return { ...(header as Omit<Extract<DriftPartial, { kind: 'block' }>, 'summary'>), summary: DriftSummary.fromBuffer(body) };
    }
    case 'progress':
      return header as Extract<DriftPartial, { kind: 'progress' }>;
    default:
      throw new RangeError(`unknown drift partial kind ${String(value.kind)}`);
  }
}
