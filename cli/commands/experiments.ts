import { ConfigError } from '../../common/errors.js';
import { createKafka } from '../../kafka/index.js';
import { compareRuns, findRun, readExperiments, type ExperimentRun } from '../../models/experiments.js';
import type { CommandContext } from '../action.js';
import { findCluster } from '../cluster.js';
import { cell, formatTable } from '../table.js';

/** `sluice experiments ls|show|compare`: the runs in registry.experiments, read only. */
async function runs(context: CommandContext): Promise<ExperimentRun[]> {
  const cluster = await findCluster(context.config);
  return readExperiments({
    kafka: createKafka({ brokers: cluster.brokers, clientId: 'sluice-cli', logger: context.logger }),
    topic: `${context.config.topicPrefix}registry.experiments`,
    registryUrl: cluster.registryUrl,
  });
}

function seconds(run: ExperimentRun): number | null {
  return (
    run.durations.total_seconds ?? run.durations.train_seconds ?? (run.ended_at === null ? null : (run.ended_at - run.started_at) / 1000)
  );
}

/** The metric a run is judged by in a list: held-out AUC, else validation AUC. */
function auc(run: ExperimentRun, split: 'test' | 'validation'): number | null {
  return (split === 'test' ? run.metrics.auc : run.metrics.validation_auc) ?? null;
}

export interface ListOptions {
  readonly model?: string;
  readonly parent?: string;
  readonly json?: boolean;
}

export async function listExperimentsCommand(context: CommandContext, options: ListOptions): Promise<number> {
  let selected = await runs(context);
  if (options.model) selected = selected.filter((run) => run.experiment === options.model);
  if (options.parent) {
    const parent = findRun(selected, options.parent);
    selected = selected.filter((run) => run.run_id === parent.run_id || run.trigger?.parent_run_id === parent.run_id);
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify(selected)}\n`);
    return 0;
  }
  if (selected.length === 0) {
    process.stdout.write('no experiment runs yet (sluice train <model>, sluice tune <model>)\n');
    return 0;
  }
  const rows = selected.map((run) => [
    run.run_id,
    run.experiment,
    run.trigger?.kind ?? '-',
    run.trainer ?? '-',
    run.status,
    run.params.learningRate ?? '-',
    run.params.hidden ?? '-',
    run.params.l2 ?? '-',
    run.params.stopped_at_epoch
      ? `${run.epochs.length}/${run.params.epochs ?? '?'}`
      : String(run.epochs.length || (run.params.epochs ?? '-')),
    cell(run.metrics.validation_log_loss ?? run.metrics.best_validation_log_loss, 4),
    cell(auc(run, 'validation') ?? run.metrics.best_validation_auc, 4),
    cell(auc(run, 'test'), 4),
    run.model_version === null ? '-' : `v${run.model_version}`,
    new Date(run.started_at).toISOString().replace('T', ' ').slice(0, 19),
    cell(seconds(run), 1),
  ]);
  process.stdout.write(
    formatTable(
      [
        'run',
        'model',
        'kind',
        'trainer',
        'status',
        'lr',
        'hidden',
        'l2',
        'epochs',
        'val loss',
        'val AUC',
        'test AUC',
        'version',
        'started (UTC)',
        'seconds',
      ],
      rows,
    ),
  );
  process.stdout.write(`${selected.length} run(s)\n`);
  return 0;
}

export async function showExperimentCommand(context: CommandContext, id: string, options: { readonly json?: boolean }): Promise<number> {
  const all = await runs(context);
  const run = findRun(all, id);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(run, null, 2)}\n`);
    return 0;
  }
  const out: string[] = [];
  const add = (title: string, pairs: readonly (readonly [string, string])[]): void => {
    if (pairs.length === 0) return;
    out.push(`${title}:`);
    const width = Math.max(...pairs.map(([name]) => name.length));
    for (const [name, value] of pairs) out.push(`  ${name.padEnd(width)}  ${value}`);
  };
  const trigger = run.trigger;
  add(`run ${run.run_id}`, [
    ['model', run.experiment],
    ['status', run.status + (run.error ? ` (${run.error})` : '')],
    [
      'trigger',
      trigger
        ? [
            trigger.kind,
            trigger.alert_id && `alert ${trigger.alert_id}`,
            trigger.parent_run_id && `tuning run ${trigger.parent_run_id}`,
            trigger.from_run_id && `rebuilt from ${trigger.from_run_id}`,
          ]
            .filter(Boolean)
            .join(', ')
        : '-',
    ],
    ['trainer', run.trainer ?? '-'],
    ['seed', run.seed === null ? '-' : String(run.seed)],
    ['machine', run.machine ? `${run.machine.device} ${run.machine.device_name} on ${run.machine.host} (${run.machine.cpus} CPUs)` : '-'],
    ['code commit', `${run.code_commit ?? '-'}${run.environment.code_dirty === 'true' ? ' (with uncommitted changes)' : ''}`],
    ['started', new Date(run.started_at).toISOString()],
    ['ended', run.ended_at === null ? '-' : new Date(run.ended_at).toISOString()],
    ['model version', run.model_version === null ? '-' : `${run.experiment} v${run.model_version}`],
  ]);
  add('params', Object.entries(run.params));
  add(
    'metrics',
    Object.entries(run.metrics).map(([name, value]) => [name, cell(value, 6)] as const),
  );
  add(
    'durations (s)',
    Object.entries(run.durations).map(([name, value]) => [name, cell(value, 2)] as const),
  );
  add('environment', Object.entries(run.environment));
  add(
    'resources',
    Object.entries(run.resources).map(([name, value]) => [name, cell(value, 1)] as const),
  );
  const dataset = run.dataset;
  if (dataset) {
    add('dataset', [
      ['sha256', dataset.dataset_sha256 ?? '-'],
      ['inputs', dataset.inputs.join(', ')],
      [
        'feature views',
        dataset.feature_views.map((view) => `${view.name} v${view.version} (${view.definition_hash.slice(0, 12)})`).join(', '),
      ],
      [
        'labels',
        `${dataset.label_source ?? '-'}, window ${dataset.label_window_ms === null ? '-' : `${dataset.label_window_ms / 60_000} min`}`,
      ],
      [
        'selection',
        dataset.selection
          ? `event time [${dataset.selection.event_time_from === null ? '…' : new Date(dataset.selection.event_time_from).toISOString()}, ${dataset.selection.event_time_to === null ? '…' : new Date(dataset.selection.event_time_to).toISOString()})${dataset.selection.offsets.length > 0 ? `, offsets ${dataset.selection.offsets.map((range) => `${range.partition}:${range.start_offset}-${range.end_offset}`).join(' ')}` : ''}`
          : '-',
      ],
      [
        'split',
        dataset.split
          ? `${dataset.split.train_rows} train, ${dataset.split.validation_rows} validation, ${dataset.split.test_rows} held out (latest ${dataset.split.test_fraction * 100}%)`
          : '-',
      ],
      ['schema ids', dataset.schema_ids.map((entry) => `${entry.topic}: ${entry.ids.join(',')}`).join('; ')],
    ]);
    out.push(
      formatTable(
        ['topic', 'partition', 'start offset', 'end offset'],
        dataset.ranges.map((range) => [range.topic, String(range.partition), String(range.start_offset), String(range.end_offset)]),
      )
        .trimEnd()
        .split('\n')
        .map((line) => `  ${line}`)
        .join('\n'),
    );
  }
  if (run.epochs.length > 0) {
    out.push('epochs:');
    out.push(
      formatTable(
        ['epoch', 'train loss', 'validation loss', 'seconds'],
        run.epochs.map((epoch) => [String(epoch.epoch), cell(epoch.train_loss, 5), cell(epoch.validation_loss, 5), cell(epoch.seconds, 3)]),
      )
        .trimEnd()
        .split('\n')
        .map((line) => `  ${line}`)
        .join('\n'),
    );
  }
  const children = all.filter((candidate) => candidate.trigger?.parent_run_id === run.run_id);
  if (children.length > 0) out.push(`trials: ${children.length} (sluice experiments ls --parent ${run.run_id})`);
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

