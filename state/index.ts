export { TaskStores, type StoreSpec, type ChangelogRecord, type TaskStoresOptions } from './task-stores.js';
export { KeyValueStore } from './key-value-store.js';
export { NOT_LOADED } from './cached-store.js';
export { WindowStore } from './window-store.js';
export { changelogTopicName } from './changelog.js';
export { jsonSerde, int64Serde, type Serde } from './serde.js';
export { RocksDatabase } from './rocksdb.js';
export { StateStoreError, ChangelogDecodeError, TaskLockedError } from './errors.js';
export { TaskLock, type LockOwner } from './task-lock.js';
