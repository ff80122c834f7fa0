export { ResourcePool } from './resource-pool.js';
export { Listeners } from './listeners.js';
export type {
  AcquireOptions,
  Borrower,
  PoolFactory,
  ResourcePoolOptions,
  UseOptions,
} from './types.js';
