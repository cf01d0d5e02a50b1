export { DEFAULT_MIN_COUNT, checkSampleSizes, type Insufficient, type InsufficientReason, type SampleSizeOptions } from './result.js';
export {
  KS_EXACT_MAX_N,
  chiSquareSf,
  kolmogorovSf,
  kolmogorovSmirnovSf,
  ksTwoSamplePValue,
  logGamma,
  regularizedGammaQ,
  smirnovSf,
  type KsPValue,
  type KsPValueMethod,
} from './special.js';
export { DEFAULT_KLL_K, KllSketch, kllRankErrorBound, type CdfPoints, type KllOptions, type KllSketchState } from './kll.js';
export { ksTwoSample, ksTwoSampleSketch, type KsOptions, type KsResult } from './ks.js';
export { wasserstein, wassersteinSketch, type WassersteinResult } from './wasserstein.js';
export {
  addCategory,
  addToHistogram,
  binIndex,
  categoryVector,
  createCategoryCounts,
  createHistogram,
  histogramTotal,
  mergeCategoryCounts,
  mergeHistograms,
  quantileBinEdges,
  referenceCategories,
  mostFrequent,
  categoryKey,
  sampleQuantiles,
  sortedBinCounts,
  sortedQuantiles,
  type CategoryCounts,
  type CategoryValue,
  type Histogram,
  type QuantileSource,
} from './bins.js';
export { PSI_EPSILON, psi, type PsiOptions, type PsiResult, type PsiZeroFill } from './psi.js';
export { chiSquare, type ChiSquareResult } from './chi-square.js';
export { jensenShannon, type JensenShannonResult } from './jensen-shannon.js';
export { benjaminiHochberg, bonferroni } from './multiple-testing.js';
export { randomState, randomStep, seededRandom, type SeededRandom } from '../../common/random.js';
export { finiteSorted } from './samples.js';
