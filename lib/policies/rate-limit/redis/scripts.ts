import { createHash } from 'node:crypto';

/**
 * The Lua scripts of the Redis rate-limit store: one per algorithm, each deciding a batch of
 * requests under one rule atomically, in one round trip. The store sends the decisions one
 * tick asked for together (one key each, the same key possibly more than once); on Redis
 * Cluster it sends one key per call, so a script never touches two slots.
 *
 * They replay `gcra()` and `fixedWindow()` (gcra.ts, fixed-window.ts) step by step, in whole
 * microseconds: Lua 5.1 numbers are doubles, exact for the integers below 2^53 that both
 * algorithms stay within, so Redis and the memory store reach the same decisions. Time is
 * Redis's `TIME`, read once per batch inside the script, so instances whose clocks disagree
 * still share one timeline. Redis 7 replicates scripts by their effects, which is what lets a
 * script call `TIME` before writing; `redis.replicate_commands()` asks older servers (5, 6)
 * for the same.
 *
 * Numbers go to `redis.call` as Lua numbers, not strings: Redis writes a number argument with
 * `%.17g`, exact for these integers (a 16-digit microsecond timestamp included); Lua's own
 * `tostring` would keep 14 digits, and `string.format` would only add work to every decision.
 *
 * KEYS: the batch's keys. ARGV: the rule's two numbers, then one cost per key. The reply is
 * flat, five integers per key: `allowed (1|0), remaining, resetMs, retryAfterMs, refillMs`
 * (the limit is the rule's quota, which the client knows). A key whose `GET` fails (WRONGTYPE) gets its
 * error reply in the first place and zeros after it, and the others are decided as usual:
 * an error concerns its key, not the batch.
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
 * GCRA. ARGV: emission interval (µs, `gcraIntervalUs`), quota (`limit + burst`), costs. Each
 * key holds its TAT in µs and expires when the quota would be full again; a denied request
 * writes nothing.
 */
export const GCRA_SCRIPT: RedisScript =
  script(`if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local quota = tonumber(ARGV[2])
local capacity = quota * interval
local out = {}
for i = 1, #KEYS do
  local j = i * 5 - 4
  local stored = redis.pcall('GET', KEYS[i])
  if type(stored) == 'table' then
    out[j], out[j + 1], out[j + 2], out[j + 3], out[j + 4] = stored, 0, 0, 0, 0
  else
    local base = tonumber(stored)
    if base == nil or base < now then base = now end
    local nxt = base + tonumber(ARGV[i + 2]) * interval
    if nxt - now <= capacity then
      local ahead = nxt - now
      local reset = math.ceil(ahead / 1000)
      local remaining = math.floor((capacity - ahead) / interval)
      redis.call('SET', KEYS[i], nxt, 'PX', reset)
      out[j], out[j + 1], out[j + 2], out[j + 3], out[j + 4] = 1, remaining, reset, 0, math.ceil(((remaining + 1) * interval - (capacity - ahead)) / 1000)
    else
      local ahead = base - now
      local remaining = math.floor((capacity - ahead) / interval)
      local refill = 0
      if ahead > 0 then refill = math.ceil(((remaining + 1) * interval - (capacity - ahead)) / 1000) end
      out[j], out[j + 1], out[j + 2], out[j + 3], out[j + 4] = 0, remaining, math.ceil(ahead / 1000), math.ceil((nxt - now - capacity) / 1000), refill
    end
  end
end
return out
`);

/**
 * Fixed window. ARGV: window size (µs, `fixedWindowSizeUs`), limit, costs. Windows are
 * aligned to multiples of the size since the Unix epoch on Redis's clock. Each key holds
 * `windowStart + count - 1` in µs (the memory store's encoding) and expires when the window
 * ends; a denied request writes nothing.
 */
export const FIXED_WINDOW_SCRIPT: RedisScript =
  script(`if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local size = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local offset = math.fmod(now, size)
local start = now - offset
local reset = math.ceil((size - offset) / 1000)
local out = {}
for i = 1, #KEYS do
  local j = i * 5 - 4
  local stored = redis.pcall('GET', KEYS[i])
  if type(stored) == 'table' then
    out[j], out[j + 1], out[j + 2], out[j + 3], out[j + 4] = stored, 0, 0, 0, 0
  else
    local state = tonumber(stored)
    local cost = tonumber(ARGV[i + 2])
    local used = 0
    if state ~= nil and state >= start and state - start < size then used = state - start + 1 end
    if used + cost <= limit then
      redis.call('SET', KEYS[i], start + used + cost - 1, 'PX', reset)
      out[j], out[j + 1], out[j + 2], out[j + 3], out[j + 4] = 1, limit - used - cost, reset, 0, reset
    else
      local remaining = 0
      if used < limit then remaining = limit - used end
      out[j], out[j + 1], out[j + 2], out[j + 3], out[j + 4] = 0, remaining, reset, reset, reset
    end
  end
end
return out
`);
