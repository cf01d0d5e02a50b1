import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { uniformRandom } from '../common/random.js';
import {
  buildReference,
  decodeDriftPartial,
  DriftMerger,
  DriftPartition,
  encodeDriftPartial,
  layoutOf,
  MemoryStore,
  type DriftRecord,
  type DriftSummary,
  type ModelReference,
  type PartitionProgress,
  type PredictionInput,
  statistics,
} from '../monitoring/index.js';
import { monitoring } from '../topology/index.js';
import { printTable } from './report.js';

/**
 * The drift stage's work on this machine, without Kafka: 100,000 predictions with 20 numeric and 5
 * categorical inputs against a reference of 100,000 rows, through the stage's own code (partition
 * summaries, partials encoded and decoded as on the partials topic, the merger and the statistics).
 * Reports events/s, state bytes per feature per window, and — when Python has `evidently` — the time
 * Evidently's DataDriftPreset takes on the same rows and how far its PSI values are from ours.
 */
const run = promisify(execFile);
const ROWS = 100_000;
const NUMERIC = 20;
const CATEGORICAL = 5;
const HOUR = 3_600_000;

type Row = Record<string, string | number>;

interface Table {
  readonly numeric: Float64Array[];
  readonly categorical: string[][];
}

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(Math.max(Number.EPSILON, random()))) * Math.cos(2 * Math.PI * random());
}

/** 25 columns of mixed shapes; `drifted` shifts 5 numeric and 2 categorical columns. */
function table(seed: number, drifted: boolean): Table {
  const random = uniformRandom(seed);
  const numeric = Array.from({ length: NUMERIC }, (_, column) => {
    const values = new Float64Array(ROWS);
    const shift = drifted && column < 5 ? 0.5 : 0;
    for (let row = 0; row < ROWS; row++) {
      if (column % 4 === 0) values[row] = gaussian(random) + shift;
      else if (column % 4 === 1) values[row] = Math.exp(3 + 0.7 * gaussian(random) + shift);
      else if (column % 4 === 2) values[row] = random() * 100 + shift * 40;
      else values[row] = Math.floor(-Math.log(Math.max(Number.EPSILON, random())) * (4 + shift * 6));
    }
    return values;
  });
  const categorical = Array.from({ length: CATEGORICAL }, (_, column) => {
    const size = 5 + column * 3;
    return Array.from({ length: ROWS }, () => {
      const skew = drifted && column < 2 ? 0.6 : 1.4;
      return `c${Math.floor(size * random() ** skew)}`;
    });
  });
  return { numeric, categorical };
}

const numericName = (column: number): string => `n${column}`;
const categoricalName = (column: number): string => `c${column}`;

function referenceOf(data: Table): ModelReference {
  return buildReference({
    numeric: data.numeric.map((values, column) => ({ name: numericName(column), values })),
    categorical: data.categorical.map((values, column) => ({ name: categoricalName(column), values })),
  });
}

function prediction(data: Table, row: number, eventTime: number): PredictionInput & { version: number } {
  const features: Record<string, number> = {};
  for (let column = 0; column < NUMERIC; column++) features[numericName(column)] = data.numeric[column]![row]!;
  const categories: Record<string, string> = {};
  for (let column = 0; column < CATEGORICAL; column++) categories[categoricalName(column)] = data.categorical[column]![row]!;
  return { features, categories, score: 0.5, fallback: false, eventTime, version: 1 };
}

/**
 * The stage's path for every prediction: the partition processor, each partial through its wire
 * encoding, the merger. `windows` spreads the rows over that many hourly windows.
 */
async function driftStage(
  reference: ModelReference,
  current: Table,
  windows: number,
): Promise<{ records: DriftRecord[]; seconds: number; partialBytes: number; windowSummaries: DriftSummary[] }> {
  const settings = monitoring({ window: '1h', grace: '0s', lastN: false });
  const layout = layoutOf(reference, settings.sketchK);
  const start = Date.UTC(2024, 0, 1);
  const summaries = new MemoryStore<DriftSummary>();
  const processor = new DriftPartition(
    {
      model: 'bench',
      partition: 0,
      partitions: 1,
      windowMs: settings.windowMs,
      graceMs: settings.graceMs,
      blocks: undefined,
      layout: () => Promise.resolve(layout),
    },
    summaries,
    new MemoryStore<PartitionProgress>(),
  );
  const merger = new DriftMerger(
    { settings, lastN: undefined, reference: () => Promise.resolve(reference), layout: () => Promise.resolve(layout) },
    new MemoryStore<DriftSummary>(),
    new MemoryStore(),
  );
  const records: DriftRecord[] = [];
  const windowSummaries: DriftSummary[] = [];
  let partialBytes = 0;
  const perWindow = Math.ceil(ROWS / windows);
  // The stage's input, decoded predictions, is built before the clock starts: the timed part is the
  // stage's own work on them (decoding is the runtime's, and is not part of either side here).
  const inputs = Array.from({ length: ROWS }, (_, row) =>
    prediction(current, row, start + Math.floor(row / perWindow) * HOUR + ((row % perWindow) / perWindow) * HOUR),
  );
  const closing = prediction(current, 0, start + (windows + 1) * HOUR);
  const started = performance.now();
  const forward = async (partials: Awaited<ReturnType<DriftPartition['add']>>): Promise<void> => {
    for (const partial of partials) {
      const wire = encodeDriftPartial(partial);
      partialBytes += wire.length;
      const decoded = decodeDriftPartial(wire);
      if (decoded.kind === 'window') windowSummaries.push(decoded.summary);
      records.push(...(await merger.add(decoded)));
    }
  };
  for (const input of inputs) await forward(await processor.add(input));
  // One more prediction an hour later closes the last window (it is not counted in the rate).
  await forward(await processor.add(closing));
  const seconds = (performance.now() - started) / 1000;
  return { records, seconds, partialBytes, windowSummaries };
}

