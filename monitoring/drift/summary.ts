import { BinaryReader, BinaryWriter } from '../codec.js';
import type { ModelReference } from '../reference.js';
import { binIndex, KllSketch } from '../statistics/index.js';

/**
 * The mergeable summary of one model version's predictions over one window (or block): per input,
 * counts over the reference's fixed bins (numeric) or categories (categorical), a KLL sketch
 * (numeric), and the missing and invalid counts; the same for the score; how many predictions and
 * fallbacks. Its size depends on the inputs and the sketch's k, not on traffic: about
 * 8·(bins + 1) + 48 + 4·levels + 8·retained bytes per numeric input (retained ≤ about 3k + 8·levels),
 * 8·(categories + 4) per categorical input.
 *
 * NaN and ±Infinity are counted as invalid and never binned or sketched, so one bad value cannot
 * poison a window; null is counted as missing. Categories the reference did not keep go to "other".
 */

/** What the drift stage reads from a prediction. */
export interface PredictionInput {
  /** Numeric inputs by name (null: missing). */
  readonly features: Readonly<Record<string, number | null | undefined>>;
  /** Categorical inputs by name (null: missing). */
  readonly categories: Readonly<Record<string, string | null | undefined>>;
  readonly score: number;
  readonly fallback: boolean;
  readonly eventTime: number;
}

interface NumericLayout {
  readonly kind: 'numeric';
  readonly name: string;
  readonly edges: readonly number[];
}

interface CategoricalLayout {
  readonly kind: 'categorical';
  readonly name: string;
  readonly index: ReadonlyMap<string, number>;
  readonly size: number;
}

/** How a version's reference bins live values: built once per version from its reference. */
export interface SummaryLayout {
  readonly inputs: readonly (NumericLayout | CategoricalLayout)[];
  readonly score: NumericLayout | undefined;
  /** KLL k of the window sketches. */
  readonly sketchK: number;
}

/** The layout of a reference; without one (a version trained before references existed, or none at all) only predictions are counted. */
export function layoutOf(reference: ModelReference | undefined, sketchK: number): SummaryLayout {
  if (!reference) return { inputs: [], score: undefined, sketchK };
  return {
    inputs: reference.inputs.map((input) =>
      input.kind === 'numeric'
        ? { kind: 'numeric', name: input.name, edges: input.edges }
        : {
            kind: 'categorical',
            name: input.name,
            index: new Map(input.categories.map((category, position) => [category, position])),
            size: input.categories.length,
          },
    ),
    score: reference.score ? { kind: 'numeric', name: '__score__', edges: reference.score.edges } : undefined,
    sketchK,
  };
}

export interface NumericPart {
  readonly kind: 'numeric';
  missing: number;
  invalid: number;
  readonly counts: number[];
  readonly sketch: KllSketch;
}

export interface CategoricalPart {
  readonly kind: 'categorical';
  missing: number;
  invalid: number;
  readonly counts: number[];
  other: number;
}

const MAGIC = 0x31465244; // 'DRF1'

export class DriftSummary {
  predictions = 0;
  fallbacks = 0;
  /** Event-time span of the predictions summarized (±Infinity while empty). */
  minTime = Number.POSITIVE_INFINITY;
  maxTime = Number.NEGATIVE_INFINITY;

  private constructor(
    readonly parts: (NumericPart | CategoricalPart)[],
    readonly score: NumericPart | undefined,
  ) {}

  /** An empty summary for a layout; `seed` makes its sketches' compactions reproducible. */
  static empty(layout: SummaryLayout, seed: number): DriftSummary {
    const numeric = (index: number, edges: readonly number[]): NumericPart => ({
      kind: 'numeric',
      missing: 0,
      invalid: 0,
      counts: new Array<number>(edges.length + 1).fill(0),
      sketch: new KllSketch({ k: layout.sketchK, seed: (seed + index * 7_919) >>> 0 }),
    });
    return new DriftSummary(
      layout.inputs.map((input, index) =>
        input.kind === 'numeric'
          ? numeric(index, input.edges)
          : { kind: 'categorical', missing: 0, invalid: 0, counts: new Array<number>(input.size).fill(0), other: 0 },
      ),
      layout.score ? numeric(layout.inputs.length, layout.score.edges) : undefined,
    );
  }

  get isEmpty(): boolean {
    return this.predictions === 0;
  }

