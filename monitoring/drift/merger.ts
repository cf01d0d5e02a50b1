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
 * progress mark has passed the window's end). Last-N view: a round is complete once every
 * partition has sealed its block of that number; each complete round (from the `blocks`-th on)
 * evaluates the latest `blocks` rounds. Summaries are merged in partition order, then round order,
 * into fresh summaries seeded by their key — so the result does not depend on the order in which
 * partials arrived, and a replay gives the same records bit for bit. A partition that never sees a
 * prediction holds windows back (as an idle input does in any event-time system).
 */
export interface DriftMergerOptions {
  readonly settings: DriftSettings;
  /** Blocks in the last-N view (undefined: no view). */
  readonly blocks: number | undefined;
  readonly reference: (model: string, version: number) => Promise<ModelReference | undefined>;
  readonly layout: (model: string, version: number) => Promise<SummaryLayout>;
}

/** What the merger keeps per model. */
export interface MergerState {
  partitions: number;
  /** Per partition: windows ending at or before this are all in (null: nothing heard yet). */
  through: (number | null)[];
  /** Windows with partials in the store. */
  pending: { start: number; end: number; version: number; from: number[] }[];
  /** Late predictions reported per version, by the mark that reported them. */
  late: { version: number; at: number; count: number }[];
  /** Rounds being collected: who has sent its block. */
  collecting: { round: number; from: number[]; versions: number[] }[];
  /** Complete rounds kept for the view, oldest first. */
  rounds: { round: number; versions: number[] }[];
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
    const state: MergerState = (await this.meta.get(key)) ?? {
      partitions: partitions ?? 0,
      through: [],
      pending: [],
      late: [],
      collecting: [],
      rounds: [],
    };
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
      case 'progress': {
        while (state.through.length < state.partitions) state.through.push(null);
        state.through[partial.partition] = Math.max(state.through[partial.partition] ?? Number.NEGATIVE_INFINITY, partial.through);
        for (const [version, count] of Object.entries(partial.late))
          if (count > 0) state.late.push({ version: Number(version), at: partial.through, count });
        records.push(...(await this.closeWindows(partial.model, state)));
        break;
      }
      case 'block': {
        for (const { version, summary } of partial.summaries)
          this.parts.put(blockPartKey(partial.model, partial.round, partial.partition, version), summary);
        let round = state.collecting.find((entry) => entry.round === partial.round);
        if (!round) {
          round = { round: partial.round, from: [], versions: [] };
          state.collecting.push(round);
          state.collecting.sort((left, right) => left.round - right.round);
        }
        if (!round.from.includes(partial.partition)) round.from.push(partial.partition);
        for (const { version } of partial.summaries) if (!round.versions.includes(version)) round.versions.push(version);
        records.push(...(await this.completeRounds(partial.model, state)));
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

  /** Rounds every partition has sealed, in order; each evaluates the last-N view once enough rounds are in. */
  private async completeRounds(model: string, state: MergerState): Promise<DriftRecord[]> {
    const records: DriftRecord[] = [];
    const blocks = this.options.blocks;
    while (state.collecting[0] && state.collecting[0].from.length >= state.partitions) {
      const round = state.collecting.shift();
      if (!round) break;
      const versions = [...round.versions].sort((left, right) => left - right);
      for (const version of versions) {
        const layout = await this.options.layout(model, version);
        const merged = DriftSummary.empty(layout, seedOf(`${model}|${version}|round ${round.round}`));
        for (const partition of [...round.from].sort((left, right) => left - right)) {
          const key = blockPartKey(model, round.round, partition, version);
          const part = await this.parts.get(key);
          this.parts.delete(key);
          if (part) merged.merge(part);
        }
        this.parts.put(roundKey(model, round.round, version), merged);
      }
      state.rounds.push({ round: round.round, versions });
      if (blocks === undefined || state.rounds.length < blocks) continue;
      // The view: the latest `blocks` rounds, per version.
      const view = state.rounds.slice(-blocks);
      const viewVersions = [...new Set(view.flatMap((entry) => entry.versions))].sort((left, right) => left - right);
      for (const version of viewVersions) {
        const layout = await this.options.layout(model, version);
        const merged = DriftSummary.empty(layout, seedOf(`${model}|${version}|view ${round.round}`));
        for (const entry of view) {
          if (!entry.versions.includes(version)) continue;
          const part = await this.parts.get(roundKey(model, entry.round, version));
          if (part) merged.merge(part);
        }
        records.push(
          ...(await this.evaluate(
            model,
            version,
            { kind: 'LAST_N', start: merged.minTime, end: merged.maxTime + 1, round: round.round },
            merged,
            0,
          )),
        );
      }
      // The oldest round leaves the view.
      while (state.rounds.length > blocks - 1) {
        const oldest = state.rounds.shift();
        if (oldest) for (const version of oldest.versions) this.parts.delete(roundKey(model, oldest.round, version));
      }
    }
    return records;
  }

  private async evaluate(model: string, version: number, window: WindowOf, summary: DriftSummary, late: number): Promise<DriftRecord[]> {
    const reference = await this.options.reference(model, version);
    const evaluation = evaluateDrift(reference, summary, this.options.settings);
    return driftRecords(model, version, window, evaluation, this.options.settings, late);
  }
}

const windowPartKey = (model: string, start: number, version: number, partition: number): string =>
  `w:${model}:${start}:${version}:${partition}`;
const blockPartKey = (model: string, round: number, partition: number, version: number): string =>
  `b:${model}:${round}:${partition}:${version}`;
const roundKey = (model: string, round: number, version: number): string => `r:${model}:${round}:${version}`;
