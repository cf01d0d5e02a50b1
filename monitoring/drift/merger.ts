import type { ModelReference } from '../reference.js';
import { seedOf, type ProcessorStore } from '../state.js';
import { evaluateDrift, type DriftSettings } from './evaluate.js';
import type { DriftPartial } from './partition.js';
import { driftRecords, type DriftRecord, type WindowOf } from './records.js';
import { DriftSummary, type SummaryLayout } from './summary.js';

/**
 * The drift stage's second step: partials of every partition of predictions.<model> → whole
 * windows → verdicts (monitoring.drift records).
 *
 * Tumbling windows: a window is evaluated once every partition has said it is done with it (its
 * progress mark has passed the window's end).
 *
 * Last-N view, per version: once every partition is done with a tick, that tick's blocks (from all
 * partitions, by their latest event time) join the version's buckets, the oldest buckets leave
 * while the rest still hold `events` predictions, and the view — all buckets — is evaluated when it
 * holds at least `events`, of which at least events / blocks are new since its last evaluation (it
 * slides by about a quarter of itself with the default 4 blocks, at most once per tick). So each
 * view holds the latest `events` predictions of the version by event time, at the granularity of a
 * bucket: between `events` and `events` plus its oldest bucket. Every partition's latest ticks are
 * in it, whatever the partitions' traffic. When quiet ticks make the buckets many, the adjacent pair
 * with the fewest predictions is merged (at most max(8, 2 · blocks · partitions) buckets; merged
 * buckets are larger, so the view's excess can be too). A version without predictions for
 * VIEW_IDLE_TICKS ticks leaves. Like windows, blocks of ticks wait for the slowest partition.
 *
 * Summaries are merged in a fixed order (partition order; blocks by latest event time, partition,
 * number) into fresh summaries seeded by their key — so the result does not depend on the order in
 * which partials arrived, and a replay gives the same records bit for bit. A partition that never
 * sees a prediction holds windows back (as an idle input does in any event-time system).
 */
export interface DriftMergerOptions {
  readonly settings: DriftSettings;
  /** The last-N view (undefined: none): `events` predictions, blocks per partition, tick length. */
  readonly lastN: { readonly events: number; readonly blocks: number; readonly tickMs: number } | undefined;
  readonly reference: (model: string, version: number) => Promise<ModelReference | undefined>;
  readonly layout: (model: string, version: number) => Promise<SummaryLayout>;
}

/** A block or bucket of the last-N view, as the merger's state lists it (its summary is in the parts store). */
interface Span {
  minTime: number;
  maxTime: number;
  predictions: number;
}

/** What the merger keeps per model. */
export interface MergerState {
  partitions: number;
  /** Per partition: windows and ticks ending at or before this are all in (null: nothing heard yet). */
  through: (number | null)[];
  /** Windows with partials in the store. */
  pending: { start: number; end: number; version: number; from: number[] }[];
  /** Late predictions reported per version, by the mark that reported them. */
  late: { version: number; at: number; count: number }[];
  /** Blocks of ticks not every partition is done with. */
  blocks?: (Span & { tick: number; version: number; partition: number; sequence: number })[];
  /** Per version: the view's buckets, oldest first, and the next bucket's id. */
  views?: { version: number; next: number; buckets: (Span & { id: number })[]; fresh?: number }[];
  /** Predictions late for the view, per version, by the mark that reported them. */
  lateView?: { version: number; at: number; count: number }[];
}

export class DriftMerger {
  constructor(
    private readonly options: DriftMergerOptions,
    private readonly parts: ProcessorStore<DriftSummary>,
    private readonly meta: ProcessorStore<MergerState>,
  ) {}

