import { Command } from 'commander';
import { runAction, runQuickAction } from './action.js';

// Each command's module is imported when that command runs (runAction), never here: `--help`,
// `status` and `sql` start without loading Kafka clients, ClickHouse, TensorFlow.js or onnxruntime.

const program = new Command()
  .name('sluice')
  .description('Streaming-first, event-sourced ML infrastructure over Apache Kafka')
  .version('0.1.0')
  .option(
    '--topology <path>',
    "the topology: a sluice.config.ts or a folder holding one (default: SLUICE_TOPOLOGY, the running stack's, or ./sluice.config.ts)",
  )
  .showHelpAfterError()
  .hook('preAction', (command) => {
    // Every command reads its configuration from the environment; the flag is one more source of it.
    const { topology } = command.opts<{ topology?: string }>();
    if (topology !== undefined) process.env.SLUICE_TOPOLOGY = topology;
  });

program
  .command('init')
  .description(
    'create a project in <dir>: a sluice.config.ts with a source and its raw Avro schema, two views, sample CSV data and a README',
  )
  .argument('<dir>', 'the folder to create (existing files are never overwritten)')
  .action(runQuickAction(async () => (await import('./commands/init.js')).initCommand));

program
  .command('up')
  .description('start the local stack (Kafka broker, registry, ClickHouse, every stage) in the foreground; Ctrl-C stops it')
  .option('--demo', 'also run the demo: generated history and live events, and the first model trained and deployed')
  .option('--seed <n>', 'demo generator seed', '42')
  .option('--history <events>', 'demo events of history over the past 6 hours (default: 30 hours of history at the live rate)')
  .option('--rate <events/s>', 'live demo events per second (default: 3)')
  .option('--drift-at <time>', 'demo drift (larger amounts, new merchants) from this event time: epoch ms or ISO')
  .action(runAction(async () => (await import('./commands/up.js')).upCommand));

program
  .command('run')
  .description(
    'run the fused pipeline (pipeline), one stage alone (ingest, features, inference-<model>) or the schema registry alone (registry) in the foreground against the configured cluster',
  )
  .argument('<stage>', 'the stage to run, or registry')
  .action(runAction(async () => (await import('./commands/run.js')).runCommand));

program
  .command('sql')
  .description("run a query on the stack's ClickHouse and print the result as a table")
  .argument('<query>', 'the SQL to run (read-only unless SLUICE_SQL_WRITABLE=true)')
  .option('--format <format>', 'a ClickHouse output format instead of PrettyCompact (JSONEachRow, CSV, ...)')
  .action(runQuickAction(async () => (await import('./commands/sql.js')).sqlCommand));

/** The range options of jobs over events.<source>: event time by default, Kafka record time or offsets on request. */
const range = (command: Command): Command =>
  command
    .option('--from <time>', "start of the range (inclusive): the events' event time, epoch ms or ISO (e.g. 2001-01-10)")
    .option('--to <time>', 'end of the range (exclusive), in event time; default: every event in the topics when the job starts')
    .option('--record-time', 'read --from/--to as Kafka record time (when records were written) instead of event time')
    .option('--from-offsets <list>', 'start offsets per partition of events.<source>, e.g. 0:100,1:250')
    .option('--to-offsets <list>', 'end offsets per partition (exclusive)');

range(
  program
    .command('backfill')
    .alias('replay')
    .description(
      'recompute feature views from events.<source>, and drift and performance records of the windows in the range, into the offline store with the live code (idempotent)',
    )
    .option('--views <names>', 'comma-separated feature views (default: all)')
    .option('--no-monitoring', 'feature views only: leave drift and performance records alone'),
).action(runAction(async () => (await import('./commands/features.js')).backfillCommand));

const features = program.command('features').description('the feature store: registry, online lookups, consistency');
features
  .command('ls')
  .description('list every version of every feature view in registry.features')
  .option('--json', 'print JSON')
  .action(runAction(async () => (await import('./commands/features.js')).listFeaturesCommand));
features
  .command('get')
  .description('look up the latest values of a view for an entity (online store)')
  .argument('<view>')
  .argument('<entity>')
  .option(
    '--at <time>',
    "judge the view's TTL as of this time: epoch ms or ISO (default: now, or the entity's newest event for ttlClock 'event')",
  )
  .action(runQuickAction(async () => (await import('./commands/lookup.js')).getFeaturesCommand));
range(
  features
    .command('check')
    .description('compare values served online with values recomputed by replay, for the events in the range; exit 2 on any mismatch')
    .option('--views <names>', 'comma-separated feature views (default: all)')
    .option('--json', 'print JSON'),
).action(runAction(async () => (await import('./commands/features.js')).checkCommand));

