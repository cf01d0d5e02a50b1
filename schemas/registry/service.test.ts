import { describe, expect, it } from 'vitest';
import { SchemaRegistryError } from '../errors.js';
import { topicOfSubject } from './in-use.js';
import { encodeRecord, type RegistryKey } from './records.js';
import { SchemaRegistryService } from './service.js';
import { RegistryState } from './state.js';

/** The registry over an in-memory log: records are applied in order, as the Kafka log does. */
function registry() {
  const state = new RegistryState();
  const log: { key: RegistryKey; value: Buffer | null }[] = [];
  const service = new SchemaRegistryService(state, (key, value) => {
    log.push({ key, value });
    state.apply(encodeRecord(key), value, String(log.length - 1));
    return Promise.resolve();
  });
  /** A fresh state rebuilt by replaying the log: what a restarted registry sees. */
  const replay = () => {
    const rebuilt = new RegistryState();
    log.forEach(({ key, value }, offset) => rebuilt.apply(encodeRecord(key), value, String(offset)));
    return new SchemaRegistryService(rebuilt, () => Promise.reject(new Error('read-only')));
  };
  return { service, state, log, replay };
}

const user = (fields: unknown[] = []) =>
  JSON.stringify({ type: 'record', name: 'User', fields: [{ name: 'id', type: 'string' }, ...fields] });
const withEmail = user([{ name: 'email', type: 'string', default: '' }]);
const withRequiredAge = user([{ name: 'age', type: 'int' }]);

async function expectCode(action: () => unknown, code: number): Promise<void> {
  try {
    await action();
  } catch (error) {
    expect(error).toBeInstanceOf(SchemaRegistryError);
    expect((error as SchemaRegistryError).errorCode).toBe(code);
    return;
  }
  throw new Error(`expected error ${code}`);
}

