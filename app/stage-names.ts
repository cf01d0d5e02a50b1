/**
 * The names of the stages `sluice run <stage>` starts, without loading the stages themselves (so
 * that the CLI's help stays instant). `stages.ts` defines one stage per name.
 */
export const STAGE_NAMES: readonly string[] = ['ingest', 'features'];