const monitoring = program.command('monitoring').description('drift and performance records of the monitoring stages');
range(
  monitoring
    .command('check')
    .description(
      'compare the drift and performance records the stages wrote with the same records recomputed by replay, for windows starting in the range; exit 2 on any mismatch',
    )
    .option('--json', 'print JSON'),
).action(runAction(async () => (await import('./commands/monitoring.js')).monitoringCheckCommand));

const alerts = program.command('alerts').description('alerts of the monitoring rules (monitoring.alerts)');
alerts
  .command('ls')
  .description('open alerts: rule, subject, severity, when it fired, what it sets off')
  .option('--all', 'every episode, resolved ones too')
  .option('--json', 'print JSON')
  .action(runAction(async () => (await import('./commands/monitoring.js')).listAlertsCommand));

program
  .command('produce')
  .description('send NDJSON or CSV records to raw.<source> (keyed by its entity), or run the demo generator with --demo')
  .argument('[source]', 'a source of the topology (its raw schema types CSV cells)')
  .argument('[file]', 'a .ndjson or .csv file')
  .option('--demo', 'generate demo events: history, then live events with late chargebacks')
  .option('--seed <n>', 'generator seed', '42')
  .option('--history <events>', 'events of history over the past 6 hours (default: 30 hours of history at the live rate)')
  .option('--rate <events/s>', 'live events per second (0: history only; default: 3)')
  .option('--drift-at <time>', 'drift (larger amounts, new merchants) from this event time')
  .action(runAction(async () => (await import('./commands/produce.js')).produceCommand));

program
  .command('tail')
  .description("print a topic's committed records as JSON lines, Avro decoded (e.g. sluice tail predictions.fraud)")
  .argument('<topic>', 'the topic, without the prefix')
  .option('--from-beginning', 'start at the oldest record instead of new ones')
  .option('--max <n>', 'stop after n records')
  .action(runAction(async () => (await import('./commands/tail.js')).tailCommand));

range(
  program
    .command('train')
    .description('train a model from replayed topics, evaluate it on the latest time slice, export ONNX and register a version')
    .argument('<model>', 'a model of the topology')
    .option(
      '--trainer <trainer>',
      'tfjs (default) or jax (the Python trainer, GPU when its JAX has one); logistic or mlp: tfjs with that architecture',
    )
    .option('--kind <kind>', "the architecture: logistic or mlp (default: the definition's)")
    .option('--epochs <n>', "epochs (default: the definition's)")
    .option('--seed <n>', "seed (default: the definition's)")
    .option(
      '--from-run <run>',
      "rebuild a run's training set from its manifest's offsets (the same dataset hash) and train its configuration again",
    )
    .option('--python <path>', 'the Python for --trainer jax (default: .venv-jax/bin/python, else python3)')
    .option('--device <device>', 'where the JAX trainer runs: auto, cpu or gpu (default auto)')
    .option('--alert <id>', 'the alert that triggered this run (an alert hook sets it; its experiment records it)')
    .option('--promote', 'make the new version champion (the first version always is)'),
).action(runAction(async () => (await import('./commands/models.js')).trainCommand));

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
range(
  program
    .command('tune')
    .description(
      'search hyperparameters: trials on one training set with successive halving on a validation split; every trial is an experiment, the best is registered as a candidate',
    )
    .argument('<model>', 'a model of the topology')
    .option('--trials <n>', "trials of a random search, the baseline (the definition's configuration) included", '32')
    .option('--search <kind>', 'random or grid', 'random')
    .option(
      '--param <spec>',
      'a search dimension (repeatable): lr=1e-4..1e-1:log, hidden=8,16,32,64, l2=0..1e-3, batch=64..512:int, epochs=5,10, kind=logistic,mlp (default: lr, hidden, l2)',
      collect,
    )
    .option('--trainer <trainer>', 'tfjs (worker threads, default) or jax (all trials in one vectorized program)')
    .option('--epochs <n>', "the most epochs a trial trains (default: the definition's)")
    .option('--min-epochs <n>', 'successive halving: the first rung', '2')
    .option('--eta <n>', 'successive halving: keep the best 1/eta at each rung', '3')
    .option('--no-halving', 'train every trial to its last epoch')
    .option('--validation <share>', 'the latest share of the rows before the held-out slice used for validation', '0.2')
    .option('--parallel <n>', 'TensorFlow.js worker threads (default: the cores)')
    .option('--seed <n>', "the random search's seed (default: the definition's)")
    .option('--python <path>', 'the Python for --trainer jax (default: .venv-jax/bin/python, else python3)')
    .option('--device <device>', 'where the JAX trainer runs: auto, cpu or gpu')
    .option('--alias <alias>', "the alias the best trial's version takes", 'candidate'),
).action(runAction(async () => (await import('./commands/tune.js')).tuneCommand));