describe('SchemaRegistryService', () => {
  it('assigns global ids: the same schema under any subject gets the same id, a new one the next', async () => {
    const { service } = registry();
    expect(await service.register('a-value', { schema: user() })).toEqual({ id: 1 });
    expect(await service.register('b-value', { schema: user() })).toEqual({ id: 1 });
    expect(await service.register('a-value', { schema: withEmail })).toEqual({ id: 2 });
    expect(service.versions('a-value', false)).toEqual([1, 2]);
    expect(service.versions('b-value', false)).toEqual([1]);
    expect(service.subjectVersionsOfId('1', false)).toEqual([
      { subject: 'a-value', version: 1 },
      { subject: 'b-value', version: 1 },
    ]);
  });

  it('treats whitespace-only differences as the same schema and re-registration as a no-op', async () => {
    const { service, log } = registry();
    await service.register('s', { schema: user() });
    const records = log.length;
    expect(await service.register('s', { schema: JSON.stringify(JSON.parse(user()), null, 2) })).toEqual({ id: 1 });
    expect(log.length).toBe(records);
  });

  it('yields one id for concurrent registrations of one schema', async () => {
    const { service } = registry();
    const ids = await Promise.all(Array.from({ length: 20 }, () => service.register('s', { schema: user() })));
    expect(new Set(ids.map((result) => result.id))).toEqual(new Set([1]));
    expect(service.versions('s', false)).toEqual([1]);
  });

  it('looks schemas up by subject, version and id', async () => {
    const { service } = registry();
    await service.register('s', { schema: user() });
    await service.register('s', { schema: withEmail });
    expect(service.lookup('s', { schema: withEmail }, false)).toEqual({
      subject: 's',
      id: 2,
      version: 2,
      schema: JSON.stringify(JSON.parse(withEmail)),
    });
    expect(service.version('s', 'latest', false).version).toBe(2);
    expect(service.version('s', '-1', false).version).toBe(2);
    expect(service.version('s', '1', false).id).toBe(1);
    expect(JSON.parse(service.schemaById('2').schema)).toEqual(JSON.parse(withEmail));
    await expectCode(() => service.lookup('s', { schema: withRequiredAge }, false), 40403);
    await expectCode(() => service.lookup('nope', { schema: user() }, false), 40401);
    await expectCode(() => service.version('s', '3', false), 40402);
    await expectCode(() => service.version('s', 'one', false), 42202);
    await expectCode(() => service.version('s', '0', false), 42202);
    await expectCode(() => service.schemaById('99'), 40403);
    await expectCode(() => service.schemaById('x'), 40403);
  });

  it('rejects an incompatible schema with messages naming the field and rule, and writes nothing', async () => {
    const { service, log } = registry();
    await service.register('s', { schema: user() });
    const before = log.length;
    await expect(service.register('s', { schema: withRequiredAge })).rejects.toThrow(
      /incompatible.*READER_FIELD_MISSING_DEFAULT_VALUE at \/fields\/age.*compatibility BACKWARD/,
    );
    expect(log.length).toBe(before);
  });

  it('honours subject-level config over global, and NONE lets anything in', async () => {
    const { service } = registry();
    await service.register('s', { schema: user() });
    expect(await service.setConfig('s', { compatibility: 'none' })).toEqual({ compatibility: 'NONE' });
    expect(service.subjectConfig('s', false)).toEqual({ compatibilityLevel: 'NONE' });
    expect(await service.register('s', { schema: withRequiredAge })).toEqual({ id: 2 });
    await expectCode(() => service.subjectConfig('other', false), 40408);
    expect(service.subjectConfig('other', true)).toEqual({ compatibilityLevel: 'BACKWARD' });
    await expectCode(() => service.setConfig(null, { compatibility: 'SIDEWAYS' }), 42203);
    await service.setConfig(null, { compatibility: 'FULL' });
    expect(service.globalConfig()).toEqual({ compatibilityLevel: 'FULL' });
    expect(await service.deleteConfig(null)).toEqual({ compatibilityLevel: 'FULL' });
    expect(service.globalConfig()).toEqual({ compatibilityLevel: 'BACKWARD' });
    expect(await service.deleteConfig('s')).toEqual({ compatibilityLevel: 'NONE' });
    await expectCode(() => service.deleteConfig('s'), 40401);
  });

  it('checks compatibility without registering, verbosely', async () => {
    const { service } = registry();
    expect(service.testCompatibility('new', undefined, { schema: user() })).toEqual({ is_compatible: true, messages: [] });
    await service.register('s', { schema: user() });
    const result = service.testCompatibility('s', 'latest', { schema: withRequiredAge });
    expect(result.is_compatible).toBe(false);
    expect(result.messages[0]).toMatch(/READER_FIELD_MISSING_DEFAULT_VALUE/);
    expect(service.versions('s', false)).toEqual([1]);
  });

  it('soft-deletes versions and subjects, and deletes permanently only after a soft delete', async () => {
    const { service } = registry();
    await service.register('s', { schema: user() });
    await service.register('s', { schema: withEmail });
    await expectCode(() => service.deleteVersion('s', '1', true), 40407);
    expect(await service.deleteVersion('s', '1', false)).toBe(1);
    expect(service.versions('s', false)).toEqual([2]);
    expect(service.versions('s', true)).toEqual([1, 2]);
    expect(service.version('s', '1', true).version).toBe(1);
    await expectCode(() => service.version('s', '1', false), 40402);
    expect(await service.deleteVersion('s', '1', true)).toBe(1);
    expect(service.versions('s', true)).toEqual([2]);

    await expectCode(() => service.deleteSubject('s', true), 40405);
    expect(await service.deleteSubject('s', false)).toEqual([2]);
    expect(service.subjects(false)).toEqual([]);
    expect(service.subjects(true)).toEqual(['s']);
    await expectCode(() => service.deleteSubject('s', false), 40404);
    expect(await service.deleteSubject('s', true)).toEqual([2]);
    expect(service.subjects(true)).toEqual([]);
    await expectCode(() => service.deleteSubject('s', false), 40401);
    // The id stays bound to its schema: re-registering gets it back under a new version.
    expect(await service.register('s', { schema: withEmail })).toEqual({ id: 2 });
  });

  it('continues version numbers after soft-deleted versions', async () => {
    const { service } = registry();
    await service.register('s', { schema: user() });
    await service.deleteSubject('s', false);
    await service.register('s', { schema: withEmail });
    expect(service.versions('s', true)).toEqual([1, 2]);
  });

  it('rebuilds exactly the same state by replaying its log', async () => {
    const { service, replay } = registry();
    await service.register('a', { schema: user() });
    await service.register('a', { schema: withEmail });
    await service.register('b', { schema: withEmail });
    await service.deleteVersion('a', '1', false);
    await service.setConfig('b', { compatibility: 'FULL' });
    await service.deleteSubject('b', false);
    await service.deleteSubject('b', true);
    const restarted = replay();
    expect(restarted.subjects(true)).toEqual(service.subjects(true));
    expect(restarted.versions('a', true)).toEqual(service.versions('a', true));
    expect(restarted.versions('a', false)).toEqual([2]);
    expect(restarted.subjectConfig('b', false)).toEqual({ compatibilityLevel: 'FULL' });
    expect(restarted.schemaById('2')).toEqual(service.schemaById('2'));
  });

  it('rejects bodies that carry no Avro schema', async () => {
    const { service } = registry();
    await expectCode(() => service.register('s', {}), 42201);
    await expectCode(() => service.register('s', { schema: '{"type": "record"' }), 42201);
    await expectCode(() => service.register('s', { schema: '{"type": "recrod", "name": "X", "fields": []}' }), 42201);
    await expectCode(() => service.register('s', { schema: user(), schemaType: 'PROTOBUF' }), 42201);
    await expectCode(() => service.register('s', { schema: user(), references: [{ name: 'x', subject: 'y', version: 1 }] }), 42201);
    expect(service.subjects(true)).toEqual([]);
  });
});

