import { modelInputs, type ModelDefinition } from './models.js';
import { monitoring as monitoringSettings, type AlertRule, type MonitoringSettings } from './monitoring.js';
import type { FeatureView } from './features.js';
import type { SourceDefinition } from './sources.js';

/**
 * A topology: everything a team declares about its data — sources (with their raw Avro schemas),
 * feature views over them, models over those views, and optionally a demo generator. sluice
 * derives the rest from it: topics, schema subjects, ClickHouse tables, stages, CLI help. It is
 * plain data; `sluice` loads it from a `sluice.config.ts` (or `--topology` / SLUICE_TOPOLOGY).
 */
export interface Topology {
  readonly name: string;
  readonly sources: readonly SourceDefinition[];
  readonly views: readonly FeatureView[];
  readonly models: readonly ModelDefinition[];
  /** How drift and performance are computed (defaults when not declared). */
  readonly monitoring: MonitoringSettings;
  /** Alert rules over the monitoring records (none when not declared). */
  readonly alerts: readonly AlertRule[];
  /** Generated events for `sluice up --demo` and `sluice produce --demo`. */
  readonly demo?: DemoDefinition;
}

/** One generated record for `raw.<source>`: the key is the source's entity id. */
export interface DemoRecord {
  readonly source: string;
  readonly key: string;
  readonly value: Readonly<Record<string, unknown>>;
}

export interface DemoWindow {
  readonly seed: number;
  /** Events of the main sources to generate (labels come on top). */
  readonly events: number;
  /** Event time of the last event, ms. */
  readonly end: number;
  /** Event-time span the events cover, ms. */
  readonly spanMs: number;
  /** From this event time on the data drifts (if the generator knows how). */
  readonly driftFrom?: number;
  /** Live generation: records whose time is after `end` (late labels) are emitted too; the sender waits for their time. */
  readonly live: boolean;
}

/** A seeded generator of realistic records, in event-time order (the sender paces live records by their time). */
export interface DemoDefinition {
  generate(window: DemoWindow): Iterable<DemoRecord>;
}

export class TopologyError extends Error {
  override readonly name = 'TopologyError';
}

export interface TopologyInput {
  readonly name?: string;
  readonly sources: readonly SourceDefinition[];
  readonly views?: readonly FeatureView[];
  readonly models?: readonly ModelDefinition[];
  readonly monitoring?: MonitoringSettings;
  readonly alerts?: readonly AlertRule[];
  readonly demo?: DemoDefinition;
}

/**
 * Checks a topology for consistency — unique names; every view's source, every model's sources
 * and views declared here; topic names valid — and freezes it.
 */
export function defineTopology(input: TopologyInput): Topology {
  const views = input.views ?? [];
  const models = input.models ?? [];
  unique(
    'source',
    input.sources.map((source) => source.name),
  );
  unique(
    'feature view',
    views.map((view) => view.name),
  );
  unique(
    'model',
    models.map((model) => model.name),
  );
  const sources = new Set(input.sources);
  const sourceNames = input.sources.map((source) => source.name).join(', ');
  for (const view of views) {
    if (!sources.has(view.source))
      throw new TopologyError(
        `feature view ${view.name} reads source ${view.source.name}, which is not among this topology's sources (${sourceNames})`,
      );
  }
  const declaredViews = new Set(views);
  for (const model of models) {
    for (const used of [model.source, model.label.source]) {
      if (!sources.has(used))
        throw new TopologyError(
          `model ${model.name} uses source ${used.name}, which is not among this topology's sources (${sourceNames})`,
        );
    }
    for (const { view } of model.features) {
      if (!declaredViews.has(view))
        throw new TopologyError(`model ${model.name} uses feature view ${view.name}, which is not among this topology's views`);
    }
    unique(`input of model ${model.name}`, [...modelInputs(model), ...model.categorical]);
  }
  const alerts = input.alerts ?? [];
  unique(
    'alert rule',
    alerts.map((rule) => rule.name),
  );
  const modelNames = new Set(models.map((model) => model.name));
  for (const rule of alerts) {
    if (
      rule.action?.kind === 'retrain' &&
      !['dataset-drift', 'feature-drift', 'performance', 'fallback-rate'].includes(rule.condition.kind)
    )
      throw new TopologyError(`alert rule ${rule.name}: only rules about a model can retrain it`);
    if (['dataset-drift', 'feature-drift', 'performance', 'fallback-rate'].includes(rule.condition.kind)) {
      for (const subject of rule.subjects)
        if (!modelNames.has(subject)) throw new TopologyError(`alert rule ${rule.name} names model ${subject}, which is not declared`);
    }
    if (rule.condition.kind === 'quality') {
      for (const subject of rule.subjects)
        if (!input.sources.some((candidate) => candidate.name === subject))
          throw new TopologyError(`alert rule ${rule.name} names source ${subject}, which is not declared`);
    }
  }
  return Object.freeze({
    name: input.name ?? 'topology',
    sources: Object.freeze([...input.sources]),
    views: Object.freeze([...views]),
    models: Object.freeze([...models]),
    monitoring: input.monitoring ?? monitoringSettings(),
    alerts: Object.freeze([...alerts]),
    ...(input.demo ? { demo: input.demo } : {}),
  });
}

function unique(what: string, names: readonly string[]): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) throw new TopologyError(`${what} "${name}" is declared twice`);
    seen.add(name);
  }
}

/** Lookups by name that fail with the list of what exists. */
export function sourceNamed(topology: Topology, name: string): SourceDefinition {
  const found = topology.sources.find((candidate) => candidate.name === name);
  if (!found)
    throw new TopologyError(`no source "${name}"; sources: ${topology.sources.map((candidate) => candidate.name).join(', ') || 'none'}`);
  return found;
}

export function viewNamed(topology: Topology, name: string): FeatureView {
  const found = topology.views.find((candidate) => candidate.name === name);
  if (!found)
    throw new TopologyError(`no feature view "${name}"; views: ${topology.views.map((candidate) => candidate.name).join(', ') || 'none'}`);
  return found;
}

export function modelNamed(topology: Topology, name: string): ModelDefinition {
  const found = topology.models.find((candidate) => candidate.name === name);
  if (!found)
    throw new TopologyError(`no model "${name}"; models: ${topology.models.map((candidate) => candidate.name).join(', ') || 'none'}`);
  return found;
}