  async add(partial: DriftPartial): Promise<DriftRecord[]> {
    const key = `m:${partial.model}`;
    const partitions = partial.kind === 'window' ? undefined : partial.partitions;
    const state: MergerState = (await this.meta.get(key)) ?? { partitions: partitions ?? 0, through: [], pending: [], late: [] };
    this.dropRoundState(partial.model, state);
    if (partitions !== undefined && partitions !== state.partitions) {
      // More partitions than before (the topic grew): wait for the new ones too.
      state.partitions = Math.max(state.partitions, partitions);
    }
    const records: DriftRecord[] = [];
    switch (partial.kind) {
      case 'window': {
        this.parts.put(windowPartKey(partial.model, partial.start, partial.version, partial.partition), partial.summary);
        let pending = state.pending.find((entry) => entry.start === partial.start && entry.version === partial.version);
        if (!pending) {
          pending = { start: partial.start, end: partial.end, version: partial.version, from: [] };
          state.pending.push(pending);
        }
        if (!pending.from.includes(partial.partition)) pending.from.push(partial.partition);
        break;
      }
      case 'block': {
        const { model, tick, version, partition, sequence, summary } = partial;
        this.parts.put(blockPartKey(model, tick, version, partition, sequence), summary);
        const blocks = (state.blocks ??= []);
        if (
          !blocks.some(
            (entry) => entry.tick === tick && entry.version === version && entry.partition === partition && entry.sequence === sequence,
          )
        )
          blocks.push({
            tick,
            version,
            partition,
            sequence,
            minTime: summary.minTime,
            maxTime: summary.maxTime,
            predictions: summary.predictions,
          });
        break;
      }
      case 'progress': {
        while (state.through.length < state.partitions) state.through.push(null);
        state.through[partial.partition] = Math.max(state.through[partial.partition] ?? Number.NEGATIVE_INFINITY, partial.through);
        for (const [version, count] of Object.entries(partial.late))
          if (count > 0) state.late.push({ version: Number(version), at: partial.through, count });
        for (const [version, count] of Object.entries(partial.lateView ?? {}))
          if (count > 0) (state.lateView ??= []).push({ version: Number(version), at: partial.through, count });
        records.push(...(await this.closeWindows(partial.model, state)));
        records.push(...(await this.closeTicks(partial.model, state)));
        break;
      }
    }
    this.meta.put(key, state);
    return records;
  }

  /** Windows every partition is done with, oldest first (then by version). */
  private async closeWindows(model: string, state: MergerState): Promise<DriftRecord[]> {
    if (state.through.length < state.partitions || state.through.some((through) => through === null)) return [];
    const done = Math.min(...state.through.map((through) => through ?? Number.NEGATIVE_INFINITY));
    const ready = state.pending
      .filter((entry) => entry.end <= done)
      .sort((left, right) => left.start - right.start || left.version - right.version);
    if (ready.length === 0) return [];
    state.pending = state.pending.filter((entry) => entry.end > done);
    const records: DriftRecord[] = [];
    for (const window of ready) {
      const layout = await this.options.layout(model, window.version);
      const merged = DriftSummary.empty(layout, seedOf(`${model}|${window.version}|${window.start}|merged`));
      for (const partition of [...window.from].sort((left, right) => left - right)) {
        const key = windowPartKey(model, window.start, window.version, partition);
        const part = await this.parts.get(key);
        this.parts.delete(key);
        if (part) merged.merge(part);
      }
      // Late predictions reported by marks up to this window's end belong to this version's next evaluated window.
      const late = state.late.filter((entry) => entry.version === window.version && entry.at <= window.end);
      state.late = state.late.filter((entry) => !late.includes(entry));
      records.push(
        ...(await this.evaluate(
          model,
          window.version,
          { kind: 'TUMBLING', start: window.start, end: window.end, round: null },
          merged,
          late.reduce((sum, entry) => sum + entry.count, 0),
        )),
      );
    }
    return records;
  }

