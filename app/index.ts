export {
  startStack,
  readStackState,
  isAlive,
  StackAlreadyRunningError,
  type RunningStack,
  type StackState,
  type StackEndpoints,
} from './stack.js';
