import { existsSync } from 'node:fs';
import { DEFAULT_PYTHON } from '../../models/jax.js';

/**
 * The Python with the JAX trainer's packages: the project's .venv-jax, which `.ci/run` creates
 * (README: "Experiments, tuning and the GPU trainer"). CI sets CI, and there a missing venv fails
 * the tests; on a machine without it they are skipped, and say so.
 */
export const JAX_PYTHON = DEFAULT_PYTHON;
export const JAX_AVAILABLE = existsSync(DEFAULT_PYTHON);
export const SKIP_JAX = !JAX_AVAILABLE && !process.env.CI;
if (SKIP_JAX)
  process.stderr.write(
    `JAX trainer tests skipped: no ${DEFAULT_PYTHON} (python3 -m venv .venv-jax && .venv-jax/bin/pip install -r models/jax/requirements.txt)\n`,
  );
