import { createHash } from 'node:crypto';
import { SluiceError } from '../common/errors.js';
import type { PartitionRange } from '../kafka/topic-range.js';
import type { DatasetManifest } from '../models/experiments.js';
import { modelInputs, type ModelDefinition } from '../topology/models.js';
import type { TrainingSet } from './dataset.js';
import type { EventRange, PinnedRanges } from './range.js';

/**
 * The dataset manifest of a training run — every topic, partition and offset range read, the
 * writer schema ids met, the feature views with their versions and definition hashes, the label
 * source and window, which events were selected, and the time split — and the way back from it: the
 * pinned offsets and range that rebuild the same training set, proven by the same hash.
 */

/** Rows in event-time order: [0, trainEnd) train, [trainEnd, validationEnd) validation, [validationEnd, rows) held out. */
export interface Split {
  readonly rows: number;
  readonly trainEnd: number;
  readonly validationEnd: number;
  readonly testFraction: number;
  readonly validationFraction: number;
}

/** The latest `testFraction` of the rows held out; of the rest, the latest `validationFraction` for validation. */
export function timeSplit(rows: number, testFraction: number, validationFraction = 0): Split {
  const validationEnd = Math.floor(rows * (1 - testFraction));
  const trainEnd = Math.floor(validationEnd * (1 - validationFraction));
  return { rows, trainEnd, validationEnd, testFraction, validationFraction };
}

/**
 * SHA-256 of a training set as built: the input names, then every row in order — event id, event
 * time, label and each value as a float64 (missing: NaN) — so the same rows in the same order with
 * the same values, and nothing else, give the same hash.
 */
export function datasetHash(set: Pick<TrainingSet, 'inputs' | 'rows' | 'labels' | 'times' | 'eventIds'>): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(set.inputs));
  const width = set.inputs.length;
  const numbers = Buffer.alloc(8 * (2 + width));
  set.rows.forEach((row, index) => {
    hash.update(`\n${set.eventIds[index] ?? ''}\u0000`);
    numbers.writeDoubleLE(set.times[index] ?? Number.NaN, 0);
    numbers.writeDoubleLE(set.labels[index] ?? Number.NaN, 8);
    for (let column = 0; column < width; column++) numbers.writeDoubleLE(row[column] ?? Number.NaN, 16 + 8 * column);
    hash.update(numbers);
  });
  return hash.digest('hex');
}

export function manifestOf(
  model: ModelDefinition,
  set: TrainingSet & { readonly numericInputs?: readonly string[] },
  split: Split,
  sha256: string,
): DatasetManifest {
  const offsetRange = (topic: string, range: PartitionRange) => ({
    topic,
    partition: range.partition,
    start_offset: Number(range.from),
    end_offset: Number(range.to),
  });
  const eventsTopic =
    set.ranges.find((range) => range.topic.endsWith(`events.${model.source.name}`))?.topic ?? `events.${model.source.name}`;
  return {
    ranges: set.ranges.map((range) => ({
      topic: range.topic,
      partition: range.partition,
      start_offset: Number(range.start),
      end_offset: Number(range.end),
    })),
    feature_versions: set.featureVersions,
    dataset_sha256: sha256,
    // The definition's inputs (before categorical ones are one-hot encoded into the set's columns).
    inputs: [...(set.numericInputs ?? set.inputs)],
    schema_ids: Object.entries(set.schemaIds).map(([topic, ids]) => ({ topic, ids })),
    feature_views: model.features.map(({ view }) => ({
      name: view.name,
      version: set.featureVersions[view.name] ?? 1,
      definition_hash: view.hash,
    })),
    label_source: model.label.source.name,
    label_window_ms: model.label.windowMs,
    selection: {
      event_time_from: set.selection.eventTimeFrom,
      event_time_to: set.selection.eventTimeTo,
      offsets: set.selection.offsets.map((range) => offsetRange(eventsTopic, range)),
    },
    split: {
      rows: split.rows,
      train_rows: split.trainEnd,
      validation_rows: split.validationEnd - split.trainEnd,
      test_rows: split.rows - split.validationEnd,
      test_fraction: split.testFraction,
      validation_fraction: split.validationFraction,
      validation_from: split.validationEnd > split.trainEnd ? (set.times[split.trainEnd] ?? null) : null,
      test_from: split.rows > split.validationEnd ? (set.times[split.validationEnd] ?? null) : null,
    },
  };
}

