import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import type { Browser } from 'puppeteer-core';
import { afterAll, describe, expect, it } from 'vitest';
import type { StackState } from '../../app/stack.js';
import { PROJECT_ROOT } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import { createKafka } from '../../kafka/index.js';
import { waitUntil } from '../helpers.js';
import { cleanEnv, DEMO_TOPOLOGY, spawnSluice, waitForOutput, type SluiceProcess } from '../cli/sluice-process.js';
import { launchChromium } from './browser.js';

/** Where the test leaves its screenshot (git-ignored; CI keeps it as an artifact). */
export const ARTIFACTS = path.join(PROJECT_ROOT, '.artifacts');

/**
 * `sluice up --demo` with the built-in dashboard opened in headless Chromium: once the demo's
 * history is in and scored (live rate 0, so every number holds still), the numbers the page shows
 * are those of /metrics and of SQL on the SQL endpoint; the page logs no console error.
 */
describe('the dashboard page', () => {
  let proc: SluiceProcess | undefined;
  let browser: Browser | undefined;
  let dataDir: string | undefined;

  afterAll(async () => {
    await browser?.close();
    if (proc) {
      await fs.mkdir(ARTIFACTS, { recursive: true });
      await fs.writeFile(path.join(ARTIFACTS, 'dashboard-sluice.log'), `${proc.stdout()}\n${proc.stderr()}`);
    }
    if (proc && proc.child.exitCode === null) {
      proc.child.kill('SIGINT');
      const timer = setTimeout(() => proc?.child.kill('SIGKILL'), 60_000);
      await proc.exited;
      clearTimeout(timer);
    }
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('shows the stages, lag, model versions and prediction counts of /metrics and SQL', async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-dashboard-'));
    proc = spawnSluice(
      ['up', '--demo', '--topology', DEMO_TOPOLOGY, '--history', '3000', '--rate', '0'],
      cleanEnv({ SLUICE_DATA_DIR: dataDir, SLUICE_TOPOLOGY: undefined }),
    );
    await waitForOutput(proc, /sluice is up/, 180_000);
    expect(proc.stdout()).toMatch(/dashboard +http:\/\/127\.0\.0\.1:\d+\//);
    const stack = JSON.parse(await fs.readFile(path.join(dataDir, 'stack.json'), 'utf8')) as StackState;
    await waitForOutput(proc, /model fraud v\d+ trained/, 300_000);

    const sql = async (statement: string): Promise<string> => {
      const response = await fetch(`${stack.endpoints.clickhouse}/?query=${encodeURIComponent(statement)}`);
      expect(response.status, await response.clone().text()).toBe(200);
      return (await response.text()).trim();
    };
    const metrics = async (): Promise<Map<string, { labels: Record<string, string>; value: number }[]>> => {
      const text = await (await fetch(stack.endpoints.metrics)).text();
      return new Map(
        parsePrometheusTextFormat(text).map((family) => [
          family.name,
          family.metrics.map((sample) => ({ labels: { ...(sample.labels ?? {}) }, value: Number(sample.value) })),
        ]),
      );
    };
    const sum = (scrape: Awaited<ReturnType<typeof metrics>>, name: string, match: Record<string, string> = {}): number =>
      (scrape.get(name) ?? [])
        .filter((sample) => Object.entries(match).every(([label, value]) => sample.labels[label] === value))
        .reduce((total, sample) => total + sample.value, 0);

    // A few live transactions after the model is in, so that the model (not a fallback) scores some.
    const kafka = createKafka({ brokers: [stack.endpoints.kafka], clientId: 'dashboard-test', logger: silentLogger() });
    const producer = kafka.producer();
    await producer.connect();
    const now = Date.now();
    await producer.send({
      topic: 'raw.transactions',
      messages: Array.from({ length: 60 }, (_, i) => ({
        key: `card-dash-${i % 12}`,
        value: JSON.stringify({
          transaction_id: `dash-${i}`,
          card_id: `card-dash-${i % 12}`,
          merchant_id: `m${i % 7}`,
          merchant_category: '5411',
          amount: 5 + ((i * 37) % 400),
          currency: 'EUR',
          country: 'NL',
          timestamp: now - (60 - i) * 1_000,
        }),
      })),
    });
    await producer.disconnect();

    // Quiet: every event scored and stored, nothing in flight, no lag.
    let quiet = '';
    await waitUntil(
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        const scrape = await metrics();
        const state = [
          sum(scrape, 'sluice_predictions_total'),
          await sql('SELECT count() FROM predictions_fraud FINAL'),
          sum(scrape, 'sluice_consumer_lag_records'),
          sum(scrape, 'sluice_in_flight_records'),
          sum(scrape, 'sluice_records_in_total'),
        ].join('/');
        const settled = state === quiet && Number(state.split('/')[0]) > 0 && state.split('/')[0] === state.split('/')[1];
        quiet = state;
        return settled;
      },
      240_000,
      'the demo history to be scored and stored',
    );

    const quietAt = Date.now();
    // Counters only grow: what the page shows lies between a scrape before its first poll and one
    // after it was read (a periodic record may still arrive after the quiet: the page then shows
    // some number in between, not necessarily either scrape's).
    const early = await metrics();
    browser = await launchChromium();
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error instanceof Error ? error.message : String(error)}`));
    page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));
    page.on('response', (response) => {
      if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
    });
    await page.goto(stack.endpoints.dashboard ?? '', { waitUntil: 'load' });
    // Live: the page has polled twice (rates need two snapshots), and shows SQL read after all was quiet.
    await page.waitForFunction(
      `Number(document.body.dataset.snapshots ?? 0) >= 2 && Number(document.body.dataset.sqlAt ?? 0) > ${quietAt}`,
      {
        timeout: 60_000,
      },
    );

    const text = (selector: string): Promise<string> =>
      page
        .$eval(selector, (element: { readonly textContent: string | null }) => (element.textContent ?? '').trim())
        .catch(() => `missing ${selector}`);
    const number = async (selector: string): Promise<number> => Number((await text(selector)).replace(/[^0-9.-]/g, ''));

    const stages = [...new Set((early.get('sluice_records_in_total') ?? []).map((sample) => sample.labels.stage ?? ''))];
    expect(stages).toContain('pipeline');
    expect(stages).toContain('sink');
    const shown = new Map<string, number>();
    for (const stage of stages)
      for (const field of ['recordsIn', 'recordsOut', 'lag'])
        shown.set(`${stage}:${field}`, await number(`[data-stage-field="${stage}:${field}"]`));
    const rawTotal = await number('[data-node="topic:raw.transactions"] [data-field="total"]');
    const predictedShown = await number('[data-model-field="fraud:predicted"]');
    const scrape = await metrics();
    const between = (value: number | undefined, name: string, match: Record<string, string>, label: string): void => {
      const low = sum(early, name, match);
      const high = sum(scrape, name, match);
      expect(value, `${label}: ${low} before the page, ${high} after it`).toBeGreaterThanOrEqual(low);
      expect(value, `${label}: ${low} before the page, ${high} after it`).toBeLessThanOrEqual(high);
    };
    for (const stage of stages) {
      expect(sum(early, 'sluice_records_in_total', { stage }), `records in of ${stage}`).toBeGreaterThan(0);
      between(shown.get(`${stage}:recordsIn`), 'sluice_records_in_total', { stage }, `records in of ${stage}`);
      between(shown.get(`${stage}:recordsOut`), 'sluice_records_out_total', { stage }, `records out of ${stage}`);
      // Lag goes up and down: at most what was behind after the page plus what arrived meanwhile.
      const arrived = sum(scrape, 'sluice_records_in_total', { stage }) - sum(early, 'sluice_records_in_total', { stage });
      const lag = shown.get(`${stage}:lag`);
      expect(lag, `lag of ${stage}`).toBeGreaterThanOrEqual(0);
      expect(lag, `lag of ${stage}`).toBeLessThanOrEqual(
        Math.max(sum(early, 'sluice_consumer_lag_records', { stage }), sum(scrape, 'sluice_consumer_lag_records', { stage })) + arrived,
      );
    }
    // The dataflow's boxes: records of each raw topic, and the ingest box's total of events written.
    between(rawTotal, 'sluice_records_in_total', { topic: 'raw.transactions' }, 'raw.transactions');
    expect(await text('[data-node="topic:raw.transactions"] [data-field="rate"]')).toMatch(/^\d+(\.\d)?\/s$/);

    // Models: the version serving, the registry's versions and aliases, prediction counts.
    between(predictedShown, 'sluice_predictions_total', { model: 'fraud' }, 'predictions');
    const stored = Number(await sql('SELECT count() FROM predictions_fraud FINAL'));
    expect(await number('[data-model-field="fraud:stored"]')).toBe(stored);
    // The version serving is the one whose scores are stored, and the registry's versions are listed.
    const scoredBy = (await sql('SELECT DISTINCT model_version FROM predictions_fraud WHERE fallback_reason IS NULL')).split('\n');
    expect(scoredBy).toHaveLength(1);
    expect(await text('[data-model-field="fraud:serving"]')).toBe(`v${scoredBy[0]}`);
    expect(await text(`[data-model-aliases="fraud:${scoredBy[0]}"]`)).toContain('champion');
    const versions = (await sql("SELECT version FROM registry_models FINAL WHERE name = 'fraud' ORDER BY version")).split('\n');
    expect(versions).toContain(scoredBy[0]);
    for (const version of versions) expect(await text(`[data-model-version="fraud:${version}"]`)).toBe(`v${version}`);
    const featureRows = Number(await sql('SELECT count() FROM features_card_txn_1h'));
    expect(await number('[data-view-field="card_txn_1h:rows"]')).toBe(featureRows);

    // The traffic split of the champion, and a score histogram drawn by uPlot.
    expect(await page.$('#deployments .role-CHAMPION')).not.toBeNull();
    expect(await page.$('#histogram canvas')).not.toBeNull();
    // Alerts: monitoring runs in the stack (a fallback-rate alert fires while no model is trained
    // yet), so the panel holds alerts or, where none exist, says what will appear.
    expect(await text('#alerts')).toMatch(/appear here|FIRING|RESOLVED/);

    await fs.mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    expect(problems).toEqual([]);
  });
});
