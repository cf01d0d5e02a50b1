import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PortInUseError } from './errors.js';
import { choosePort, freePort, isPortFree } from './ports.js';

const servers: net.Server[] = [];

async function occupy(): Promise<number> {
  const server = net.createServer();
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});

describe('ports', () => {
  it('tells a taken port from a free one', async () => {
    const taken = await occupy();
    expect(await isPortFree(taken)).toBe(false);
    expect(await isPortFree(await freePort())).toBe(true);
  });

  it('refuses a configured port that is taken, naming the setting', async () => {
    const taken = await occupy();
    await expect(choosePort(taken, undefined, 'SLUICE_KAFKA_PORT')).rejects.toBeInstanceOf(PortInUseError);
    await expect(choosePort(taken, undefined, 'SLUICE_KAFKA_PORT')).rejects.toThrow(
      `port ${taken} on 127.0.0.1 is already in use (SLUICE_KAFKA_PORT)`,
    );
  });

  it('keeps the previous port while it is free, and moves on when it is not', async () => {
    const previous = await freePort();
    expect(await choosePort(0, previous, 'X')).toBe(previous);
    const taken = await occupy();
    const chosen = await choosePort(0, taken, 'X');
    expect(chosen).not.toBe(taken);
    expect(await isPortFree(chosen)).toBe(true);
  });

  it('never hands out a port it was told to avoid', async () => {
    const previous = await freePort();
    expect(await choosePort(0, previous, 'X', [previous])).not.toBe(previous);
  });
});
