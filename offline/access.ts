import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SqlLimits } from '../common/config.js';

/**
 * ClickHouse's own access control for embedded chDB.
 *
 * chDB authenticates every connection as the one user `default` (its client hard-codes it), so
 * the engine cannot tell sluice's connections from users' by user name. What it does enforce per
 * connection, and what sluice relies on:
 *
 * - **Grants of `default`** (users.xml, loaded through `--config-file` when the engine starts):
 *   an allow-list of exactly what sluice's own work needs. No source privileges (FILE, URL,
 *   REMOTE, S3, MYSQL, ... — so `file()`, `url()`, `remote()`, `s3()`, `executable()` tables and
 *   `INSERT INTO FUNCTION` are denied, as is reading paths through the default database's file
 *   system overlay), no SYSTEM, no KILL QUERY of other users, no INTROSPECTION, no access
 *   management, no CREATE FUNCTION / DICTIONARY / VIEW.
 * - **Settings of a connection** (`--readonly=1` and the limits, given when the connection opens):
 *   readonly=1 refuses every write, DDL and table function, and makes every setting — the limits
 *   included — unchangeable by the queries of that connection (`SETTINGS`, `SET`).
 * - **`priority`**: sluice's connections run at priority 1, users' at 10, so a user query yields
 *   to the sink's inserts inside the engine.
 */
export const ENGINE_GRANTS = [
  'SHOW',
  'SELECT',
  'INSERT',
  'ALTER ADD COLUMN',
  'CREATE DATABASE',
  'CREATE TABLE',
  'DROP TABLE',
  'TRUNCATE',
  'OPTIMIZE',
] as const;

/** Priority of sluice's own connections (1 is the highest ClickHouse knows; 0 would mean "none"). */
export const INTERNAL_PRIORITY = 1;
/** Priority of users' connections: paused while a higher-priority (sluice) query runs. */
export const USER_PRIORITY = 10;

const USERS_XML = (grants: readonly string[]): string => `<clickhouse>
  <!-- Written by sluice (offline/access.ts) each time the embedded store opens; edits are overwritten. -->
  <profiles>
    <default></default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <grants>
        <query>GRANT ${grants.join(', ')} ON *.*</query>
      </grants>
    </default>
  </users>
  <quotas>
    <default></default>
  </quotas>
</clickhouse>
`;

const CONFIG_XML = (usersFile: string): string => `<clickhouse>
  <!-- Written by sluice (offline/access.ts) each time the embedded store opens; edits are overwritten. -->
  <users_config>${escapeXml(usersFile)}</users_config>
</clickhouse>
`;

/**
 * Writes the engine's configuration (config.xml naming users.xml) into `dir` and returns the
 * config file for `--config-file`. Synchronous: it must exist before the first connection opens.
 */
export function writeAccessConfigSync(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const users = path.join(dir, 'users.xml');
  const config = path.join(dir, 'config.xml');
  writeFileSync(users, USERS_XML(ENGINE_GRANTS), { mode: 0o600 });
  writeFileSync(config, CONFIG_XML(users), { mode: 0o600 });
  return config;
}

/** The command-line settings of a connection that runs users' statements. */
export function userConnectionArgs(limits: SqlLimits, options: { readonly readonly: boolean }): string[] {
  return [
    ...(options.readonly ? ['--readonly=1'] : []),
    `--max_execution_time=${limits.maxExecutionTimeS}`,
    '--timeout_overflow_mode=throw',
    `--max_result_rows=${limits.maxResultRows}`,
    `--max_result_bytes=${limits.maxResultBytes}`,
    '--result_overflow_mode=throw',
    `--max_memory_usage=${limits.maxMemoryBytes}`,
    `--priority=${USER_PRIORITY}`,
  ];
}

function escapeXml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}
