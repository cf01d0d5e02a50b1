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
 *
 * `train` trains one configuration in one go; `TfjsTrial` trains one epoch range at a time over
 * `TrainingData` shared by many trials (tuning: successive halving continues the survivors), and
 * gives bit for bit the weights `train` gives for the same configuration.
 */

export interface TrialConfig {
  readonly kind: TrainerKind;
  readonly seed: number;
  readonly learningRate: number;
  readonly batchSize: number;
  /** Units of the MLP's hidden layer. */
  readonly hidden?: number;
  /** L2 penalty on the first layer's weights. */
  readonly l2?: number;
}

export interface TrainOptions extends TrialConfig {
  readonly features: readonly string[];
  readonly epochs: number;
}

/** One epoch as model.fit reported it. */
export interface EpochLog {
  /** 1-based. */
  readonly epoch: number;
  /** Mean training loss over the epoch's mini-batches (L2 penalty included). */
  readonly loss: number;
  readonly seconds: number;
}

export interface TrainedModel {
  readonly network: ScoringNetwork;
  readonly backend: string;
  readonly epochSeconds: readonly number[];
  readonly epochs: readonly EpochLog[];
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

type Rows = readonly (readonly (number | null)[])[];

/**
 * The training split, prepared once: standardization statistics (finite values only, float64),
 * and per seed the rows in that seed's order as standardized float32 tensors.
 */
export class TrainingData {
  readonly mean: Float32Array;
  readonly std: Float32Array;
  private readonly bySeed = new Map<number, { readonly x: tf.Tensor2D; readonly y: tf.Tensor2D }>();

  /** Prepares the data once the training backend runs (tensors made before would land on another backend). */
  static async prepare(rows: Rows, labels: readonly number[], features: readonly string[]): Promise<TrainingData> {
    await trainingBackend();
    return new TrainingData(rows, labels, features);
  }

  private constructor(
    readonly rows: Rows,
    readonly labels: readonly number[],
    readonly features: readonly string[],
  ) {
    const width = features.length;
    this.mean = new Float32Array(width);
    this.std = new Float32Array(width);
    for (let column = 0; column < width; column++) {
      const values = rows.map((row) => row[column]).filter((value): value is number => typeof value === 'number' && Number.isFinite(value));
      const average = values.length === 0 ? 0 : values.reduce((sum, value) => sum + value, 0) / values.length;
      const deviation = values.length === 0 ? 0 : Math.sqrt(values.reduce((sum, value) => sum + (value - average) ** 2, 0) / values.length);
      this.mean[column] = average;
      this.std[column] = deviation > 1e-9 ? deviation : 1;
    }
  }

  /** The network before any layer: the standardization. */
  get standardization(): ScoringNetwork {
    return { features: this.features, mean: this.mean, std: this.std, layers: [] };
  }

  /** Rows as the network's input: missing values filled with the mean, then (x − mean) / std, in float32. */
  standardize(rows: Rows): tf.Tensor2D {
    const width = this.features.length;
    return tf.tidy(() => {
      const raw = tf.tensor2d(toBatch(this.standardization, rows), [rows.length, width], 'float32');
      return raw.sub(tf.tensor2d(this.mean, [1, width])).div(tf.tensor2d(this.std, [1, width]));
    });
  }

  /** The rows shuffled once by the seed (every epoch uses this order: fit runs with shuffle off). */
  ordered(seed: number): { readonly x: tf.Tensor2D; readonly y: tf.Tensor2D } {
    let tensors = this.bySeed.get(seed);
    if (!tensors) {
      const random = uniformRandom(seed);
      const order = this.rows.map((_, index) => index);
      for (let index = order.length - 1; index > 0; index--) {
        const swap = Math.floor(random() * (index + 1));
        [order[index], order[swap]] = [order[swap] ?? 0, order[index] ?? 0];
      }
      const labels = Float32Array.from(order.map((index) => this.labels[index] ?? 0));
      tensors = { x: this.standardize(order.map((index) => this.rows[index] ?? [])), y: tf.tensor2d(labels, [labels.length, 1]) };
      this.bySeed.set(seed, tensors);
    }
    return tensors;
  }

