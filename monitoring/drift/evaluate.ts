import type { Correction } from '../../topology/monitoring.js';
import { SCORE_FEATURE, type CategoricalReference, type ModelReference, type NumericReference } from '../reference.js';
import {
  KllSketch,
  benjaminiHochberg,
  bonferroni,
  chiSquare,
  jensenShannon,
  ksTwoSampleSketch,
  psi,
  wassersteinSketch,
  type Insufficient,
} from '../statistics/index.js';
import type { CategoricalPart, DriftSummary, NumericPart } from './summary.js';

/**
 * One window's drift verdicts, from its summary and the version's reference.
 *
 * Per input: numeric inputs get the two-sample KS test (D and p-value from the KLL sketches, with
 * D's error bound), categorical inputs the chi-square test of homogeneity over the reference's
 * categories plus "other"; both get PSI and the Jensen–Shannon distance over the reference's fixed
 * bins (exact on those bins), numeric ones also Wasserstein-1 (from the sketches, with its bound).
 *
 * Verdict: INSUFFICIENT when either side has fewer than `minSample` valid values (or none);
 * otherwise DRIFT when the test's p-value, corrected for the inputs tested in this window
 * (Benjamini–Hochberg by default: the false discovery rate among the inputs flagged stays ≤ alpha;
 * Bonferroni: the chance of any false flag stays ≤ alpha), is below alpha AND the effect size —
 * PSI — is at least `psiThreshold`. The p-value alone would flag trivial shifts in large windows;
 * the effect size alone would flag noise in small ones. The score is tested the same way, alone
 * (not part of the correction nor of the dataset share). Dataset: the share of inputs with a
 * verdict that drifted; the dataset drifts when it reaches `driftShare`.
 */
export interface DriftSettings {
  readonly minSample: number;
  readonly alpha: number;
  readonly correction: Correction;
  readonly psiThreshold: number;
  readonly driftShare: number;
}

export type Verdict = 'DRIFT' | 'NO_DRIFT' | 'INSUFFICIENT' | 'NO_REFERENCE';

export interface FeatureDrift {
  readonly feature: string;
  readonly featureKind: 'numeric' | 'categorical' | 'score';
  readonly verdict: Verdict;
  readonly reason: string | null;
  readonly test: 'KS' | 'CHI_SQUARE';
  /** KS D or chi-square X² (0 without a verdict). */
  readonly statistic: number;
  readonly pValue: number | null;
  readonly pValueAdjusted: number | null;
  readonly testsInFamily: number;
  readonly sampleSize: number;
  readonly baselineSize: number;
  readonly missing: number;
  readonly invalid: number;
  readonly unseen: number;
  readonly ks: { readonly statistic: number; readonly pValue: number; readonly errorBound: number } | null;
  readonly rankErrorBound: number | null;
  readonly chiSquare: { readonly statistic: number; readonly dof: number; readonly pValue: number } | null;
  readonly psi: number | null;
  readonly jensenShannon: number | null;
  readonly wasserstein: { readonly distance: number; readonly errorBound: number } | null;
}

export interface DatasetDrift {
  readonly verdict: Verdict;
  readonly reason: string | null;
  /** drifted / tested, null when no input has a verdict. */
  readonly share: number | null;
  readonly drifted: number;
  readonly tested: number;
  readonly predictions: number;
  readonly fallbacks: number;
}

export interface DriftEvaluation {
  readonly features: readonly FeatureDrift[];
  readonly score: FeatureDrift | undefined;
  readonly dataset: DatasetDrift;
}

interface Tested {
  readonly base: Omit<FeatureDrift, 'verdict' | 'pValueAdjusted' | 'testsInFamily' | 'reason'>;
  readonly insufficient: Insufficient | undefined;
}

/** Evaluates a window (see above). Without a reference only the counts are reported (NO_REFERENCE). */
export function evaluateDrift(reference: ModelReference | undefined, summary: DriftSummary, settings: DriftSettings): DriftEvaluation {
  if (!reference) {
    return {
      features: [],
      score: undefined,
      dataset: {
        verdict: 'NO_REFERENCE',
        reason: 'the model version stores no drift reference',
        share: null,
        drifted: 0,
        tested: 0,
        predictions: summary.predictions,
        fallbacks: summary.fallbacks,
      },
    };
  }
  const tested = reference.inputs.map((input, index) => {
    const part = summary.parts[index];
    if (!part) throw new RangeError(`the summary has no part for input ${input.name}`);
    return input.kind === 'numeric'
      ? testNumeric(input.name, 'numeric', input, part as NumericPart, settings.minSample)
      : testCategorical(input.name, input, part as CategoricalPart, settings.minSample);
  });
  const pValues = tested.map((entry) => (entry.insufficient ? null : entry.base.pValue));
  const adjusted = correct(pValues, settings.correction);
  const family = pValues.filter((value) => value !== null).length;
  const features = tested.map((entry, index) => decide(entry, adjusted[index] ?? null, family, settings));
  const score =
    reference.score && summary.score
      ? decide(testNumeric(SCORE_FEATURE, 'score', reference.score, summary.score, settings.minSample), null, 1, settings)
      : undefined;
  const withVerdict = features.filter((feature) => feature.verdict === 'DRIFT' || feature.verdict === 'NO_DRIFT');
  const drifted = withVerdict.filter((feature) => feature.verdict === 'DRIFT').length;
  const share = withVerdict.length === 0 ? null : drifted / withVerdict.length;
  return {
    features,
    score,
    dataset: {
      verdict: share === null ? 'INSUFFICIENT' : share >= settings.driftShare ? 'DRIFT' : 'NO_DRIFT',
      reason: share === null ? `no input has ${settings.minSample} valid values on both sides` : null,
      share,
      drifted,
      tested: withVerdict.length,
      predictions: summary.predictions,
      fallbacks: summary.fallbacks,
    },
  };
}