const experiments = program
  .command('experiments')
  .description('training runs (registry.experiments): manual, tuning trials, alert-triggered');
experiments
  .command('ls')
  .description('every run: trigger, trainer, params, validation and held-out metrics, registered version')
  .option('--model <model>', 'only this model')
  .option('--parent <run>', 'a tuning run and its trials')
  .option('--json', 'print JSON')
  .action(runAction(async () => (await import('./commands/experiments.js')).listExperimentsCommand));
experiments
  .command('show')
  .description('one run in full: params, metrics per epoch and final, the dataset manifest, machine, durations')
  .argument('<run>', 'a run id or a unique prefix')
  .option('--json', 'print JSON')
  .action(runAction(async () => (await import('./commands/experiments.js')).showExperimentCommand));
experiments
  .command('compare')
  .description('runs side by side: the params that differ and every metric (the best marked)')
  .argument('<runs...>', 'two or more run ids (or unique prefixes)')
  .option('--all', 'every param, also those that are the same')
  .option('--json', 'print JSON')
  .action(runAction(async () => (await import('./commands/experiments.js')).compareExperimentsCommand));

const models = program.command('models').description('the model registry (registry.models)');
models
  .command('ls')
  .description('every version of every model, with aliases and AUC')
  .option('--json', 'print JSON')
  .action(runAction(async () => (await import('./commands/models.js')).listModelsCommand));
models
  .command('show')
  .description('one version in full: lineage, params, metrics (default: the champion)')
  .argument('<model>')
  .argument('[version]')
  .action(runAction(async () => (await import('./commands/models.js')).showModelCommand));
models
  .command('promote')
  .description('point an alias (default champion) at a version; inference hot-reloads it')
  .argument('<model>')
  .argument('<version>')
  .option('--alias <alias>', 'the alias', 'champion')
  .action(runAction(async () => (await import('./commands/models.js')).promoteCommand));
models
  .command('rollback')
  .description('move champion back to the version before it (or --to a version); refused when its inputs no longer exist')
  .argument('<model>')
  .option('--to <version>', 'the version to roll back to')
  .action(runAction(async () => (await import('./commands/models.js')).rollbackCommand));
models
  .command('deploy')
  .description(
    'roll a version out: --canary steps its share of entities up while its gates pass, rolls back when one fails; --shadow scores every event beside the champion without deciding and compares them; --blue-green warms it everywhere, then switches all traffic at once',
  )
  .argument('<model>')
  .argument('<version>')
  .option('--canary', 'a canary by entity hash, stepped in event time')
  .option('--shadow', 'a shadow: scores every event into predictions.<model>.shadow, compared per window in monitoring.shadow')
  .option('--blue-green', 'load and warm in every instance, then switch all traffic in one registry record')
  .option('--window <duration>', 'shadow: the comparison window of event time', '1m')
  .option('--for <duration>', 'shadow: how much event time to compare before it ends (default: until stopped)')
  .option('--warm-timeout <duration>', 'blue-green: how long every instance has to load and warm the version', '2m')
  .option('--steps <percents>', 'canary shares, in order', '5,25,50,100')
  .option('--step-every <duration>', 'event time each step lasts', '10m')
  .option(
    '--gates <k=v,...>',
    'gate settings over the defaults: minSample, maxFallbackIncrease, maxP99LatencyMs, maxScorePsi, minLabelled, alpha, tau',
  )
  .action(runAction(async () => (await import('./commands/models.js')).deployCommand));
models
  .command('abort')
  .description('end the running rollout (canary, shadow, blue-green) in one registry record; the champion keeps all traffic')
  .argument('<model>')
  .action(runAction(async () => (await import('./commands/models.js')).abortRolloutCommand));
models
  .command('switch-back')
  .description('undo the latest blue-green switch: the previous version (still loaded) takes all traffic again, in one registry record')
  .argument('<model>')
  .action(runAction(async () => (await import('./commands/models.js')).switchBackCommand));
models
  .command('history')
  .description('which version served which share of traffic: at a time (--at), or at every change')
  .argument('<model>')
  .option('--at <time>', 'ISO 8601 time or epoch milliseconds')
  .option('--json', 'print JSON')
  .action(runAction(async () => (await import('./commands/models.js')).historyCommand));

program
  .command('status')
  .description('report whether the stack on this data directory is up, and where its services listen')
  .option('--json', 'print one JSON object of the running endpoints')
  .action(runQuickAction(async () => (await import('./commands/status.js')).statusCommand));

await program.parseAsync(process.argv);