  /** Ticks every partition is done with, oldest first: their blocks join the views, each view changed is evaluated. */
  private async closeTicks(model: string, state: MergerState): Promise<DriftRecord[]> {
    const lastN = this.options.lastN;
    if (!lastN || state.through.length < state.partitions || state.through.some((through) => through === null)) return [];
    const done = Math.min(...state.through.map((through) => through ?? Number.NEGATIVE_INFINITY));
    const blocks = state.blocks ?? [];
    const ticks = [...new Set(blocks.filter((block) => block.tick + lastN.tickMs <= done).map((block) => block.tick))].sort(
      (left, right) => left - right,
    );
    const records: DriftRecord[] = [];
    for (const tick of ticks) {
      const closing = blocks.filter((block) => block.tick === tick);
      state.blocks = (state.blocks ?? []).filter((block) => block.tick !== tick);
      for (const version of [...new Set(closing.map((block) => block.version))].sort((left, right) => left - right)) {
        const ordered = closing
          .filter((block) => block.version === version)
          .sort((left, right) => left.maxTime - right.maxTime || left.partition - right.partition || left.sequence - right.sequence);
        records.push(...(await this.advanceView(model, version, tick, ordered, state)));
      }
      this.retireIdleViews(model, tick, state);
    }
    // Marks at or before `done` are read by the next view of their version, whatever comes: one entry per version is enough.
    if (state.lateView && state.lateView.length > 0) {
      const kept = state.lateView.filter((entry) => entry.at > done);
      const folded = new Map<number, { at: number; count: number }>();
      for (const entry of state.lateView.filter((candidate) => candidate.at <= done)) {
        const current = folded.get(entry.version);
        folded.set(entry.version, { at: Math.max(current?.at ?? entry.at, entry.at), count: (current?.count ?? 0) + entry.count });
      }
      state.lateView = [...[...folded].map(([version, entry]) => ({ version, ...entry })), ...kept];
    }
    return records;
  }

  /** A closed tick's blocks of one version join its view; the view is evaluated once it holds `events` predictions. */
  private async advanceView(
    model: string,
    version: number,
    tick: number,
    blocks: readonly (Span & { partition: number; sequence: number })[],
    state: MergerState,
  ): Promise<DriftRecord[]> {
    const lastN = this.options.lastN;
    if (!lastN) return [];
    const views = (state.views ??= []);
    let view = views.find((entry) => entry.version === version);
    if (!view) {
      view = { version, next: 0, buckets: [] };
      views.push(view);
    }
    for (const block of blocks) {
      const key = blockPartKey(model, tick, version, block.partition, block.sequence);
      const summary = await this.parts.get(key);
      this.parts.delete(key);
      if (!summary) continue;
      const id = view.next++;
      this.parts.put(bucketKey(model, version, id), summary);
      view.buckets.push({ id, minTime: block.minTime, maxTime: block.maxTime, predictions: block.predictions });
      view.fresh = (view.fresh ?? 0) + block.predictions;
    }
    // The oldest buckets leave while the rest still hold the view's predictions.
    let total = view.buckets.reduce((sum, bucket) => sum + bucket.predictions, 0);
    while (view.buckets.length > 1 && total - (view.buckets[0]?.predictions ?? 0) >= lastN.events) {
      const oldest = view.buckets.shift();
      if (!oldest) break;
      total -= oldest.predictions;
      this.parts.delete(bucketKey(model, version, oldest.id));
    }
    // Bounded state: merge the adjacent pair with the fewest predictions (the oldest such pair).
    const maxBuckets = Math.max(8, 2 * lastN.blocks * state.partitions);
    while (view.buckets.length > maxBuckets) {
      let at = 0;
      for (let index = 1; index + 1 < view.buckets.length; index++) {
        const size = (view.buckets[index]?.predictions ?? 0) + (view.buckets[index + 1]?.predictions ?? 0);
        if (size < (view.buckets[at]?.predictions ?? 0) + (view.buckets[at + 1]?.predictions ?? 0)) at = index;
      }
      const [first, second] = view.buckets.slice(at, at + 2);
      if (!first || !second) break;
      const target = await this.parts.get(bucketKey(model, version, first.id));
      const source = await this.parts.get(bucketKey(model, version, second.id));
      if (target && source) this.parts.put(bucketKey(model, version, first.id), target.merge(source));
      this.parts.delete(bucketKey(model, version, second.id));
      view.buckets.splice(at, 2, {
        id: first.id,
        minTime: Math.min(first.minTime, second.minTime),
        maxTime: Math.max(first.maxTime, second.maxTime),
        predictions: first.predictions + second.predictions,
      });
    }
    // Evaluated once it is full, and again each time a block's worth of the view (events / blocks) is new.
    if (total < lastN.events || (view.fresh ?? 0) < Math.ceil(lastN.events / lastN.blocks)) return [];
    view.fresh = 0;
    const layout = await this.options.layout(model, version);
    const merged = DriftSummary.empty(layout, seedOf(`${model}|${version}|view ${tick}`));
    for (const bucket of view.buckets) {
      const part = await this.parts.get(bucketKey(model, version, bucket.id));
      if (part) merged.merge(part);
    }
    const end = tick + lastN.tickMs;
    const late = (state.lateView ?? []).filter((entry) => entry.version === version && entry.at <= end);
    state.lateView = (state.lateView ?? []).filter((entry) => !late.includes(entry));
    return this.evaluate(
      model,
      version,
      { kind: 'LAST_N', start: merged.minTime, end: merged.maxTime + 1, round: Math.floor(tick / lastN.tickMs) },
      merged,
      late.reduce((sum, entry) => sum + entry.count, 0),
    );
  }

