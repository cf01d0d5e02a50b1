import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PROJECT_ROOT } from '../../common/config.js';
import type { OpsRoute } from '../ops-server.js';
import { dashboardSnapshots, type DashboardSource } from './snapshot.js';

const require = createRequire(import.meta.url);
const PAGE_DIR = path.join(PROJECT_ROOT, 'serving', 'dashboard', 'page');

/** Every file the page loads, by path: plain files, no build step (uPlot comes from its package). */
const ASSETS: Readonly<Record<string, { readonly file: () => string; readonly type: string }>> = {
  '/': { file: () => path.join(PAGE_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { file: () => path.join(PAGE_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/dashboard/app.css': { file: () => path.join(PAGE_DIR, 'app.css'), type: 'text/css; charset=utf-8' },
  '/dashboard/uplot.js': { file: () => require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/dashboard/uplot.css': { file: () => require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

/**
 * The built-in dashboard on the ops port: the page at `/`, its assets under `/dashboard/`, and
 * `/dashboard/data`, a snapshot of the metrics `/metrics` serves and of the ClickHouse tables the
 * SQL endpoint serves, which the page polls.
 */
export function dashboardRoutes(source: DashboardSource): OpsRoute {
  const cache = new Map<string, Buffer>();
  const snapshot = dashboardSnapshots(source);
  return async (request, url) => {
    if (request.method !== 'GET') return undefined;
    if (url.pathname === '/dashboard/data') {
      return { status: 200, body: await snapshot(), headers: { 'Cache-Control': 'no-store' } };
    }
    const asset = ASSETS[url.pathname];
    if (!asset) return undefined;
    let content = cache.get(url.pathname);
    if (!content) {
      content = await readFile(asset.file());
      cache.set(url.pathname, content);
    }
    return { status: 200, body: content, contentType: asset.type };
  };
}

export { dashboardSnapshots, dashboardSql, type DashboardSnapshot, type DashboardSource } from './snapshot.js';
