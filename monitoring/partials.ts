import { BinaryReader, BinaryWriter } from './codec.js';

/**
 * The frame of a partial result on its way from a partition's processor to the merger: a JSON
 * header (what it is: kind, model, window, partition, ...) and binary bodies (summaries). The
 * merger's topic is internal to the monitoring stage; its records are written and read in one
 * Kafka transaction with the state they come from.
 */
const MAGIC = 0x31545250; // 'PRT1'

export function encodeFrame(header: object, bodies: readonly Buffer[] = []): Buffer {
  const writer = new BinaryWriter().u32(MAGIC).string(JSON.stringify(header)).u32(bodies.length);
  for (const body of bodies) writer.bytes(body);
  return writer.finish();
}

export function decodeFrame(buffer: Buffer): { readonly header: unknown; readonly bodies: readonly Buffer[] } {
  const reader = new BinaryReader(buffer);
  if (reader.u32() !== MAGIC) throw new RangeError('not a monitoring partial');
  const header = JSON.parse(reader.string()) as unknown;
  const count = reader.u32();
  const bodies: Buffer[] = [];
  for (let index = 0; index < count; index++) bodies.push(reader.bytes());
  if (!reader.done) throw new RangeError('trailing bytes after a monitoring partial');
  return { header, bodies };
}
