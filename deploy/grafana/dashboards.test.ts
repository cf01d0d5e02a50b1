import { readdirSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parser } from '@prometheus-io/lezer-promql';
import { Ajv } from 'ajv';
import { createGenerator } from 'ts-json-schema-generator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../../common/metrics.js';
import { silentLogger } from '../../common/logger.js';
import demo from '../../examples/fraud/sluice.config.js';
import { registerKafkaClientMetrics } from '../../kafka/index.js';
import {
  ChdbEngine,
  EmbeddedOfflineStore,
  ensureTables,
  offlineTables,
  predictionsTable,
  serveSql,
  type SqlServer,
} from '../../offline/index.js';
import { offlineMetrics } from '../../offline/metrics.js';
import { inferenceMetrics } from '../../streams/inference/metrics.js';
import { stageMetrics } from '../../streams/runtime/index.js';

const DIR = path.dirname(fileURLToPath(import.meta.url));
const SCHEMA_SOURCE = path.join(
  path.dirname(fileURLToPath(import.meta.resolve('@grafana/schema/package.json'))),
  'dist/types/raw/dashboard/x/dashboard_types.gen.d.ts',
);

interface Target {
  readonly refId: string;
  readonly datasource: { readonly type: string; readonly uid: string };
  readonly expr?: string;
  readonly rawSql?: string;
}
interface Panel {
  readonly title: string;
  readonly datasource: { readonly type: string; readonly uid: string };
  readonly targets: readonly Target[];
}
interface Dashboard {
  readonly uid: string;
  readonly schemaVersion: number;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly { readonly name: string; readonly query: string }[] };
}

const files = readdirSync(path.join(DIR, 'dashboards')).filter((name) => name.endsWith('.json'));
const dashboards = files.map((name) => ({ name, json: JSON.parse(readFileSync(path.join(DIR, 'dashboards', name), 'utf8')) as Dashboard }));
const datasources = readFileSync(path.join(DIR, 'provisioning', 'datasources', 'sluice.yml'), 'utf8');

/** Grafana's ClickHouse data source macros, as it expands them for a time range. */
function expandMacros(sql: string): string {
  return sql
    .replace(/\$__timeFilter\(([^)]+)\)/g, '$1 >= now() - INTERVAL 1 HOUR AND $1 <= now()')
    .replace(/\$__timeInterval\(([^)]+)\)/g, 'toStartOfInterval($1, INTERVAL 60 second)')
    .replace(/\$__fromTime/g, 'now() - INTERVAL 1 HOUR')
    .replace(/\$__toTime/g, 'now()');
}

