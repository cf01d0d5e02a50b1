/**
 * Successive halving, the rule both trainers follow (models/jax/CONTRACT.md, section 5): with
 * `minEpochs` r, `eta` η and E the most epochs of any trial, rungs sit at epochs r, rη, rη², … below
 * E, and at E. At each rung every surviving trial has trained to min(rung, its epochs); the
 * survivors are ranked by validation log loss at their last epoch (non-finite losses last, ties by
 * trial order) and the best max(1, ⌊n/η⌋) go on. Trials marked `keep` (the baseline) always go on
 * and do not count in n. Nothing is culled at the last rung.
 *
 * This is ASHA's promotion rule applied in lock-step (synchronous successive halving): the
 * outcome does not depend on which trial finished first, so a tuning run repeats exactly.
 */
export interface HalvingSpec {
  readonly minEpochs: number;
  readonly eta: number;
}

export interface RungEntry {
  /** The trial's position in the tuning run. */
  readonly index: number;
  /** Validation log loss at its last trained epoch. */
  readonly loss: number;
  /** Never stopped (the baseline). */
  readonly keep?: boolean;
}

export function rungs(spec: HalvingSpec, maxEpochs: number): number[] {
  if (!Number.isInteger(spec.minEpochs) || spec.minEpochs < 1)
    throw new RangeError(`minEpochs must be an integer ≥ 1, got ${spec.minEpochs}`);
  if (!Number.isInteger(spec.eta) || spec.eta < 2) throw new RangeError(`eta must be an integer ≥ 2, got ${spec.eta}`);
  const out: number[] = [];
  for (let epoch = spec.minEpochs; epoch < maxEpochs; epoch *= spec.eta) out.push(epoch);
  out.push(maxEpochs);
  return out;
}

/** Which trials go on from a rung (in trial order) and which stop (best first). */
export function cull(entries: readonly RungEntry[], eta: number, final: boolean): { kept: number[]; stopped: number[] } {
  const rank = (entry: RungEntry): number => (Number.isFinite(entry.loss) ? entry.loss : Number.POSITIVE_INFINITY);
  const ranked = [...entries].sort((left, right) => rank(left) - rank(right) || left.index - right.index);
  if (final) return { kept: entries.map((entry) => entry.index).sort((left, right) => left - right), stopped: [] };
  const contenders = ranked.filter((entry) => !entry.keep);
  const places = Math.max(1, Math.floor(contenders.length / eta));
  const going = new Set([...contenders.slice(0, places), ...ranked.filter((entry) => entry.keep)].map((entry) => entry.index));
  return {
    kept: [...going].sort((left, right) => left - right),
    stopped: ranked.filter((entry) => !going.has(entry.index)).map((entry) => entry.index),
  };
}

/** Trial-epochs a schedule trains at most (every trial reaching its rungs): the progress bar's total. */
export function plannedEpochs(trialEpochs: readonly number[], keep: readonly boolean[], spec: HalvingSpec | undefined): number {
  if (!spec) return trialEpochs.reduce((sum, epochs) => sum + epochs, 0);
  const schedule = rungs(spec, Math.max(...trialEpochs));
  let contenders = trialEpochs.filter((_, index) => !keep[index]).length;
  const kept = trialEpochs.filter((_, index) => keep[index]);
  const others = trialEpochs.filter((_, index) => !keep[index]);
  let total = kept.reduce((sum, epochs) => sum + epochs, 0);
  let previous = 0;
  for (const [number, rung] of schedule.entries()) {
    // the contenders still in at this rung each train from the previous rung to this one
    const trained = others
      .slice(0, contenders)
      .reduce((sum, epochs) => sum + Math.max(0, Math.min(rung, epochs) - Math.min(previous, epochs)), 0);
    total += trained;
    previous = rung;
    if (number < schedule.length - 1) contenders = Math.max(1, Math.floor(contenders / spec.eta));
  }
  return total;
}