  /** Adds one prediction. O(inputs · (log bins + KLL's amortized O(1))). */
  add(prediction: PredictionInput, layout: SummaryLayout): void {
    this.predictions++;
    if (prediction.fallback) this.fallbacks++;
    if (prediction.eventTime < this.minTime) this.minTime = prediction.eventTime;
    if (prediction.eventTime > this.maxTime) this.maxTime = prediction.eventTime;
    const { inputs } = layout;
    for (let index = 0; index < inputs.length; index++) {
      const input = inputs[index];
      const part = this.parts[index];
      if (!input || !part) continue;
      if (input.kind === 'numeric') addNumeric(part as NumericPart, input.edges, prediction.features[input.name]);
      else addCategorical(part as CategoricalPart, input.index, prediction.categories[input.name]);
    }
    if (layout.score && this.score) addNumeric(this.score, layout.score.edges, prediction.score);
  }

  /** Folds another summary of the same layout into this one (which it returns); `other` is unchanged. */
  merge(other: DriftSummary): this {
    if (other.parts.length !== this.parts.length || (other.score === undefined) !== (this.score === undefined))
      throw new RangeError('cannot merge drift summaries of different layouts');
    this.predictions += other.predictions;
    this.fallbacks += other.fallbacks;
    this.minTime = Math.min(this.minTime, other.minTime);
    this.maxTime = Math.max(this.maxTime, other.maxTime);
    this.parts.forEach((part, index) => mergePart(part, other.parts[index]));
    if (this.score && other.score) mergePart(this.score, other.score);
    return this;
  }

  toBuffer(): Buffer {
    const writer = new BinaryWriter().u32(MAGIC).f64(this.predictions).f64(this.fallbacks).f64(this.minTime).f64(this.maxTime);
    writer.u32(this.parts.length).u8(this.score ? 1 : 0);
    for (const part of this.score ? [...this.parts, this.score] : this.parts) {
      writer
        .u8(part.kind === 'numeric' ? 0 : 1)
        .f64(part.missing)
        .f64(part.invalid)
        .numbers(part.counts);
      if (part.kind === 'numeric') writer.bytes(part.sketch.toBuffer());
      else writer.f64(part.other);
    }
    return writer.finish();
  }

  static fromBuffer(buffer: Buffer): DriftSummary {
    const reader = new BinaryReader(buffer);
    if (reader.u32() !== MAGIC) throw new RangeError('not a drift summary');
    const predictions = reader.f64();
    const fallbacks = reader.f64();
    const minTime = reader.f64();
    const maxTime = reader.f64();
    const count = reader.u32();
    const hasScore = reader.u8() === 1;
    const parts: (NumericPart | CategoricalPart)[] = [];
    for (let index = 0; index < count + (hasScore ? 1 : 0); index++) {
      const kind = reader.u8();
      const missing = reader.f64();
      const invalid = reader.f64();
      const counts = reader.numbers();
      parts.push(
        kind === 0
          ? { kind: 'numeric', missing, invalid, counts, sketch: KllSketch.fromBuffer(reader.bytes()) }
          : { kind: 'categorical', missing, invalid, counts, other: reader.f64() },
      );
    }
    if (!reader.done) throw new RangeError('trailing bytes after a drift summary');
    const score = hasScore ? (parts.pop() as NumericPart) : undefined;
    const summary = new DriftSummary(parts, score);
    summary.predictions = predictions;
    summary.fallbacks = fallbacks;
    summary.minTime = minTime;
    summary.maxTime = maxTime;
    return summary;
  }
}

function addNumeric(part: NumericPart, edges: readonly number[], value: number | null | undefined): void {
  if (value === null || value === undefined) part.missing++;
  else if (!Number.isFinite(value)) part.invalid++;
  else {
    const bin = binIndex(edges, value);
    part.counts[bin] = (part.counts[bin] ?? 0) + 1;
    part.sketch.add(value);
  }
}

function addCategorical(part: CategoricalPart, index: ReadonlyMap<string, number>, value: string | number | null | undefined): void {
  if (value === null || value === undefined) {
    part.missing++;
    return;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) {
    part.invalid++;
    return;
  }
  const position = index.get(String(value));
  if (position === undefined) part.other++;
  else part.counts[position] = (part.counts[position] ?? 0) + 1;
}

function mergePart(target: NumericPart | CategoricalPart, source: NumericPart | CategoricalPart | undefined): void {
  if (!source || source.kind !== target.kind || source.counts.length !== target.counts.length)
    throw new RangeError('cannot merge drift summaries of different layouts');
  target.missing += source.missing;
  target.invalid += source.invalid;
  for (let index = 0; index < target.counts.length; index++)
    target.counts[index] = (target.counts[index] ?? 0) + (source.counts[index] ?? 0);
  if (target.kind === 'numeric' && source.kind === 'numeric') target.sketch.merge(source.sketch);
  else if (target.kind === 'categorical' && source.kind === 'categorical') target.other += source.other;
}