/** Every metric name sluice registers (histograms with their series' suffixes). */
async function sluiceMetricNames(): Promise<Set<string>> {
  const registry = createMetricsRegistry();
  stageMetrics(registry);
  inferenceMetrics(registry);
  offlineMetrics(registry);
  registerKafkaClientMetrics(registry);
  const names = new Set<string>(['up']);
  for (const metric of await registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${metric.name}${suffix}`);
  }
  return names;
}

describe('the Grafana dashboards', () => {
  it('are the pipeline, feature store, models and monitoring, on the provisioned data sources', () => {
    expect(files.sort()).toEqual(['feature-store.json', 'models.json', 'monitoring.json', 'pipeline.json']);
    for (const { json } of dashboards) {
      for (const panel of json.panels) {
        expect(panel.targets.length, panel.title).toBeGreaterThan(0);
        for (const target of panel.targets) expect(datasources, `${json.uid}: ${panel.title}`).toContain(`uid: ${target.datasource.uid}`);
      }
    }
  });

  it('validate against the dashboard schema of the version they declare', { timeout: 60_000 }, async () => {
    const { defaultDashboard } = await import('@grafana/schema');
    const schema = createGenerator({
      path: SCHEMA_SOURCE,
      type: 'Dashboard',
      skipTypeCheck: true,
      additionalProperties: false,
    }).createSchema('Dashboard');
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    for (const { name, json } of dashboards) {
      expect(json.schemaVersion, `${name} declares the schema version of @grafana/schema`).toBe(defaultDashboard.schemaVersion);
      expect(validate(json) ? [] : validate.errors, name).toEqual([]);
    }
    // The check can fail: a panel with an unknown property does not validate.
    const broken = { ...dashboards[0]!.json, panels: [{ ...dashboards[0]!.json.panels[0], colour: 'red' }] };
    expect(validate(broken)).toBe(false);
  });

  it('query Prometheus with PromQL that parses and names only metrics sluice exports', async () => {
    const known = await sluiceMetricNames();
    let checked = 0;
    for (const { json } of dashboards) {
      for (const panel of json.panels) {
        for (const target of panel.targets.filter((candidate) => candidate.datasource.type === 'prometheus')) {
          const expr = target.expr ?? '';
          const tree = parser.parse(expr);
          const errors: string[] = [];
          const metrics: string[] = [];
          tree.iterate({
            enter: (node) => {
              if (node.type.isError) errors.push(`at ${node.from}: ${expr.slice(node.from, node.from + 20)}`);
              if (node.name === 'Identifier' && node.node.parent?.name === 'VectorSelector') metrics.push(expr.slice(node.from, node.to));
            },
          });
          expect(errors, `${json.uid}: ${panel.title}: ${expr}`).toEqual([]);
          expect(metrics.length, `${json.uid}: ${panel.title}`).toBeGreaterThan(0);
          for (const metric of metrics) expect(known.has(metric), `${json.uid}: ${panel.title}: ${metric}`).toBe(true);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(10);
    // And the parser does report a broken expression.
    let broken = 0;
    parser.parse('sum by (stage (rate(').iterate({
      enter: (node) => {
        if (node.type.isError) broken++;
      },
    });
    expect(broken).toBeGreaterThan(0);
  });

  describe('ClickHouse queries on the SQL endpoint', () => {
    let dir: string;
    let engine: ChdbEngine;
    let server: SqlServer;

    // chDB allows one data directory per process: this file owns it (vitest runs files in separate processes).
    beforeAll(async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-grafana-'));
      engine = new ChdbEngine(path.join(dir, 'data'));
      await ensureTables(new EmbeddedOfflineStore(engine), [
        ...offlineTables({ sources: demo.sources, views: demo.views }),
        ...demo.models.map((model) => predictionsTable(model.name)),
      ]);
      server = await serveSql(engine, { host: '127.0.0.1', port: 0, readonly: true, logger: silentLogger() });
    }, 60_000);

    afterAll(async () => {
      await server.close();
      await engine.close();
      await fs.rm(dir, { recursive: true, force: true });
    });

    const run = async (sql: string): Promise<{ status: number; text: string }> => {
      const response = await fetch(`${server.url}/?default_format=TabSeparated`, { method: 'POST', body: sql });
      return { status: response.status, text: (await response.text()).trim() };
    };

    it('run without error, for every value of the dashboard variables', { timeout: 60_000 }, async () => {
      let checked = 0;
      for (const { json } of dashboards) {
        const values = new Map<string, string[]>();
        for (const variable of json.templating.list) {
          const answer = await run(variable.query);
          expect(answer.status, `${json.uid}: variable ${variable.name}: ${answer.text}`).toBe(200);
          values.set(
            variable.name,
            answer.text.split('\n').filter((line) => line !== ''),
          );
          expect(values.get(variable.name)?.length, `${json.uid}: variable ${variable.name} has values`).toBeGreaterThan(0);
        }
        for (const panel of json.panels) {
          for (const target of panel.targets.filter((candidate) => candidate.datasource.type === 'grafana-clickhouse-datasource')) {
            let statements = [expandMacros(target.rawSql ?? '')];
            for (const [name, options] of values)
              statements = statements.flatMap((sql) =>
                sql.includes(`\${${name}}`) ? options.map((value) => sql.replaceAll(`\${${name}}`, value)) : [sql],
              );
            for (const sql of statements) {
              const answer = await run(sql);
              expect(answer.status, `${json.uid}: ${panel.title}: ${sql}: ${answer.text}`).toBe(200);
              checked++;
            }
          }
        }
      }
      expect(checked).toBeGreaterThan(10);
      // And a query naming a column that does not exist fails there.
      expect((await run('SELECT no_such_column FROM monitoring_drift')).status).not.toBe(200);
    });
  });
});