function correct(pValues: readonly (number | null)[], correction: Correction): (number | null)[] {
  if (correction === 'benjamini-hochberg') return benjaminiHochberg(pValues);
  if (correction === 'bonferroni') return bonferroni(pValues);
  return [...pValues];
}

function decide(entry: Tested, adjusted: number | null, family: number, settings: DriftSettings): FeatureDrift {
  if (entry.insufficient) {
    const { reason, referenceCount, currentCount, minCount } = entry.insufficient;
    return {
      ...entry.base,
      verdict: 'INSUFFICIENT',
      reason: `${reason === 'empty' ? 'empty' : 'below the minimum sample'}: ${currentCount} live and ${referenceCount} reference values, ${minCount} needed`,
      pValueAdjusted: null,
      testsInFamily: family,
    };
  }
  const p = adjusted ?? entry.base.pValue ?? 1;
  const drifted = p < settings.alpha && (entry.base.psi ?? 0) >= settings.psiThreshold;
  return { ...entry.base, verdict: drifted ? 'DRIFT' : 'NO_DRIFT', reason: null, pValueAdjusted: p, testsInFamily: family };
}

function testNumeric(
  name: string,
  featureKind: 'numeric' | 'score',
  reference: NumericReference,
  part: NumericPart,
  minSample: number,
): Tested {
  const options = { minCount: minSample };
  const referenceSketch = KllSketch.fromState(reference.sketch);
  const ks = ksTwoSampleSketch(referenceSketch, part.sketch, options);
  const binned = psi(reference.counts, part.counts, options);
  const js = jensenShannon(reference.counts, part.counts, options);
  const w1 = wassersteinSketch(referenceSketch, part.sketch, options);
  const ok = ks.status === 'ok' ? ks : undefined;
  return {
    insufficient: ks.status === 'ok' ? undefined : ks,
    base: {
      feature: name,
      featureKind,
      test: 'KS',
      statistic: ok?.statistic ?? 0,
      pValue: ok?.pValue ?? null,
      sampleSize: part.sketch.count,
      baselineSize: reference.count,
      missing: part.missing,
      invalid: part.invalid,
      unseen: 0,
      ks: ok ? { statistic: ok.statistic, pValue: ok.pValue, errorBound: ok.errorBound } : null,
      rankErrorBound: part.sketch.rankErrorBound,
      chiSquare: null,
      psi: binned.status === 'ok' ? binned.value : null,
      jensenShannon: js.status === 'ok' ? js.distance : null,
      wasserstein: w1.status === 'ok' ? { distance: w1.distance, errorBound: w1.errorBound } : null,
    },
  };
}

function testCategorical(name: string, reference: CategoricalReference, part: CategoricalPart, minSample: number): Tested {
  const options = { minCount: minSample };
  const referenceVector = [...reference.counts, reference.other];
  const currentVector = [...part.counts, part.other];
  const chi = chiSquare(referenceVector, currentVector, options);
  const binned = psi(referenceVector, currentVector, options);
  const js = jensenShannon(referenceVector, currentVector, options);
  const ok = chi.status === 'ok' ? chi : undefined;
  return {
    insufficient: chi.status === 'ok' ? undefined : chi,
    base: {
      feature: name,
      featureKind: 'categorical',
      test: 'CHI_SQUARE',
      statistic: ok?.statistic ?? 0,
      pValue: ok?.pValue ?? null,
      sampleSize: currentVector.reduce((sum, count) => sum + count, 0),
      baselineSize: reference.count,
      missing: part.missing,
      invalid: part.invalid,
      unseen: part.other,
      ks: null,
      rankErrorBound: null,
      chiSquare: ok ? { statistic: ok.statistic, dof: ok.dof, pValue: ok.pValue } : null,
      psi: binned.status === 'ok' ? binned.value : null,
      jensenShannon: js.status === 'ok' ? js.distance : null,
      wasserstein: null,
    },
  };
}
