/**
 * NumPy `.npy` files of little-endian float32 values (format 1.0), the arrays of the JAX trainer's
 * file contract (models/jax/CONTRACT.md, section 2): a magic string, a version, a header naming
 * dtype, order and shape, padded so the data starts at a multiple of 64 bytes, then the values row
 * after row.
 */
export interface NpyArray {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export class NpyFormatError extends Error {}

/** A .npy file holding `values` with `shape` (whose product must be values.length). */
export function encodeNpy(values: Float32Array, shape: readonly number[]): Uint8Array {
  const size = shape.reduce((product, dimension) => product * dimension, 1);
  if (size !== values.length) throw new NpyFormatError(`shape (${shape.join(', ')}) holds ${size} values, got ${values.length}`);
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const text = `{'descr': '<f4', 'fortran_order': False, 'shape': ${dims}, }`;
  // magic (6) + version (2) + length (2) + header + '\n', padded with spaces to a multiple of 64
  const padding = (64 - ((10 + text.length + 1) % 64)) % 64;
  const header = `${text}${' '.repeat(padding)}\n`;
  const out = new Uint8Array(10 + header.length + values.byteLength);
  out.set(MAGIC);
  out.set([1, 0], 6);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  const data = new DataView(out.buffer, 10 + header.length);
  // Explicitly little-endian, whatever the host's byte order.
  for (let index = 0; index < values.length; index++) data.setFloat32(index * 4, values[index] ?? 0, true);
  return out;
}

/** Reads a float32 .npy file (versions 1–3, C order, little-endian). */
export function decodeNpy(bytes: Uint8Array): NpyArray {
  if (bytes.length < 10 || MAGIC.some((byte, index) => bytes[index] !== byte)) throw new NpyFormatError('not a .npy file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = (major === 1 ? 10 : 12) + headerLength;
  const header = new TextDecoder().decode(bytes.subarray(major === 1 ? 10 : 12, start));
  if (!/'descr':\s*'<f4'/.test(header)) throw new NpyFormatError(`only little-endian float32 is read, header: ${header.trim()}`);
  if (!/'fortran_order':\s*False/.test(header)) throw new NpyFormatError('only C order is read');
  const match = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!match) throw new NpyFormatError(`no shape in header: ${header.trim()}`);
  const shape = (match[1] ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map(Number);
  const size = shape.reduce((product, dimension) => product * dimension, 1);
  if (bytes.length - start !== size * 4)
    throw new NpyFormatError(`shape (${shape.join(', ')}) needs ${size * 4} bytes, the file has ${bytes.length - start}`);
  const data = new Float32Array(size);
  const values = new DataView(bytes.buffer, bytes.byteOffset + start, size * 4);
  for (let index = 0; index < size; index++) data[index] = values.getFloat32(index * 4, true);
  return { shape, data };
}
