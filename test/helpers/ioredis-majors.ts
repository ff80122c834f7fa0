/**
 * Both majors of ioredis a user may hand the pack a client of: 5 (the pack's own dependency)
 * and 6 (the devDependency `ioredis6`, what `npm install ioredis` gives today). Tests of code
 * that takes a user's client run once per major: `for (const io of IOREDIS_MAJORS) describe(...)`.
 *
 * Both are typed as ioredis 5's classes: the code under test takes them through its own
 * structural client type, and the tests use only what both majors share.
 */
import * as ioredis5 from 'ioredis';
import * as ioredis6 from 'ioredis6';

/** One major of ioredis: its client classes and its error-reply class. */
export interface IoredisMajor {
  /** `ioredis 5` or `ioredis 6`, for test titles. */
  readonly name: string;
  readonly Redis: typeof ioredis5.Redis;
  readonly Cluster: typeof ioredis5.Cluster;
  readonly ReplyError: typeof ioredis5.ReplyError;
}

export const IOREDIS_MAJORS: readonly IoredisMajor[] = [
  {
    name: 'ioredis 5',
    Redis: ioredis5.Redis,
    Cluster: ioredis5.Cluster,
    ReplyError: ioredis5.ReplyError,
  },
  {
    name: 'ioredis 6',
    Redis: ioredis6.Redis as unknown as typeof ioredis5.Redis,
    Cluster: ioredis6.Cluster as unknown as typeof ioredis5.Cluster,
    ReplyError: ioredis6.ReplyError as typeof ioredis5.ReplyError,
  },
];
