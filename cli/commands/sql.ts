import { ConfigError } from '../../common/errors.js';
import { runningStack } from '../../app/stack-file.js';
import type { ConfigContext } from '../action.js';

interface SqlOptions {
  readonly format?: string;
}

/**
 * `sluice sql "<query>"`: runs a query on the running stack's ClickHouse and prints the result
 * (a table by default: PrettyCompact). Errors print ClickHouse's own message and exit 1.
 */
export async function sqlCommand({ config }: ConfigContext, query: string, options: SqlOptions = {}): Promise<number> {
  const url = (await runningStack(config.dataDir))?.endpoints.clickhouse;
  if (!url) throw new ConfigError(`no ClickHouse to query: start \`sluice up\` (data directory ${config.dataDir})`);
  const format = options.format ?? 'PrettyCompact';
  let response: Response;
  try {
    const token = config.auth.sql[0];
    response = await fetch(`${url}/?default_format=${encodeURIComponent(format)}`, {
      method: 'POST',
      body: query,
      ...(token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } }),
    });
  } catch (cause) {
    throw new ConfigError(`ClickHouse at ${url} does not answer: ${(cause as Error).message}`, { cause });
  }
  const text = await response.text();
  if (!response.ok) {
    process.stderr.write(`sluice: ${text.trim()}\n`);
    return 1;
  }
  process.stdout.write(text);
  return 0;
}