  /**
   * A version without predictions for VIEW_IDLE_TICKS ticks (replaced, rolled back) leaves: its
   * buckets are deleted, so retired versions hold no state. Should it get predictions again, its view
   * starts anew and is evaluated once it holds `events` again. Judged by the tick being closed, so
   * the same in a replay.
   */
  private retireIdleViews(model: string, tick: number, state: MergerState): void {
    const lastN = this.options.lastN;
    if (!lastN || !state.views) return;
    const horizon = tick - VIEW_IDLE_TICKS * lastN.tickMs;
    for (const view of state.views.filter((entry) => (entry.buckets.at(-1)?.maxTime ?? Number.NEGATIVE_INFINITY) < horizon)) {
      for (const bucket of view.buckets) this.parts.delete(bucketKey(model, view.version, bucket.id));
      view.buckets = [];
    }
    state.views = state.views.filter((view) => view.buckets.length > 0);
  }

  /** State of the round-aligned last-N view of versions before ticks: deleted once, when first seen. */
  private dropRoundState(model: string, state: MergerState): void {
    const legacy = state as MergerState & {
      collecting?: { round: number; from: number[]; versions: number[] }[];
      rounds?: { round: number; versions: number[] }[];
    };
    for (const round of legacy.collecting ?? [])
      for (const partition of round.from)
        for (const version of round.versions) this.parts.delete(`b:${model}:${round.round}:${partition}:${version}`);
    for (const round of legacy.rounds ?? [])
      for (const version of round.versions) this.parts.delete(`r:${model}:${round.round}:${version}`);
    delete legacy.collecting;
    delete legacy.rounds;
  }

  private async evaluate(model: string, version: number, window: WindowOf, summary: DriftSummary, late: number): Promise<DriftRecord[]> {
    const reference = await this.options.reference(model, version);
    const evaluation = evaluateDrift(reference, summary, this.options.settings);
    return driftRecords(model, version, window, evaluation, this.options.settings, late);
  }
}

const windowPartKey = (model: string, start: number, version: number, partition: number): string =>
  `w:${model}:${start}:${version}:${partition}`;
const blockPartKey = (model: string, tick: number, version: number, partition: number, sequence: number): string =>
  `k:${model}:${tick}:${version}:${partition}:${sequence}`;
const bucketKey = (model: string, version: number, id: number): string => `v:${model}:${version}:${id}`;

/** Ticks without predictions after which a version's view is deleted (a day at the default tick of a minute). */
export const VIEW_IDLE_TICKS = 1_440;