async function writeCsv(file: string, data: Table): Promise<void> {
  const header = [
    ...Array.from({ length: NUMERIC }, (_, column) => numericName(column)),
    ...Array.from({ length: CATEGORICAL }, (_, column) => categoricalName(column)),
  ];
  const lines = [header.join(',')];
  for (let row = 0; row < ROWS; row++)
    lines.push([...data.numeric.map((values) => String(values[row])), ...data.categorical.map((values) => values[row])].join(','));
  await fs.writeFile(file, `${lines.join('\n')}\n`);
}

interface EvidentlyResult {
  readonly version: string;
  readonly seconds: number;
  readonly psi: Record<string, number>;
}

/** The Python with `evidently` (EVIDENTLY_PYTHON, e.g. a virtual environment's; default python3). */
async function evidently(reference: Table, current: Table, python: string): Promise<EvidentlyResult | string> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'monitoring_evidently.py');
  try {
    await run(python, ['-c', 'import evidently']);
  } catch {
    return `not importable by ${python} (pip install evidently, or EVIDENTLY_PYTHON=<a python that has it>): comparison skipped`;
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-monitoring-'));
  try {
    await writeCsv(path.join(dir, 'reference.csv'), reference);
    await writeCsv(path.join(dir, 'current.csv'), current);
    const categorical = Array.from({ length: CATEGORICAL }, (_, column) => categoricalName(column)).join(',');
    const { stdout } = await run(python, [script, path.join(dir, 'reference.csv'), path.join(dir, 'current.csv'), categorical], {
      maxBuffer: 16 * 1024 * 1024,
    });
    return JSON.parse(stdout) as EvidentlyResult;
  } catch (error) {
    return `failed: ${error instanceof Error ? error.message.split('\n').slice(0, 3).join(' ') : String(error)}`;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/**
 * PSI of one numeric column binned as Evidently's DataDriftPreset bins it (get_binned_data,
 * Evidently 0.4 to 0.7), through our psi() with Evidently's zero fill: a column whose reference has
 * more than 20 distinct values gets numpy's "sturges" edges over the pooled reference and current
 * values (equal width, numpy.histogram's half-open bins, the last closed, numpy's own index
 * arithmetic); one with 20 or fewer is counted per distinct value, as categories. It shows that the
 * formula and the zero handling agree with Evidently's when the bins are the same.
 */
function psiOnEvidentlyBins(reference: Float64Array, current: Float64Array): number {
  const distinct = new Set(reference);
  if (distinct.size <= 20) {
    const keys = [...new Set([...distinct, ...current])];
    const count = (values: Float64Array): number[] => {
      const counts = new Map<number, number>();
      for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
      return keys.map((key) => counts.get(key) ?? 0);
    };
    const result = statistics.psi(count(reference), count(current), { zeroFill: 'evidently' });
    return result.status === 'ok' ? result.value : Number.NaN;
  }
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const values of [reference, current])
    for (const value of values) {
      if (value < first) first = value;
      if (value > last) last = value;
    }
  // numpy: bins = ceil(log2(n) + 1); edges = linspace(first, last, bins + 1).
  const bins = Math.ceil(Math.log2(reference.length + current.length) + 1);
  const step = (last - first) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, index) => (index === bins ? last : index * step + first));
  const count = (values: Float64Array): number[] => {
    const counts = new Array<number>(bins).fill(0);
    for (const value of values) {
      let index = Math.floor(((value - first) / (last - first)) * bins);
      if (index === bins) index--;
      if (value < (edges[index] ?? 0)) index--;
      else if (value >= (edges[index + 1] ?? 0) && index !== bins - 1) index++;
      counts[index] = (counts[index] ?? 0) + 1;
    }
    return counts;
  };
  const result = statistics.psi(count(reference), count(current), { zeroFill: 'evidently' });
  return result.status === 'ok' ? result.value : Number.NaN;
}

