import { SluiceError } from '../common/errors.js';

/**
 * The model's score for an input is not a finite number (NaN or ±Infinity: an input beyond what
 * the float32 network holds, or a broken artifact). Never served as a prediction: the caller falls
 * back (the previous version, else the documented fallback score) and says why.
 */
export class NonFiniteScoreError extends SluiceError {
  constructor(model: string, version: number, score: number) {
    super('SLUICE_NON_FINITE_SCORE', `model ${model} version ${version} scored ${String(score)}, not a finite number, for this input`, {
      context: { model, version },
    });
  }
}
