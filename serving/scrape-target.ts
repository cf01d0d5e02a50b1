import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** The folder under the data directory where each sluice process announces its /metrics to Prometheus. */
export const SCRAPE_TARGETS_DIR = 'prometheus';

/** One entry of Prometheus' file-based service discovery (`file_sd_configs`): targets and their labels. */
export interface FileSdGroup {
  readonly targets: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

export interface ScrapeTarget {
  readonly file: string;
  remove(): Promise<void>;
}

/**
 * The address Prometheus scrapes: the ops server's, with a wildcard bind address replaced by the
 * advertised host (SLUICE_METRICS_ADVERTISED_HOST) or this machine's name.
 */
export function scrapeAddress(opsUrl: string, advertisedHost?: string): string {
  const url = new URL(opsUrl);
  const wildcard = url.hostname === '0.0.0.0' || url.hostname === '[::]';
  const host = advertisedHost ?? (wildcard ? os.hostname() : url.hostname);
  return `${host}:${url.port}`;
}

/** The file-SD group of one process: job `sluice`, labelled with what it runs and its pid. */
export function fileSdGroup(address: string, service: string, pid: number = process.pid): FileSdGroup[] {
  return [{ targets: [address], labels: { job: 'sluice', sluice_service: service, sluice_pid: String(pid) } }];
}

/**
 * Writes `<dataDir>/prometheus/<service>-<pid>.json` for a Prometheus started from
 * deploy/prometheus/prometheus.yml (it watches the folder). Written whole (temporary file, then
 * rename), so Prometheus never reads half a file; `remove` takes the process out of the targets.
 */
export async function writeScrapeTarget(dataDir: string, service: string, address: string): Promise<ScrapeTarget> {
  const dir = path.join(dataDir, SCRAPE_TARGETS_DIR);
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, `${service}-${process.pid}.json`);
  const staging = path.join(dir, `.${randomUUID()}.tmp`);
  await fs.writeFile(staging, `${JSON.stringify(fileSdGroup(address, service), null, 2)}\n`);
  await fs.rename(staging, file);
  return { file, remove: () => fs.rm(file, { force: true }) };
}
