import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { TrainerKind } from '../topology/models.js';

export type { TrainerKind };
import { toBatch, type DenseLayer, type ScoringNetwork } from './network.js';
import { uniformRandom } from '../common/random.js';

/**
 * Trainers on TensorFlow.js: a logistic regression and a one-hidden-layer MLP, both ending in a
 * sigmoid score. Inputs are standardized with the training mean and deviation (inside the
 * network, so the ONNX graph does the same), missing values filled with the mean. Seeded: weights
 * are initialized and batches shuffled from the seed, so a run repeats exactly on one backend.
 */

export interface TrainOptions {
  readonly kind: TrainerKind;
  readonly features: readonly string[];
  readonly seed: number;
  readonly epochs: number;
  readonly learningRate: number;
  readonly batchSize: number;
  /** Units of the MLP's hidden layer. */
  readonly hidden?: number;
  /** L2 penalty on the weights. */
  readonly l2?: number;
}

export interface TrainedModel {
  readonly network: ScoringNetwork;
  readonly backend: string;
  readonly epochSeconds: readonly number[];
  /** Scores from the trainer itself (TensorFlow.js), for parity checks against ONNX Runtime. */
  predict(rows: readonly (readonly (number | null)[])[]): Promise<Float32Array>;
}

let backendReady: Promise<string> | undefined;

/** The wasm backend (about twice as fast as the pure-JS cpu backend here), cpu when it cannot start. */
export function trainingBackend(): Promise<string> {
  backendReady ??= (async () => {
    try {
      if (await tf.setBackend('wasm')) {
        await tf.ready();
        return 'wasm';
      }
    } catch {
      // fall through to cpu
    }
    await tf.setBackend('cpu');
    await tf.ready();
    return 'cpu';
  })();
  return backendReady;
}

export async function train(
  rows: readonly (readonly (number | null)[])[],
  labels: readonly number[],
  options: TrainOptions,
): Promise<TrainedModel> {
  const backend = await trainingBackend();
  const width = options.features.length;
  // ---- statistics for standardization (missing values left out) -------------------------
  const mean = new Float32Array(width);
  const std = new Float32Array(width);
  for (let column = 0; column < width; column++) {
    const values = rows.map((row) => row[column]).filter((value): value is number => typeof value === 'number' && Number.isFinite(value));
    const average = values.length === 0 ? 0 : values.reduce((sum, value) => sum + value, 0) / values.length;
    const deviation = values.length === 0 ? 0 : Math.sqrt(values.reduce((sum, value) => sum + (value - average) ** 2, 0) / values.length);
    mean[column] = average;
    std[column] = deviation > 1e-9 ? deviation : 1;
  }
  const partial: ScoringNetwork = { features: options.features, mean, std, layers: [] };

  // ---- a seeded order of the rows ------------------------------------------------------------
  const random = uniformRandom(options.seed);
  const order = rows.map((_, index) => index);
  for (let index = order.length - 1; index > 0; index--) {
    const swap = Math.floor(random() * (index + 1));
    [order[index], order[swap]] = [order[swap] ?? 0, order[index] ?? 0];
  }
  const shuffledRows = order.map((index) => rows[index] ?? []);
  const shuffledLabels = Float32Array.from(order.map((index) => labels[index] ?? 0));

  const regularizer = options.l2 ? tf.regularizers.l2({ l2: options.l2 }) : undefined;
  const init = (offset: number) => tf.initializers.glorotUniform({ seed: options.seed + offset });
  const model = tf.sequential();
  if (options.kind === 'mlp') {
    model.add(
      tf.layers.dense({
        units: options.hidden ?? 16,
        activation: 'relu',
        inputShape: [width],
        kernelInitializer: init(1),
        biasInitializer: 'zeros',
        ...(regularizer ? { kernelRegularizer: regularizer } : {}),
      }),
    );
    model.add(tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: init(2), biasInitializer: 'zeros' }));
  } else {
    model.add(
      tf.layers.dense({
        units: 1,
        activation: 'sigmoid',
        inputShape: [width],
        kernelInitializer: init(1),
        biasInitializer: 'zeros',
        ...(regularizer ? { kernelRegularizer: regularizer } : {}),
      }),
    );
  }
  model.compile({ optimizer: tf.train.adam(options.learningRate), loss: 'binaryCrossentropy' });

  const standardize = (batch: readonly (readonly (number | null)[])[]): tf.Tensor2D =>
    tf.tidy(() => {
      const raw = tf.tensor2d(toBatch(partial, batch), [batch.length, width], 'float32');
      return raw.sub(tf.tensor2d(mean, [1, width])).div(tf.tensor2d(std, [1, width]));
    });
  const x = standardize(shuffledRows);
  const y = tf.tensor2d(shuffledLabels, [shuffledLabels.length, 1]);
  const epochSeconds: number[] = [];
  let epochStarted = performance.now();
  try {
    await model.fit(x, y, {
      epochs: options.epochs,
      batchSize: options.batchSize,
      shuffle: false,
      callbacks: {
        onEpochBegin: () => {
          epochStarted = performance.now();
        },
        onEpochEnd: () => {
          epochSeconds.push((performance.now() - epochStarted) / 1000);
        },
      },
    });
  } finally {
    x.dispose();
    y.dispose();
  }

  // ---- the trained weights as a scoring network ------------------------------------------
  const layers: DenseLayer[] = model.layers.map((layer, index) => {
    const [kernel, bias] = layer.getWeights();
    if (!kernel || !bias) throw new Error(`layer ${index} has no weights`);
    const [inputs = 0, outputs = 0] = kernel.shape;
    return {
      inputs,
      outputs,
      weights: Float32Array.from(kernel.dataSync()),
      bias: Float32Array.from(bias.dataSync()),
      activation: index === model.layers.length - 1 ? 'sigmoid' : 'relu',
    };
  });
  const network: ScoringNetwork = { ...partial, layers };
  return {
    network,
    backend,
    epochSeconds,
    async predict(batch) {
      const input = standardize(batch);
      try {
        const output = model.predict(input) as tf.Tensor;
        const scores = Float32Array.from(await output.data());
        output.dispose();
        return scores;
      } finally {
        input.dispose();
      }
    },
  };
}
