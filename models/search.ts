import { SluiceError } from '../common/errors.js';
import { uniformRandom } from '../common/random.js';
import type { TrainerKind } from '../topology/models.js';

/**
 * Search spaces of hyperparameters, as `sluice tune --param` writes them:
 *
 * - `hidden=8,16,32,64` — a choice (also `kind=logistic,mlp`);
 * - `lr=1e-4..1e-1:log` — a range, drawn log-uniformly (`:log`), uniformly, or as integers (`:int`);
 *   a grid takes 3 points of a range, or `:<n>` of them (`lr=1e-4..1e-1:log:4`);
 * - `l2=0` — a fixed value.
 *
 * Names: `lr` (or `learningRate`), `hidden`, `l2`, `batch` (or `batchSize`), `epochs`, `kind`.
 * Trial 0 is always the model's own configuration (the baseline); random search draws the others
 * from a seeded generator, so the same command proposes the same trials.
 */
export interface TrialParams {
  readonly kind: TrainerKind;
  readonly learningRate: number;
  readonly batchSize: number;
  readonly hidden: number;
  readonly l2: number;
  readonly epochs: number;
  readonly seed: number;
}

type Name = 'kind' | 'learningRate' | 'batchSize' | 'hidden' | 'l2' | 'epochs';

export type ParamSpec =
  | { readonly name: Name; readonly type: 'choice'; readonly values: readonly (number | string)[] }
  | {
      readonly name: Name;
      readonly type: 'range';
      readonly low: number;
      readonly high: number;
      readonly scale: 'linear' | 'log';
      readonly integer: boolean;
      readonly points: number;
    };

export class SearchSpaceError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_SEARCH_SPACE', message);
  }
}

const NAMES: Readonly<Record<string, Name>> = {
  lr: 'learningRate',
  learningRate: 'learningRate',
  learning_rate: 'learningRate',
  hidden: 'hidden',
  l2: 'l2',
  batch: 'batchSize',
  batchSize: 'batchSize',
  batch_size: 'batchSize',
  epochs: 'epochs',
  kind: 'kind',
};

const INTEGER: ReadonlySet<Name> = new Set(['hidden', 'batchSize', 'epochs']);

function number(name: string, text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new SearchSpaceError(`--param ${name}: "${text}" is not a number`);
  return value;
}

function check(name: Name, value: number | string): void {
  if (name === 'kind') {
    if (value !== 'logistic' && value !== 'mlp') throw new SearchSpaceError(`--param kind: logistic or mlp, got "${value}"`);
    return;
  }
  if (typeof value !== 'number') throw new SearchSpaceError(`--param ${name}: "${value}" is not a number`);
  if (INTEGER.has(name) && (!Number.isInteger(value) || value < 1))
    throw new SearchSpaceError(`--param ${name}: whole numbers ≥ 1, got ${value}`);
  if (name === 'learningRate' && !(value > 0)) throw new SearchSpaceError(`--param lr: values > 0, got ${value}`);
  if (name === 'l2' && value < 0) throw new SearchSpaceError(`--param l2: values ≥ 0, got ${value}`);
}

/** One `--param` argument. */
export function parseParam(text: string): ParamSpec {
  const equals = text.indexOf('=');
  if (equals <= 0) throw new SearchSpaceError(`--param "${text}": write name=values, e.g. lr=1e-4..1e-1:log or hidden=8,16,32`);
  const given = text.slice(0, equals).trim();
  const name = NAMES[given];
  if (!name) throw new SearchSpaceError(`--param ${given}: unknown; tunable: lr, hidden, l2, batch, epochs, kind`);
  const [body = '', ...modifiers] = text.slice(equals + 1).split(':');
  if (body.includes('..')) {
    if (name === 'kind') throw new SearchSpaceError('--param kind: a choice (logistic,mlp), not a range');
    const [lowText = '', highText = ''] = body.split('..');
    const low = number(given, lowText);
    const high = number(given, highText);
    if (!(high > low)) throw new SearchSpaceError(`--param ${given}: the range's end must exceed its start, got ${body}`);
    let scale: 'linear' | 'log' = 'linear';
    let integer = INTEGER.has(name);
    let points = 3;
    for (const modifier of modifiers) {
      if (modifier === 'log') scale = 'log';
      else if (modifier === 'int') integer = true;
      else if (/^\d+$/.test(modifier) && Number(modifier) >= 2) points = Number(modifier);
      else throw new SearchSpaceError(`--param ${given}: unknown modifier ":${modifier}" (log, int, or grid points ≥ 2)`);
    }
    if (scale === 'log' && !(low > 0)) throw new SearchSpaceError(`--param ${given}: a log range needs a start > 0, got ${low}`);
    check(name, integer ? Math.ceil(low) : low);
    check(name, high);
    return { name, type: 'range', low, high, scale, integer, points };
  }
  if (modifiers.length > 0) throw new SearchSpaceError(`--param ${given}: modifiers belong to ranges (a..b:log)`);
  const values = body.split(',').map((part) => (name === 'kind' ? part.trim() : number(given, part)));
  for (const value of values) check(name, value);
  return { name, type: 'choice', values };
}

