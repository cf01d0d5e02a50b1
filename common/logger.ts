import pino, { type Logger, type LevelWithSilent } from 'pino';
import { activeTraceIds } from './tracing.js';

export type { Logger } from 'pino';

/**
 * The process's root logger: JSON lines on stderr (stdout is kept for what commands print).
 * Stages and modules take a child of it: `logger.child({ stage: 'ingest' })`. A line logged
 * inside a traced record or request carries its trace_id and span_id.
 */
export function createLogger(level: LevelWithSilent, name = 'sluice'): Logger {
  return pino({ name, level, base: { pid: process.pid }, mixin: activeTraceIds }, pino.destination({ fd: 2, sync: true }));
}

/** A logger that drops everything, for tests and library defaults. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
