import { parentPort, workerData } from 'node:worker_threads';
import type * as tf from '@tensorflow/tfjs';
import { logLoss } from './metrics.js';
import type { ScoringNetwork } from './network.js';
import { TfjsTrial, TrainingData, trainingBackend } from './trainer.js';
import type { PoolData, PoolMatrix, WorkerReply, WorkerRequest } from './tfjs-pool.js';

/**
 * One worker thread of the TensorFlow.js pool (tfjs-pool.ts): it holds the training data and the
 * trials pinned to it, and answers the pool's requests one at a time, in order.
 */
const data = workerData as { readonly data: PoolData };
const port = parentPort;
if (!port) throw new Error('tfjs-worker runs as a worker thread');

function rowsOf(matrix: PoolMatrix, width: number): number[][] {
  // NaN stands for a missing value: the trainer's statistics and toBatch skip non-finite values as they skip null.
  return Array.from({ length: matrix.rows }, (_, row) => Array.from(matrix.values.subarray(row * width, (row + 1) * width)));
}

// The backend first: tensors made before it would land on another one. (Messages wait in the port
// until the listener below is attached.)
const backend = await trainingBackend();
const width = data.data.features.length;
const training = await TrainingData.prepare(rowsOf(data.data.train, width), Array.from(data.data.train.labels), data.data.features);
const splits = new Map<'validation' | 'test', { readonly input: tf.Tensor2D; readonly labels: number[] }>();
for (const name of ['validation', 'test'] as const) {
  const matrix = data.data[name];
  if (matrix) splits.set(name, { input: training.standardize(rowsOf(matrix, width)), labels: Array.from(matrix.labels) });
}
const trials = new Map<string, { readonly trial: TfjsTrial; readonly validationLoss: number[] }>();

async function handle(request: WorkerRequest): Promise<WorkerReply> {
  switch (request.op) {
    case 'create': {
      trials.set(request.id, { trial: await TfjsTrial.create(training, request.config), validationLoss: [] });
      return { requestId: request.requestId, ok: true, backend };
    }
    case 'train': {
      const entry = trials.get(request.id);
      if (!entry) throw new Error(`no trial ${request.id} in this worker`);
      const validation = splits.get('validation');
      const from = entry.trial.epochsTrained;
      if (validation) {
        // One epoch at a time (the same weights as in one go): the validation loss after every epoch.
        for (let epoch = from + 1; epoch <= request.epochs; epoch++) {
          await entry.trial.trainTo(epoch);
          entry.validationLoss.push(logLoss(await entry.trial.scores(validation.input), validation.labels));
        }
      } else await entry.trial.trainTo(request.epochs);
      const epochs = entry.trial.epochs.slice(from).map((log) => ({ ...log, validationLoss: entry.validationLoss[log.epoch - 1] ?? null }));
      return { requestId: request.requestId, ok: true, epochs };
    }
    case 'finish': {
      const entry = trials.get(request.id);
      if (!entry) throw new Error(`no trial ${request.id} in this worker`);
      const scores: { validation?: Float32Array; test?: Float32Array } = {};
      for (const [name, split] of splits) scores[name] = await entry.trial.scores(split.input);
      const network: ScoringNetwork = entry.trial.network();
      return { requestId: request.requestId, ok: true, network, scores };
    }
    case 'dispose': {
      trials.get(request.id)?.trial.dispose();
      trials.delete(request.id);
      return { requestId: request.requestId, ok: true };
    }
  }
}

// Requests run strictly one after another: a trial's epochs never interleave with another's.
let queue: Promise<unknown> = Promise.resolve();
port.on('message', (request: WorkerRequest) => {
  queue = queue.then(async () => {
    try {
      port.postMessage(await handle(request));
    } catch (error) {
      port.postMessage({
        requestId: request.requestId,
        ok: false,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      });
    }
  });
});
