// The dashboard page: polls /dashboard/data (the metrics /metrics serves and the ClickHouse tables the
// SQL endpoint serves) and draws it. Plain JavaScript, no build step; charts by uPlot (global `uPlot`).

const POLL_MS = 2000;
const HISTORY = 150;
const $ = (id) => document.getElementById(id);

/** Previous snapshot's totals per graph node, to turn totals into rates. */
let previous;
/** Throughput history: timestamps (s) and one series per stage node. */
const series = { at: [], byNode: new Map() };
let throughputChart;
let throughputKey = '';
let histogramChart;
let snapshots = 0;

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function formatNumber(value) {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–';
}

function formatRate(value) {
  if (!Number.isFinite(value)) return '–';
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
}

function empty(text) {
  return `<p class="empty">${escapeHtml(text)}</p>`;
}

function sqlError(section) {
  return 'error' in section ? `<p class="error">SQL: ${escapeHtml(section.error)}</p>` : '';
}

function table(headers, rows, numeric = []) {
  const head = headers.map((h, i) => `<th class="${numeric.includes(i) ? 'num' : ''}">${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map((row) => `<tr>${row.map((cell, i) => `<td class="${numeric.includes(i) ? 'num' : ''}">${cell}</td>`).join('')}</tr>`)
    .join('');
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function rateOf(node, snapshot) {
  if (!previous) return NaN;
  const before = previous.counts.get(node.id);
  const seconds = (snapshot.at - previous.at) / 1000;
  return before === undefined || seconds <= 0 ? NaN : Math.max(0, node.count - before) / seconds;
}

function drawGraph(snapshot) {
  const columns = snapshot.graph.map(
    (column) =>
      `<div class="column">${column
        .map(
          (node) =>
            `<div class="node ${node.kind}" data-node="${escapeHtml(node.id)}">` +
            `<div class="label">${escapeHtml(node.label)}</div>` +
            `<div class="rate" data-field="rate">${formatRate(rateOf(node, snapshot))}/s</div>` +
            `<div class="muted" data-field="total">${formatNumber(node.count)}</div></div>`,
        )
        .join('')}</div>`,
  );
  $('graph').innerHTML = columns.join('<div class="arrow">→</div>');
}

function drawStages(snapshot) {
  const tasks = new Map(snapshot.tasks.map((task) => [task.stage, task]));
  const rows = snapshot.metrics.stages.map((stage) => {
    const task = tasks.get(stage.stage);
    const states = task
      ? Object.entries(task.states)
          .map(([state, n]) => `${n} ${state}`)
          .join(', ') || 'no tasks'
      : '–';
    return [
      `<span data-stage="${escapeHtml(stage.stage)}">${escapeHtml(stage.stage)}</span>`,
      `<span data-stage-field="${escapeHtml(stage.stage)}:recordsIn">${formatNumber(stage.recordsIn)}</span>`,
      `<span data-stage-field="${escapeHtml(stage.stage)}:recordsOut">${formatNumber(stage.recordsOut)}</span>`,
      `<span data-stage-field="${escapeHtml(stage.stage)}:lag">${formatNumber(stage.lag)}</span>`,
      formatNumber(stage.inFlight),
      formatNumber(stage.assignedPartitions),
      escapeHtml(states),
    ];
  });
  $('stages').innerHTML = rows.length
    ? table(['stage', 'records in', 'records out', 'lag', 'in flight', 'partitions', 'tasks'], rows, [1, 2, 3, 4, 5])
    : empty('Stages appear here once they have joined their consumer group.');
}

function drawThroughput(snapshot) {
  const stageNodes = snapshot.graph.flat().filter((node) => node.kind !== 'topic');
  series.at.push(snapshot.at / 1000);
  for (const node of stageNodes) {
    if (!series.byNode.has(node.id))
      series.byNode.set(
        node.id,
        series.at.slice(0, -1).map(() => null),
      );
    const rate = rateOf(node, snapshot);
    series.byNode.get(node.id).push(Number.isFinite(rate) ? rate : null);
  }
  if (series.at.length > HISTORY) {
    series.at.shift();
    for (const values of series.byNode.values()) values.shift();
  }
  const ids = [...series.byNode.keys()];
  const data = [series.at, ...ids.map((id) => series.byNode.get(id))];
  const key = ids.join('|');
  if (!throughputChart || key !== throughputKey) {
    throughputChart?.destroy();
    const palette = ['#2563eb', '#059669', '#d97706', '#7c3aed', '#dc2626', '#0891b2'];
    throughputChart = new uPlot(
      {
        width: $('throughput').clientWidth || 400,
        height: 200,
        series: [{}, ...ids.map((id, i) => ({ label: id.replace(/^\w+:/, ''), stroke: palette[i % palette.length], width: 2 }))],
        axes: [{}, { size: 50 }],
      },
      data,
      $('throughput'),
    );
    throughputKey = key;
  } else {
    throughputChart.setData(data);
  }
}

function drawViews(snapshot) {
  const rows = snapshot.views.map((view) => {
    if ('error' in view.stats) return [escapeHtml(view.name), sqlError(view.stats), '', ''];
    const stats = view.stats.rows[0] ?? { rows: 0, latest: null, age_s: null };
    return [
      escapeHtml(view.name),
      `<span data-view-field="${escapeHtml(view.name)}:rows">${formatNumber(Number(stats.rows))}</span>`,
      escapeHtml(stats.latest ?? '–'),
      stats.age_s === null ? '–' : `${formatNumber(Number(stats.age_s))} s`,
    ];
  });
  $('views').innerHTML = rows.length
    ? table(['view', 'rows', 'latest event time', 'freshness (age)'], rows, [1, 3])
    : empty('Feature views appear here when the topology declares them.');
}

function drawModels(snapshot) {
  const parts = snapshot.models.map((model) => {
    const predicted = snapshot.metrics.predictions
      .filter((entry) => entry.labels.model === model.name)
      .reduce((sum, entry) => sum + entry.count, 0);
    const stored = 'rows' in model.stored ? Number(model.stored.rows[0]?.n ?? 0) : NaN;
    const versions = model.versions.length
      ? table(
          ['version', 'aliases', 'AUC', 'trainer'],
          model.versions.map((v) => [
            `<span data-model-version="${escapeHtml(model.name)}:${v.version}">v${v.version}</span>`,
            `<span data-model-aliases="${escapeHtml(model.name)}:${v.version}">${escapeHtml(v.aliases.join(', ') || '–')}</span>`,
            v.auc === null ? '–' : Number(v.auc).toFixed(3),
            escapeHtml(v.trainer),
          ]),
          [2],
        )
      : empty('Versions appear here once the model is trained and registered.');
    return (
      `<h3>${escapeHtml(model.name)}</h3>` +
      `<p>serving <strong data-model-field="${escapeHtml(model.name)}:serving">${model.servingVersion === null ? 'no version yet' : `v${model.servingVersion}`}</strong>` +
      ` · predictions <strong data-model-field="${escapeHtml(model.name)}:predicted">${formatNumber(predicted)}</strong> (metrics)` +
      ` · <strong data-model-field="${escapeHtml(model.name)}:stored">${formatNumber(stored)}</strong> in ClickHouse</p>` +
      versions
    );
  });
  $('models').innerHTML = parts.join('') || empty('Models appear here when the topology declares them.');
}

function drawHistogram(snapshot) {
  const counts = Array.from({ length: 10 }, () => 0);
  for (const model of snapshot.models) {
    if ('rows' in model.histogram) for (const row of model.histogram.rows) counts[Number(row.bin)] += Number(row.n);
  }
  const xs = counts.map((_, i) => i / 10 + 0.05);
  if (!histogramChart) {
    histogramChart = new uPlot(
      {
        width: $('histogram').clientWidth || 400,
        height: 200,
        scales: { x: { time: false, range: [0, 1] } },
        series: [
          { label: 'score' },
          { label: 'predictions', fill: 'rgba(37,99,235,0.4)', stroke: '#2563eb', paths: uPlot.paths.bars({ size: [0.9] }) },
        ],
        axes: [{}, { size: 50 }],
      },
      [xs, counts],
      $('histogram'),
    );
  } else {
    histogramChart.setData([xs, counts]);
  }
}

function drawDeployments(snapshot) {
  const parts = snapshot.models.map((model) => {
    if (!('rows' in model.traffic)) return sqlError(model.traffic);
    const total = model.traffic.rows.reduce((sum, row) => sum + Number(row.n), 0);
    if (total === 0) return `<h3>${escapeHtml(model.name)}</h3>` + empty('Traffic appears here once the model scores events.');
    const bars = model.traffic.rows
      .map((row) => {
        const share = (100 * Number(row.n)) / total;
        return `<div class="role-${escapeHtml(row.deployment)}" style="width:${share}%" title="v${row.model_version} ${escapeHtml(row.deployment)}">v${row.model_version} ${escapeHtml(row.deployment.toLowerCase())} ${share.toFixed(0)}%</div>`;
      })
      .join('');
    const roles = new Set(model.traffic.rows.map((row) => row.deployment));
    const rollout =
      roles.has('CANARY') || roles.has('SHADOW')
        ? ''
        : empty('Canary, shadow and blue-green rollouts appear here when a version is deployed beside the champion.');
    return `<h3>${escapeHtml(model.name)}</h3><div class="split">${bars}</div>${rollout}`;
  });
  $('deployments').innerHTML = parts.join('') || empty('Deployments appear here when the topology declares models.');
}

function drawQuality(snapshot) {
  const rows = snapshot.metrics.quality.map((entry) => [
    escapeHtml(entry.labels.source),
    escapeHtml(entry.labels.field),
    escapeHtml(entry.labels.check),
    formatNumber(entry.count),
  ]);
  $('quality').innerHTML = rows.length
    ? table(['source', 'field', 'check', 'violations'], rows, [3])
    : empty('No data-quality violations so far: they appear here when ingest finds missing, invalid or out-of-range values.');
}

function drawDeadLetters(snapshot) {
  const rows = snapshot.metrics.deadLetters.map((entry) => [
    escapeHtml(entry.labels.stage),
    escapeHtml(entry.labels.topic),
    escapeHtml(entry.labels.reason),
    formatNumber(entry.count),
  ]);
  $('deadletters').innerHTML =
    (rows.length
      ? table(['stage', 'topic', 'reason', 'records'], rows, [3])
      : empty('No dead letters so far: records a stage cannot process appear here by reason.')) + sqlError(snapshot.deadLettersStored);
}

function drawRows(id, section, text) {
  if ('error' in section) {
    $(id).innerHTML = sqlError(section);
    return;
  }
  if (section.rows.length === 0) {
    $(id).innerHTML = empty(text);
    return;
  }
  const columns = Object.keys(section.rows[0]).filter((name) => !name.startsWith('_'));
  $(id).innerHTML = table(
    columns,
    section.rows.map((row) => columns.map((name) => escapeHtml(typeof row[name] === 'object' ? JSON.stringify(row[name]) : row[name]))),
  );
}

function draw(snapshot) {
  drawGraph(snapshot);
  drawStages(snapshot);
  drawThroughput(snapshot);
  drawViews(snapshot);
  drawModels(snapshot);
  drawHistogram(snapshot);
  drawDeployments(snapshot);
  drawQuality(snapshot);
  drawDeadLetters(snapshot);
  drawRows(
    'drift',
    snapshot.drift,
    'Drift tests (KS, chi-square, PSI per feature against the training baseline) appear here when the drift stage writes monitoring.drift.',
  );
  drawRows(
    'performance',
    snapshot.performance,
    'Rolling accuracy, precision, recall and AUC appear here when labels are joined to predictions (monitoring.performance).',
  );
  drawRows('alerts', snapshot.alerts, 'Open alerts appear here when the alert engine raises one (monitoring.alerts).');
  previous = { at: snapshot.at, counts: new Map(snapshot.graph.flat().map((node) => [node.id, node.count])) };
  snapshots++;
  document.body.dataset.snapshots = String(snapshots);
  document.body.dataset.snapshotAt = String(snapshot.at);
  document.body.dataset.sqlAt = String(snapshot.sqlAt);
  $('status').textContent = `updated ${new Date(snapshot.at).toLocaleTimeString()}`;
}

async function poll() {
  try {
    const response = await fetch('/dashboard/data', { cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    draw(await response.json());
  } catch (error) {
    $('status').textContent = `cannot reach sluice (${error instanceof Error ? error.message : String(error)}); retrying`;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

void poll();
