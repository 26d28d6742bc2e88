import { mulberry32 } from '../core/prng.js'

/**
 * A tiny ONNX model, written byte by byte (protobuf) so that nothing is downloaded: a two-layer
 * classifier `probs = softmax(relu(x · W1 + b1) · W2 + b2)` with input `x` float32 [1, 4] and output
 * `probs` float32 [1, 3], its weights drawn from a seeded generator. For tests, benchmarks and the
 * docs' examples of the `onnx` job kind; any model onnxruntime runs on the CPU works the same way.
 */

/** Protobuf wire types. */
const VARINT = 0
const LEN = 2

function varint(n: number | bigint): number[] {
  let v = BigInt(n)
  const out: number[] = []
  do {
    let byte = Number(v & 0x7fn)
    v >>= 7n
    if (v > 0n) byte |= 0x80
    out.push(byte)
  } while (v > 0n)
  return out
}

const key = (field: number, wire: number) => varint((field << 3) | wire)
const bytesField = (field: number, bytes: readonly number[] | Uint8Array) => [
  ...key(field, LEN),
  ...varint(bytes.length),
  ...bytes,
]
const stringField = (field: number, s: string) => bytesField(field, new TextEncoder().encode(s))
const intField = (field: number, n: number) => [...key(field, VARINT), ...varint(n)]

/** TensorProto.DataType FLOAT. */
const FLOAT = 1

function tensor(name: string, dims: number[], values: Float32Array): number[] {
  return [
    ...dims.flatMap((d) => intField(1, d)),
    ...intField(2, FLOAT),
    ...stringField(8, name),
    ...bytesField(9, new Uint8Array(values.buffer, values.byteOffset, values.byteLength)),
  ]
}

function valueInfo(name: string, dims: number[]): number[] {
  const shape = dims.flatMap((d) => bytesField(1, intField(1, d)))
  const tensorType = [...intField(1, FLOAT), ...bytesField(2, shape)]
  return [...stringField(1, name), ...bytesField(2, bytesField(1, tensorType))]
}

function node(op: string, inputs: string[], outputs: string[], attributes: number[][] = []): number[] {
  return [
    ...inputs.flatMap((i) => stringField(1, i)),
    ...outputs.flatMap((o) => stringField(2, o)),
    ...stringField(4, op),
    ...attributes.flatMap((a) => bytesField(5, a)),
  ]
}

/** The classifier's weights for a seed (float32, as the model stores them). */
function tinyWeights(seed: number) {
  const random = mulberry32(seed)
  const weights = (n: number) => Float32Array.from({ length: n }, () => ((random() % 2000) - 1000) / 1000)
  return { W1: weights(32), b1: weights(8), W2: weights(24), b2: weights(3) }
}

/** What the classifier computes for one input of 4 values, in float64 (a reference for tests). */
export function tinyClassifierReference(x: readonly number[], seed = 7): number[] {
  const { W1, b1, W2, b2 } = tinyWeights(seed)
  const h = Array.from({ length: 8 }, (_, j) =>
    Math.max(
      0,
      x.reduce((sum, v, i) => sum + v * (W1[i * 8 + j] as number), b1[j] as number),
    ),
  )
  const logits = Array.from({ length: 3 }, (_, k) =>
    h.reduce((sum, v, j) => sum + v * (W2[j * 3 + k] as number), b2[k] as number),
  )
  const top = Math.max(...logits)
  const exp = logits.map((l) => Math.exp(l - top))
  const total = exp.reduce((a, b) => a + b, 0)
  return exp.map((e) => e / total)
}

/** The classifier's bytes (a valid ONNX model, IR version 8, opset 13), the same for the same seed. */
export function tinyClassifierModel(seed = 7): Uint8Array {
  const w = tinyWeights(seed)
  const graph = [
    ...bytesField(1, node('MatMul', ['x', 'W1'], ['h1'])),
    ...bytesField(1, node('Add', ['h1', 'b1'], ['h2'])),
    ...bytesField(1, node('Relu', ['h2'], ['h3'])),
    ...bytesField(1, node('MatMul', ['h3', 'W2'], ['h4'])),
    ...bytesField(1, node('Add', ['h4', 'b2'], ['logits'])),
    // Softmax over the last axis (AttributeProto: name, i, type INT = 2).
    ...bytesField(
      1,
      node(
        'Softmax',
        ['logits'],
        ['probs'],
        [[...stringField(1, 'axis'), ...intField(3, 1), ...intField(20, 2)]],
      ),
    ),
    ...stringField(2, 'tiny-classifier'),
    ...bytesField(5, tensor('W1', [4, 8], w.W1)),
    ...bytesField(5, tensor('b1', [8], w.b1)),
    ...bytesField(5, tensor('W2', [8, 3], w.W2)),
    ...bytesField(5, tensor('b2', [3], w.b2)),
    ...bytesField(11, valueInfo('x', [1, 4])),
    ...bytesField(12, valueInfo('probs', [1, 3])),
  ]
  return new Uint8Array([
    ...intField(1, 8),
    ...stringField(2, 'meshwork'),
    ...bytesField(7, graph),
    ...bytesField(8, [...stringField(1, ''), ...intField(2, 13)]),
  ])
}