  dispose(): void {
    for (const { x, y } of this.bySeed.values()) {
      x.dispose();
      y.dispose();
    }
    this.bySeed.clear();
  }
}

/** One configuration in training: continues from where it stopped (the optimizer's state included). */
export class TfjsTrial {
  readonly epochs: EpochLog[] = [];

  private constructor(
    private readonly data: TrainingData,
    private readonly model: tf.Sequential,
    readonly config: TrialConfig,
  ) {}

  static async create(data: TrainingData, config: TrialConfig): Promise<TfjsTrial> {
    await trainingBackend();
    const width = data.features.length;
    const regularizer = config.l2 ? tf.regularizers.l2({ l2: config.l2 }) : undefined;
    const init = (offset: number) => tf.initializers.glorotUniform({ seed: config.seed + offset });
    const model = tf.sequential();
    if (config.kind === 'mlp') {
      model.add(
        tf.layers.dense({
          units: config.hidden ?? 16,
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
    model.compile({ optimizer: tf.train.adam(config.learningRate), loss: 'binaryCrossentropy' });
    return new TfjsTrial(data, model, config);
  }

  get epochsTrained(): number {
    return this.epochs.length;
  }

  /** Trains on to `epochs` epochs in all (nothing when it has them already). */
  async trainTo(epochs: number): Promise<void> {
    if (epochs <= this.epochsTrained) return;
    const { x, y } = this.data.ordered(this.config.seed);
    let epochStarted = performance.now();
    await this.model.fit(x, y, {
      initialEpoch: this.epochsTrained,
      epochs,
      batchSize: this.config.batchSize,
      shuffle: false,
      callbacks: {
        onEpochBegin: () => {
          epochStarted = performance.now();
        },
        onEpochEnd: (epoch, logs) => {
          this.epochs.push({ epoch: epoch + 1, loss: logs?.loss ?? Number.NaN, seconds: (performance.now() - epochStarted) / 1000 });
        },
      },
    });
  }

  /** The trained weights as a scoring network. */
  network(): ScoringNetwork {
    const layers: DenseLayer[] = this.model.layers.map((layer, index) => {
      const [kernel, bias] = layer.getWeights();
      if (!kernel || !bias) throw new Error(`layer ${index} has no weights`);
      const [inputs = 0, outputs = 0] = kernel.shape;
      return {
        inputs,
        outputs,
        weights: Float32Array.from(kernel.dataSync()),
        bias: Float32Array.from(bias.dataSync()),
        activation: index === this.model.layers.length - 1 ? 'sigmoid' : 'relu',
      };
    });
    return { ...this.data.standardization, layers };
  }

  /** Scores of standardized rows (TrainingData.standardize). */
  async scores(input: tf.Tensor2D): Promise<Float32Array> {
    const output = this.model.predict(input) as tf.Tensor;
    try {
      return Float32Array.from(await output.data());
    } finally {
      output.dispose();
    }
  }

  /** Scores of raw rows. */
  async predict(rows: Rows): Promise<Float32Array> {
    const input = this.data.standardize(rows);
    try {
      return await this.scores(input);
    } finally {
      input.dispose();
    }
  }

  dispose(): void {
    this.model.dispose();
  }
}

export async function train(rows: Rows, labels: readonly number[], options: TrainOptions): Promise<TrainedModel> {
  const backend = await trainingBackend();
  const data = await TrainingData.prepare(rows, labels, options.features);
  const trial = await TfjsTrial.create(data, options);
  try {
    await trial.trainTo(options.epochs);
  } finally {
    data.dispose(); // the training tensors; the model stays for predict
  }
  return {
    network: trial.network(),
    backend,
    epochSeconds: trial.epochs.map((epoch) => epoch.seconds),
    epochs: trial.epochs,
    predict: (batch) => trial.predict(batch),
  };
}
