import { ConfigError } from '../../common/errors.js';
import type { ConfigContext } from '../action.js';
import { findCluster } from '../cluster.js';
import { parseTime } from '../range.js';

/** `sluice features get <view> <entity> [--at T]`: an online lookup through the running stack. */
export async function getFeaturesCommand(
  context: ConfigContext,
  view: string,
  entity: string,
  options: { readonly at?: string } = {},
): Promise<number> {
  const at = parseTime(options.at, '--at');
  const cluster = await findCluster(context.config);
  const url = cluster.stack?.endpoints.features;
  if (!url) throw new ConfigError('no online store to ask: start `sluice up`');
  const response = await fetch(`${url}/${encodeURIComponent(view)}/${encodeURIComponent(entity)}${at === undefined ? '' : `?at=${at}`}`);
  const text = await response.text();
  (response.ok ? process.stdout : process.stderr).write(`${text}\n`);
  return response.ok ? 0 : 1;
}