export async function main(): Promise<void> {
  const referenceRows = table(1, false);
  const current = table(2, true);
  let started = performance.now();
  const reference = referenceOf(referenceRows);
  const referenceSeconds = (performance.now() - started) / 1000;

  const rows: Row[] = [];
  const hourly = await driftStage(reference, current, 10);
  rows.push({
    run: `stage path, ${ROWS.toLocaleString('en')} predictions in 10 hourly windows`,
    seconds: hourly.seconds.toFixed(2),
    'events/s': Math.round(ROWS / hourly.seconds),
    records: hourly.records.length,
  });
  started = performance.now();
  const single = await driftStage(reference, current, 1);
  rows.push({
    run: `stage path, ${ROWS.toLocaleString('en')} predictions in one window`,
    seconds: single.seconds.toFixed(2),
    'events/s': Math.round(ROWS / single.seconds),
    records: single.records.length,
  });
  printTable(
    `drift stage: ${NUMERIC} numeric + ${CATEGORICAL} categorical inputs (reference of ${ROWS.toLocaleString('en')} rows built in ${referenceSeconds.toFixed(2)} s)`,
    rows,
  );

  // State per window: a window's summary as stored (changelog value), per feature; a window of
  // 10,000 predictions against one of 100,000 shows that it does not grow with traffic.
  const perFeature = (summaries: readonly DriftSummary[]): number[] =>
    summaries.map((summary) => summary.toBuffer().length / (NUMERIC + CATEGORICAL));
  printTable(
    'state per window (serialized summary)',
    [
      { predictions: Math.ceil(ROWS / 10), summaries: hourly.windowSummaries },
      { predictions: ROWS, summaries: single.windowSummaries },
    ].map(({ predictions, summaries }) => {
      const sizes = perFeature(summaries);
      return {
        'predictions/window': predictions,
        windows: sizes.length,
        'bytes/feature/window (mean)': Math.round(sizes.reduce((sum, size) => sum + size, 0) / sizes.length),
        'bytes/feature/window (max)': Math.round(Math.max(...sizes)),
      };
    }),
  );
  process.stdout.write(`partials on the wire: ${hourly.partialBytes} bytes for 10 windows\n`);

  const ours = new Map(
    single.records
      .filter((record) => record.window_kind === 'TUMBLING' && record.psi !== null)
      .map((record) => [record.feature, record.psi ?? 0]),
  );
  const drifted = single.records
    .filter((record) => record.feature !== '__dataset__' && record.verdict === 'DRIFT')
    .map((record) => record.feature);
  process.stdout.write(`\nour verdicts on the single window: ${drifted.length} drifted inputs (${drifted.join(', ')})\n`);

  const theirs = await evidently(referenceRows, current, process.env.EVIDENTLY_PYTHON ?? 'python3');
  if (typeof theirs === 'string') {
    process.stdout.write(`Evidently: ${theirs}\n`);
    return;
  }
  const differences = [...ours].map(([feature, psi]) => {
    const column = feature.startsWith('n') ? Number(feature.slice(1)) : undefined;
    return {
      feature,
      ours: psi,
      sameBins: column === undefined ? psi : psiOnEvidentlyBins(referenceRows.numeric[column]!, current.numeric[column]!),
      evidently: theirs.psi[feature] ?? Number.NaN,
    };
  });
  const worst = Math.max(...differences.map((row) => Math.abs(row.ours - row.evidently)));
  const worstSameBins = Math.max(...differences.map((row) => Math.abs(row.sameBins - row.evidently)));
  const worstCategorical = Math.max(
    ...differences.filter((row) => row.feature.startsWith('c')).map((row) => Math.abs(row.ours - row.evidently)),
  );
  const oursTotal = referenceSeconds + single.seconds;
  printTable(`Evidently ${theirs.version} DataDriftPreset (PSI) on the same rows`, [
    {
      'evidently s': theirs.seconds.toFixed(2),
      'sluice s (reference + window)': oursTotal.toFixed(2),
      'time ratio sluice/evidently': (oursTotal / theirs.seconds).toFixed(3),
      'time ratio (window only)': (single.seconds / theirs.seconds).toFixed(3),
      'max |ΔPSI| categorical': worstCategorical.toExponential(2),
      'max |ΔPSI| numeric, reference-quantile bins': worst.toFixed(4),
      'max |ΔPSI| numeric, Evidently’s bins and zero fill': worstSameBins.toExponential(2),
    },
  ]);
  printTable(
    'PSI per input (numeric: ours on 10 reference-quantile bins, as the stage computes it; and our psi() on Evidently’s bins with its zero fill)',
    differences.map((row) => ({
      feature: row.feature,
      sluice: row.ours.toFixed(4),
      'sluice, Evidently’s bins': row.sameBins.toFixed(4),
      evidently: row.evidently.toFixed(4),
    })),
  );
}