export async function compareExperimentsCommand(
  context: CommandContext,
  ids: readonly string[],
  options: { readonly all?: boolean; readonly json?: boolean },
): Promise<number> {
  if (ids.length < 2) throw new ConfigError('compare takes two or more run ids');
  const all = await runs(context);
  const chosen = ids.map((id) => findRun(all, id));
  const comparison = compareRuns(chosen, { all: options.all ?? false });
  if (options.json) {
    process.stdout.write(`${JSON.stringify(comparison)}\n`);
    return 0;
  }
  const heads = chosen.map((run) => run.run_id.slice(0, 8));
  process.stdout.write(`params${options.all ? '' : ' that differ'}:\n`);
  process.stdout.write(
    comparison.params.length > 0
      ? formatTable(
          ['param', ...heads],
          // hashes and run ids shortened: the table stays readable (--json has them whole)
          comparison.params.map((row) => [
            row.name,
            ...row.values.map((value) => (value === null ? '-' : value.length > 40 ? `${value.slice(0, 16)}…` : value)),
          ]),
        )
      : '(none: the runs have the same params)\n',
  );
  if (!options.all && comparison.sameParams.length > 0) process.stdout.write(`the same in all: ${comparison.sameParams.join(', ')}\n`);
  process.stdout.write('\nmetrics (* best):\n');
  process.stdout.write(
    formatTable(
      ['metric', ...heads],
      comparison.metrics.map((row) => [row.name, ...row.values.map((value, index) => `${cell(value, 4)}${row.best === index ? '*' : ''}`)]),
    ),
  );
  return 0;
}