describe('RegistryState', () => {
  it('skips records it cannot understand and reports them', () => {
    const state = new RegistryState();
    expect(state.apply(Buffer.from('not json'), Buffer.from('{}'), '0')?.reason).toMatch(/undecodable key/);
    expect(
      state.apply(encodeRecord({ keytype: 'SCHEMA', subject: 's', version: 1, magic: 1 }), Buffer.from('{"subject":"s"}'), '1')?.reason,
    ).toMatch(/lacks subject, version, id or schema/);
    expect(
      state.apply(encodeRecord({ keytype: 'CONFIG', subject: null, magic: 0 }), Buffer.from('{"compatibilityLevel":"SIDEWAYS"}'), '2')
        ?.reason,
    ).toMatch(/unknown compatibility level/);
    expect(state.apply(encodeRecord({ keytype: 'NOOP', magic: 0 }), null, '3')).toBeUndefined();
    expect(state.subjectNames(true)).toEqual([]);
  });
});

describe('deleting a subject in use', () => {
  function guarded(users: string[]) {
    const state = new RegistryState();
    let offset = 0;
    const service = new SchemaRegistryService(
      state,
      (key, value) => {
        state.apply(encodeRecord(key), value, String(offset++));
        return Promise.resolve();
      },
      (subject) => Promise.resolve(subject === 'orders-value' ? users : []),
    );
    return service;
  }

  it('is refused with 40901 naming who reads it, unless forced', async () => {
    const service = guarded(['sluice-sink (1 member)']);
    await service.register('orders-value', { schema: user() });
    await expectCode(() => service.deleteSubject('orders-value', false), 40901);
    await expectCode(() => service.deleteVersion('orders-value', '1', false), 40901);
    await expect(service.deleteSubject('orders-value', false)).rejects.toThrow(
      /topic orders is read by the consumer group\(s\) sluice-sink \(1 member\).*\?force=true/,
    );
    expect(await service.deleteSubject('orders-value', false, true)).toEqual([1]);
    await expectCode(() => service.deleteSubject('orders-value', true), 40901);
    expect(await service.deleteSubject('orders-value', true, true)).toEqual([1]);
  });

  it('is allowed when nobody reads it', async () => {
    const service = guarded([]);
    await service.register('orders-value', { schema: user() });
    expect(await service.deleteSubject('orders-value', false)).toEqual([1]);
  });

  it('maps TopicNameStrategy subjects to their topic, and no other subject to any', () => {
    expect(topicOfSubject('raw.chargebacks-value')).toBe('raw.chargebacks');
    expect(topicOfSubject('staging.dlq-key')).toBe('staging.dlq');
    expect(topicOfSubject('dev.sluice.Transaction')).toBeUndefined();
  });
});
