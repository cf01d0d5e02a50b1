import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../common/config.js';
import type { OfflineStore } from '../../offline/index.js';
import type { TrafficShare } from '../../models/rollout.js';
import { codeBlocks } from '../topology/markdown-commands.js';

/** A traffic answer as one line: `3 CHAMPION 0.75, 4 CANARY 0.25` ('' when no version served). */
export function trafficLine(shares: readonly Pick<TrafficShare, 'version' | 'role' | 'share'>[]): string {
  return shares.map((share) => `${share.version} ${share.role} ${share.share}`).join(', ');
}

/** The README's query on registry_deployments (under "## Models"), as written. */
export const README_HISTORY_SQL: string = (() => {
  const block = codeBlocks(readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8'), 'Models').find(
    (candidate) => candidate.lang === 'sql' && candidate.text.includes('registry_deployments'),
  );
  if (!block) throw new Error('README.md has no SQL on registry_deployments under "## Models"');
  return block.text;
})();

/** The README's query run at `at` (its time literal replaced), its one row read as a traffic line. */
export async function historyFromSql(store: OfflineStore, at: Date): Promise<string> {
  const sql = README_HISTORY_SQL.replace(/at <= '[^']+'/, `at <= '${at.toISOString()}'`);
  if (sql === README_HISTORY_SQL) throw new Error(`the README's history query has no time literal to replace: ${README_HISTORY_SQL}`);
  const rows = await store.query<{ champion_version: number; champion_share: number; canary_version: number | null; canary_share: number }>(
    sql,
  );
  if (rows.length > 1) throw new Error(`the README's history query gave ${rows.length} rows, not one`);
  const row = rows[0];
  if (!row) return '';
  return trafficLine(
    [
      { version: row.champion_version, role: 'CHAMPION' as const, share: row.champion_share },
      { version: row.canary_version ?? 0, role: 'CANARY' as const, share: row.canary_share },
    ].filter((share) => share.share > 0),
  );
}

/** `sluice models history <model> --at T` output (`<time>  v3 CHAMPION 75.0%, v4 CANARY 25.0%  (<record>)`) as a traffic line. */
export function historyFromCli(stdout: string, at: Date): string {
  const [time, shares] = stdout.trimEnd().split('  ');
  if (time !== at.toISOString()) throw new Error(`sluice models history answered for ${time}, not ${at.toISOString()}: ${stdout}`);
  if (shares === 'no version served') return '';
  return trafficLine(
    (shares ?? '').split(', ').map((part) => {
      const match = /^v(\d+) (CHAMPION|CANARY|SHADOW|FALLBACK) (\d+(?:\.\d+)?)%$/.exec(part);
      if (!match) throw new Error(`"${part}" is not a share of sluice models history: ${stdout}`);
      return { version: Number(match[1]), role: match[2] as TrafficShare['role'], share: Number(match[3]) / 100 };
    }),
  );
}
