import { waitUntil } from '../helpers.js';
import type { SluiceProcess } from '../cli/sluice-process.js';

export { cleanEnv, runSluice, spawnSluice } from '../cli/sluice-process.js';

export async function waitUntilStderr(proc: SluiceProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  await waitUntil(
    () => pattern.test(proc.stderr()),
    timeoutMs,
    `sluice to say ${pattern} on stderr (it said: ${proc.stderr().slice(-500)})`,
  );
}
