export { startStack, readStackState, isAlive, StackAlreadyRunningError, type RunningStack, type StackState, type StackEndpoints } from './stack.js';
export { ensureWritableDir } from './datadir.js';
export { freePort, isPortFree } from './ports.js';
export * from './errors.js';
export * from './kafka/index.js';
