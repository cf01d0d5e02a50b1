import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The librdkafka-based client the benchmarks compare kafkajs with (librdkafka 2.15.1 inside). */
export const RDKAFKA_PACKAGE = '@confluentinc/kafka-javascript';
export const RDKAFKA_VERSION = '1.10.1';

/**
 * The folder of @confluentinc/kafka-javascript, installed on first use into the cache folder (not a
 * dependency of sluice: only `npm run bench -- clients` loads it). Its install script downloads a
 * prebuilt binary from GitHub where GitHub is reachable (librdkafka linked statically); where it is
 * not, as on our machines, it builds librdkafka from the sources in its package (about a minute on
 * 2 cores). `CKJS_LINKING=dynamic` makes that build use the system's OpenSSL and zlib: the default
 * static build downloads their sources from their own sites. Node's headers come from this Node's
 * own install (`nodedir`), not from nodejs.org.
 */
export async function rdkafkaModule(cacheDir: string): Promise<string> {
  const root = path.join(cacheDir, 'bench-rdkafka', RDKAFKA_VERSION);
  const module = path.join(root, 'node_modules', ...RDKAFKA_PACKAGE.split('/'));
  // The built binding (node-gyp makes build/Release before it compiles: not a sign of success).
  const binding = path.join(module, 'build', 'Release', 'confluent-kafka-javascript.node');
  if (existsSync(binding)) return module;
  await fs.mkdir(root, { recursive: true });
  await fs.writeFile(
    path.join(root, 'package.json'),
    JSON.stringify({
      name: 'bench-rdkafka',
      private: true,
      dependencies: { [RDKAFKA_PACKAGE]: RDKAFKA_VERSION },
      // Its install script builds the binding (npm 11 asks for the approval of each package's).
      allowScripts: { [RDKAFKA_PACKAGE]: true },
    }),
  );
  await run('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', `--nodedir=${path.resolve(process.execPath, '..', '..')}`], {
    cwd: root,
    env: { ...process.env, CKJS_LINKING: 'dynamic' },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 15 * 60_000,
  });
  if (!existsSync(binding)) throw new Error(`${RDKAFKA_PACKAGE} did not build in ${root}`);
  return module;
}
