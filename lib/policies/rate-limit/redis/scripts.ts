import { createHash } from 'node:crypto';

/**
 * The Lua scripts of the Redis rate-limit store: one per algorithm, each deciding one request
 * atomically in one round trip, on one key (so it runs unchanged on Redis Cluster).
 *
 * They replay `gcra()` and `fixedWindow()` (gcra.ts, fixed-window.ts) step by step, in whole
 * microseconds: Lua 5.1 numbers are doubles, exact for the integers below 2^53 that both
 * algorithms stay within, so Redis and the memory store reach the same decisions. Time is
 * Redis's `TIME`, read inside the script, so instances whose clocks disagree still share one
 * timeline. Redis 7 replicates scripts by their effects, which is what lets a script call
 * `TIME` before writing; `redis.replicate_commands()` asks older servers (5, 6) for the same.
 *
 * Numbers written back go through `string.format('%.0f')`: Redis renders a Lua number
 * argument with too few significant digits for a 16-digit microsecond timestamp.
 *
 * Both reply `{allowed (1|0), limit, remaining, resetMs, retryAfterMs}`, integers, so the
 * client builds a decision without knowing the rule.
 */

/** A script's source and the SHA1 that `EVALSHA` names it by. */
export interface RedisScript {
  readonly lua: string;
  readonly sha: string;
}

function script(lua: string): RedisScript {
  return Object.freeze({ lua, sha: createHash('sha1').update(lua).digest('hex') });
}

/**
 * GCRA. KEYS[1]: the key. ARGV: emission interval (µs, `gcraIntervalUs`), quota
 * (`limit + burst`), cost. The key holds the TAT in µs and expires when the quota would be
 * full again; a denied request writes nothing.
 */
export const GCRA_SCRIPT: RedisScript =
  script(`if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local quota = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local capacity = quota * interval
local tat = tonumber(redis.call('GET', KEYS[1]))
local base = now
if tat ~= nil and tat > now then base = tat end
local nxt = base + cost * interval
if nxt - now <= capacity then
  local reset = math.ceil((nxt - now) / 1000)
  redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', string.format('%.0f', reset))
  return {1, quota, math.floor((capacity - (nxt - now)) / interval), reset, 0}
end
return {0, quota, math.floor((capacity - (base - now)) / interval), math.ceil((base - now) / 1000), math.ceil((nxt - now - capacity) / 1000)}
`);

/**
 * Fixed window. KEYS[1]: the key. ARGV: window size (µs, `fixedWindowSizeUs`), limit, cost.
 * Windows are aligned to multiples of the size since the Unix epoch on Redis's clock. The key
 * holds `windowStart + count - 1` in µs (the memory store's encoding) and expires when the
 * window ends; a denied request writes nothing.
 */
export const FIXED_WINDOW_SCRIPT: RedisScript =
  script(`if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local size = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local offset = math.fmod(now, size)
local start = now - offset
local state = tonumber(redis.call('GET', KEYS[1]))
local used = 0
if state ~= nil and state >= start and state - start < size then used = state - start + 1 end
local reset = math.ceil((size - offset) / 1000)
if used + cost <= limit then
  redis.call('SET', KEYS[1], string.format('%.0f', start + used + cost - 1), 'PX', string.format('%.0f', reset))
  return {1, limit, limit - used - cost, reset, 0}
end
local remaining = 0
if used < limit then remaining = limit - used end
return {0, limit, remaining, reset, reset}
`);