/** The model's definition no longer builds the manifest's dataset (a view or the inputs changed). */
export class ManifestMismatchError extends SluiceError {}

export interface Rebuild {
  readonly pinned: PinnedRanges;
  readonly range: EventRange;
  readonly versions: ReadonlyMap<string, number>;
  readonly testFraction: number;
  readonly validationFraction: number;
  /** The model with the manifest's label window (the dataset's, whatever the definition says now). */
  readonly model: ModelDefinition;
}

/**
 * What rebuilds a manifest's training set: its offsets pinned, its selection, its feature versions,
 * label window and split. Refuses when the model's inputs or a view's definition changed since:
 * the same offsets would then give other rows.
 */
export function rebuildFrom(manifest: DatasetManifest, model: ModelDefinition): Rebuild {
  const inputs = modelInputs(model);
  if (manifest.inputs.length > 0 && JSON.stringify(manifest.inputs) !== JSON.stringify(inputs))
    throw new ManifestMismatchError(
      'SLUICE_MANIFEST_INPUTS',
      `model ${model.name} now has the inputs ${inputs.join(', ')}; the run had ${manifest.inputs.join(', ')}`,
    );
  for (const { view } of model.features) {
    const used = manifest.feature_views.find((entry) => entry.name === view.name);
    if (!used) throw new ManifestMismatchError('SLUICE_MANIFEST_VIEWS', `the run used no view ${view.name}: the model changed since`);
    if (used.definition_hash !== view.hash)
      throw new ManifestMismatchError(
        'SLUICE_MANIFEST_VIEW_CHANGED',
        `view ${view.name} changed since the run (definition ${view.hash.slice(0, 12)}…, the run's v${used.version} was ${used.definition_hash.slice(0, 12)}…): replaying the same offsets would compute other features`,
      );
  }
  const pinned: Record<string, PartitionRange[]> = {};
  for (const range of manifest.ranges)
    (pinned[range.topic] ??= []).push({ partition: range.partition, from: BigInt(range.start_offset), to: BigInt(range.end_offset) });
  for (const ranges of Object.values(pinned)) ranges.sort((left, right) => left.partition - right.partition);
  const selection = manifest.selection;
  const offsets = selection?.offsets ?? [];
  const range: EventRange = {
    ...(selection && (selection.event_time_from !== null || selection.event_time_to !== null)
      ? {
          eventTime: {
            ...(selection.event_time_from !== null ? { from: selection.event_time_from } : {}),
            ...(selection.event_time_to !== null ? { to: selection.event_time_to } : {}),
          },
        }
      : {}),
    ...(offsets.length > 0
      ? {
          record: {
            fromOffsets: Object.fromEntries(offsets.map((entry) => [entry.partition, String(entry.start_offset)])),
            toOffsets: Object.fromEntries(offsets.map((entry) => [entry.partition, String(entry.end_offset)])),
          },
        }
      : {}),
  };
  const windowMs = manifest.label_window_ms ?? model.label.windowMs;
  return {
    pinned,
    range,
    versions: new Map(Object.entries(manifest.feature_versions)),
    testFraction: manifest.split?.test_fraction ?? model.testFraction,
    validationFraction: manifest.split?.validation_fraction ?? 0,
    model: windowMs === model.label.windowMs ? model : { ...model, label: { ...model.label, windowMs } },
  };
}