/** The search space when none is given: learning rate, hidden units and L2. */
export function defaultSpace(): ParamSpec[] {
  return ['lr=1e-4..1e-1:log', 'hidden=8,16,32,64', 'l2=0,1e-5,1e-4,1e-3'].map(parseParam);
}

function rounded(value: number, integer: boolean): number {
  return integer ? Math.round(value) : Number(value.toPrecision(3));
}

function draw(spec: ParamSpec, random: () => number): number | string {
  if (spec.type === 'choice') return spec.values[Math.min(spec.values.length - 1, Math.floor(random() * spec.values.length))] ?? '';
  const unit = random();
  const value =
    spec.scale === 'log'
      ? Math.exp(Math.log(spec.low) + unit * (Math.log(spec.high) - Math.log(spec.low)))
      : spec.low + unit * (spec.high - spec.low);
  if (spec.integer) {
    const low = Math.ceil(spec.low);
    const high = Math.floor(spec.high);
    if (spec.scale === 'linear') return Math.min(high, low + Math.floor(unit * (high - low + 1)));
    return Math.min(high, Math.max(low, Math.round(value)));
  }
  return rounded(value, false);
}

function points(spec: ParamSpec): (number | string)[] {
  if (spec.type === 'choice') return [...spec.values];
  const out: number[] = [];
  for (let index = 0; index < spec.points; index++) {
    const unit = index / (spec.points - 1);
    const value =
      spec.scale === 'log'
        ? Math.exp(Math.log(spec.low) + unit * (Math.log(spec.high) - Math.log(spec.low)))
        : spec.low + unit * (spec.high - spec.low);
    const point = rounded(value, spec.integer);
    if (!out.includes(point)) out.push(point);
  }
  return out;
}

function withValue(params: TrialParams, name: Name, value: number | string): TrialParams {
  const next: TrialParams = { ...params, [name]: value };
  return next;
}

function key(params: TrialParams): string {
  return JSON.stringify([
    params.kind,
    params.learningRate,
    params.batchSize,
    params.kind === 'mlp' ? params.hidden : 0,
    params.l2,
    params.epochs,
  ]);
}

/** Random search: the baseline, then count − 1 seeded draws (distinct when the space allows). */
export function randomTrials(base: TrialParams, space: readonly ParamSpec[], count: number, seed: number): TrialParams[] {
  if (!Number.isInteger(count) || count < 1) throw new SearchSpaceError(`--trials: a whole number ≥ 1, got ${count}`);
  const random = uniformRandom(seed);
  const trials = [base];
  const seen = new Set([key(base)]);
  while (trials.length < count) {
    let candidate = base;
    for (let attempt = 0; attempt < 50; attempt++) {
      candidate = space.reduce((params, spec) => withValue(params, spec.name, draw(spec, random)), base);
      if (!seen.has(key(candidate))) break;
    }
    seen.add(key(candidate));
    trials.push(candidate);
  }
  return trials;
}

/** Grid search: the baseline, then every combination of the specs' points (the baseline's own point once). */
export function gridTrials(base: TrialParams, space: readonly ParamSpec[]): TrialParams[] {
  let grid: TrialParams[] = [base];
  for (const spec of space) grid = grid.flatMap((params) => points(spec).map((value) => withValue(params, spec.name, value)));
  const seen = new Set([key(base)]);
  const trials = [base];
  for (const params of grid) {
    if (seen.has(key(params))) continue;
    seen.add(key(params));
    trials.push(params);
  }
  return trials;
}
