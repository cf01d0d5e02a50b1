export { InMemoryDedupStore, type DedupStore } from './dedup-store.js';
