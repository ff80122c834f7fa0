export { ResourcePool } from './resource-pool.js';
export type {
  AcquireOptions,
  Borrower,
  PoolFactory,
  ResourcePoolOptions,
  UseOptions,
} from './types.js';
