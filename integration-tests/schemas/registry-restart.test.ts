import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { cleanEnv, spawnSluice, waitForOutput, type SluiceProcess } from '../cli/sluice-process.js';
import { uniqueName } from '../helpers.js';

const SUBJECTS = 20;
const VERSIONS = 5;
const JSON_TYPE = 'application/vnd.schemaregistry.v1+json';

/** Version v of subject s: each version adds one defaulted field, so all are BACKWARD compatible. */
function schemaOf(subject: number, version: number): string {
  const fields = [{ name: 'id', type: 'string' }];
  for (let extra = 2; extra <= version; extra++) fields.push({ name: `f${extra}`, type: 'int', default: 0 } as never);
  return JSON.stringify({ type: 'record', name: `Thing${subject}`, namespace: 'restart', fields });
}

async function api<T>(url: string, method = 'GET', body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(url, {
    method,
    headers: { 'Content-Type': JSON_TYPE },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as T };
}

describe('the registry survives kill -9: state is rebuilt from the _schemas topic', () => {
  const processes: SluiceProcess[] = [];
  let dataDir: string;

  afterAll(async () => {
    for (const proc of processes) proc.child.kill('SIGKILL');
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  async function start(env: NodeJS.ProcessEnv): Promise<string> {
    const proc = spawnSluice(['up'], env);
    processes.push(proc);
    await waitForOutput(proc, /sluice is up/, 120_000);
    const stack = JSON.parse(await fs.readFile(path.join(dataDir, 'stack.json'), 'utf8')) as { endpoints: { schemaRegistry: string } };
    return stack.endpoints.schemaRegistry;
  }

  it('keeps ids and versions; soft deletes stay hidden and permanent deletes stay gone', async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-registry-restart-'));
    const env = cleanEnv({
      KAFKA_BROKERS: inject('brokers').join(','),
      SLUICE_TOPIC_PREFIX: `${uniqueName('restart')}.`,
      SLUICE_DATA_DIR: dataDir,
    });
    const url = await start(env);

    const ids = new Map<string, number>();
    for (let version = 1; version <= VERSIONS; version++) {
      for (let subject = 0; subject < SUBJECTS; subject++) {
        const response = await api<{ id: number }>(`${url}/subjects/thing-${subject}/versions`, 'POST', {
          schema: schemaOf(subject, version),
        });
        expect(response.status).toBe(200);
        ids.set(`thing-${subject}/${version}`, response.body.id);
      }
    }
    expect(new Set(ids.values()).size).toBe(SUBJECTS * VERSIONS);

    // Soft-delete version 2 of subjects 0-4; soft- then permanently delete version 3 of 5-9;
    // soft-delete subject 10 whole; soft- then permanently delete subject 11 whole.
    for (let subject = 0; subject < 5; subject++)
      expect((await api(`${url}/subjects/thing-${subject}/versions/2`, 'DELETE')).status).toBe(200);
    for (let subject = 5; subject < 10; subject++) {
      expect((await api(`${url}/subjects/thing-${subject}/versions/3`, 'DELETE')).status).toBe(200);
      expect((await api(`${url}/subjects/thing-${subject}/versions/3?permanent=true`, 'DELETE')).status).toBe(200);
    }
    expect((await api(`${url}/subjects/thing-10`, 'DELETE')).body).toEqual([1, 2, 3, 4, 5]);
    expect((await api(`${url}/subjects/thing-11`, 'DELETE')).status).toBe(200);
    expect((await api(`${url}/subjects/thing-11?permanent=true`, 'DELETE')).body).toEqual([1, 2, 3, 4, 5]);

    const snapshot = async (base: string) => ({
      subjects: (await api<string[]>(`${base}/subjects?subjectPrefix=thing-`)).body,
      all: (await api<string[]>(`${base}/subjects?subjectPrefix=thing-&deleted=true`)).body,
      versions: await Promise.all(
        Array.from({ length: SUBJECTS }, async (_, subject) => ({
          visible: (await api<unknown>(`${base}/subjects/thing-${subject}/versions`)).body,
          withDeleted: (await api<unknown>(`${base}/subjects/thing-${subject}/versions?deleted=true`)).body,
        })),
      ),
    });
    const before = await snapshot(url);

    processes[0]!.child.kill('SIGKILL');
    await processes[0]!.exited;
    const restarted = await start(env);
    expect(restarted).toBe(url);
    const after = await snapshot(restarted);
    expect(after).toEqual(before);

    expect(after.subjects).not.toContain('thing-10');
    expect(after.all).toContain('thing-10');
    expect(after.all).not.toContain('thing-11');
    for (let subject = 0; subject < SUBJECTS; subject++) {
      const { visible, withDeleted } = after.versions[subject]!;
      if (subject < 5)
        expect([visible, withDeleted]).toEqual([
          [1, 3, 4, 5],
          [1, 2, 3, 4, 5],
        ]);
      else if (subject < 10)
        expect([visible, withDeleted]).toEqual([
          [1, 2, 4, 5],
          [1, 2, 4, 5],
        ]);
      else if (subject === 10) expect(withDeleted).toEqual([1, 2, 3, 4, 5]);
      else if (subject === 11) expect(visible).toMatchObject({ error_code: 40401 });
      else expect(visible).toEqual([1, 2, 3, 4, 5]);
    }
    // Every surviving version keeps its id and schema.
    for (const [key, id] of ids) {
      const [subject, version] = key.split('/') as [string, string];
      const number = Number(subject.split('-')[1]);
      const gone = (number >= 5 && number < 10 && version === '3') || number === 11;
      const response = await api<{ id: number; schema: string }>(`${restarted}/subjects/${subject}/versions/${version}?deleted=true`);
      if (gone) {
        expect(response.status).toBe(404);
      } else {
        expect(response.body.id).toBe(id);
        expect(JSON.parse(response.body.schema)).toEqual(JSON.parse(schemaOf(number, Number(version))));
      }
    }
    // A soft-deleted version is hidden from plain reads.
    expect((await api(`${restarted}/subjects/thing-0/versions/2`)).status).toBe(404);
    // New registrations continue the id sequence, never reusing one.
    const fresh = await api<{ id: number }>(`${restarted}/subjects/thing-99/versions`, 'POST', { schema: schemaOf(99, 1) });
    expect(fresh.body.id).toBeGreaterThan(Math.max(...ids.values()));
  });
});
