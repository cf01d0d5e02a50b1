import { createRequire } from 'node:module';
import type { onnx as OnnxNamespace } from 'onnx-proto';
import type * as Ort from 'onnxruntime-node';

// Both packages are CommonJS; their values come through require under Node's ESM loader.
const require = createRequire(import.meta.url);
const { onnx } = require('onnx-proto') as { onnx: typeof OnnxNamespace };
const ort = require('onnxruntime-node') as typeof Ort;

/**
 * A scoring network: standardization of the inputs, dense layers, a sigmoid score. Trainers
 * produce it; `toOnnx` writes it as an ONNX graph (Sub → Div → Gemm (→ Relu → Gemm) → Sigmoid)
 * that onnxruntime-node runs; missing inputs are filled with the training mean before scoring.
 */
export interface DenseLayer {
  readonly inputs: number;
  readonly outputs: number;
  /** Row-major [inputs][outputs], as tfjs kernels are. */
  readonly weights: Float32Array;
  readonly bias: Float32Array;
  readonly activation: 'relu' | 'sigmoid';
}

export interface ScoringNetwork {
  readonly features: readonly string[];
  readonly mean: Float32Array;
  readonly std: Float32Array;
  readonly layers: readonly DenseLayer[];
}

const FLOAT = 1; // onnx.TensorProto.DataType.FLOAT

function tensor(name: string, dims: number[], values: Float32Array): OnnxNamespace.ITensorProto {
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

function valueInfo(name: string, dims: (number | string)[]): OnnxNamespace.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: { elemType: FLOAT, shape: { dim: dims.map((dim) => (typeof dim === 'string' ? { dimParam: dim } : { dimValue: dim })) } },
    },
  };
}

/** The network as ONNX bytes (opset 13): input `features` [batch, F], output `score` [batch, 1]. */
export function toOnnx(network: ScoringNetwork, modelName: string): Uint8Array {
  const width = network.features.length;
  const nodes: OnnxNamespace.INodeProto[] = [
    { opType: 'Sub', input: ['features', 'mean'], output: ['centered'], name: 'center' },
    { opType: 'Div', input: ['centered', 'std'], output: ['h0'], name: 'scale' },
  ];
  const initializers = [tensor('mean', [1, width], network.mean), tensor('std', [1, width], network.std)];
  network.layers.forEach((layer, index) => {
    initializers.push(tensor(`w${index}`, [layer.inputs, layer.outputs], layer.weights), tensor(`b${index}`, [layer.outputs], layer.bias));
    nodes.push({ opType: 'Gemm', input: [`h${index}`, `w${index}`, `b${index}`], output: [`z${index}`], name: `dense${index}` });
    const out = index === network.layers.length - 1 ? 'score' : `h${index + 1}`;
    nodes.push({
      opType: layer.activation === 'relu' ? 'Relu' : 'Sigmoid',
      input: [`z${index}`],
      output: [out],
      name: `${layer.activation}${index}`,
    });
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'sluice',
    producerVersion: '0.1.0',
    opsetImport: [{ domain: '', version: 13 }],
    docString: `features: ${network.features.join(', ')}`,
    graph: {
      name: modelName,
      node: nodes,
      initializer: initializers,
      input: [valueInfo('features', ['batch', width])],
      output: [valueInfo('score', ['batch', 1])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Rows of possibly missing values → a float32 batch, missing filled with the training mean. */
export function toBatch(network: ScoringNetwork, rows: readonly (readonly (number | null)[])[]): Float32Array {
  const width = network.features.length;
  const batch = new Float32Array(rows.length * width);
  rows.forEach((row, rowIndex) => {
    for (let column = 0; column < width; column++) {
      const value = row[column];
      batch[rowIndex * width + column] =
        value === null || value === undefined || !Number.isFinite(value) ? (network.mean[column] ?? 0) : value;
    }
  });
  return batch;
}

/** An onnxruntime-node session over an ONNX model of `width` inputs. */
export class OnnxScorer {
  private constructor(
    private readonly session: Ort.InferenceSession,
    readonly width: number,
  ) {}

  static async load(bytes: Uint8Array, width: number): Promise<OnnxScorer> {
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    return new OnnxScorer(session, width);
  }

  /** Scores a batch (rows × width, row-major). */
  async score(batch: Float32Array): Promise<Float32Array> {
    const rows = batch.length / this.width;
    const output = await this.session.run({ features: new ort.Tensor('float32', batch, [rows, this.width]) });
    const score = output.score;
    if (!score) throw new Error('the model has no "score" output');
    return score.data as Float32Array;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
