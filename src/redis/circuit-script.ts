// The Lua script of the shared circuit breaker (`circuit.ts`): every step, atomic on Redis's
// clock.
import { ANNOUNCE } from './control.js';
import { script } from './store.js';

/**
 * The breaker of every process on a key, one script for every step so that each is atomic on
 * Redis's clock. KEYS: the hash `<prefix><key>:circuit` (s: state, g: generation, r: end of
 * the open period in epoch ms or 'inf', n: failures in a row, o: failures that opened it, p:
 * trials passed, c:<i>/f:<i>: calls/failures of ratio bucket i), the sorted set
 * `<prefix><key>:circuit:trials` (a member per trial running, scored by when its lease ends),
 * the control channel and the count of changes (see `ANNOUNCE`). ARGV: op, the caller's
 * generation, failed (0/1), the trial's id, then
 * threshold (0 in ratio mode), ratio failures, window, minimumCalls, halfOpenAfter,
 * halfOpenCalls, leaseTime. Answers { state, generation, end, failures that opened it, granted }.
 * Every change of state takes a new generation and is published; an outcome of an earlier
 * generation changes nothing.
 * @internal
 */
export const CIRCUIT = script(`${ANNOUNCE}
local h, trials, channel = KEYS[1], KEYS[2], KEYS[3]
local op, gen, failed, id = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1', ARGV[4]
local threshold, share, window = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local minimum, after, calls, lease = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local s = redis.call('HGET', h, 's') or 'closed'
local g = tonumber(redis.call('HGET', h, 'g') or '0')
local r = redis.call('HGET', h, 'r') or '0'
local o = tonumber(redis.call('HGET', h, 'o') or '0')
local function enter(state, ends, opened)
  s, g, r, o = state, g + 1, ends, opened
  redis.call('DEL', h, trials)
  redis.call('HSET', h, 's', s, 'g', g, 'r', r, 'o', o, 'n', 0, 'p', 0)
  announce(KEYS[4], channel, '"kind":"circuit"')
end
local function answer(granted) return { s, g, tostring(r), o, granted } end
if op == 'isolate' then
  if s ~= 'open' or r ~= 'inf' then
    local n = tonumber(redis.call('HGET', h, 'n') or '0')
    if s == 'open' then n = o end
    enter('open', 'inf', n)
  end
  return answer(0)
end
if op == 'reset' then
  if s ~= 'closed' then enter('closed', '0', 0) else
    local fields = redis.call('HKEYS', h)
    for _, f in ipairs(fields) do if string.sub(f, 2, 2) == ':' then redis.call('HDEL', h, f) end end
    redis.call('HSET', h, 'n', 0)
  end
  return answer(0)
end
if s == 'open' and r ~= 'inf' and now >= tonumber(r) then enter('half-open', r, 0) end
if op == 'read' then return answer(0) end
if op == 'admit' then
  if s == 'closed' then return answer(1) end
  if s ~= 'half-open' then return answer(0) end
  redis.call('ZREMRANGEBYSCORE', trials, '-inf', now)
  local running = redis.call('ZCARD', trials)
  local passed = tonumber(redis.call('HGET', h, 'p') or '0')
  if running + passed >= calls then return answer(0) end
  redis.call('ZADD', trials, now + lease, id)
  redis.call('PEXPIRE', trials, lease)
  return answer(1)
end
if gen ~= g then return answer(0) end
if op == 'abandon' then
  redis.call('ZREM', trials, id)
  return answer(0)
end
-- op == 'outcome'
if s == 'half-open' then
  redis.call('ZREM', trials, id)
  if failed then enter('open', now + after, 1)
  elseif redis.call('HINCRBY', h, 'p', 1) >= calls then enter('closed', '0', 0) end
  return answer(0)
end
if s ~= 'closed' then return answer(0) end
if threshold > 0 then
  if not failed then redis.call('HSET', h, 'n', 0) return answer(0) end
  local n = redis.call('HINCRBY', h, 'n', 1)
  if n >= threshold then enter('open', now + after, n) end
  return answer(0)
end
local width = window / 10
local bucket = math.floor(now / width)
redis.call('HINCRBY', h, 'c:' .. bucket, 1)
if failed then redis.call('HINCRBY', h, 'f:' .. bucket, 1) end
local total, fails = 0, 0
local fields = redis.call('HGETALL', h)
for i = 1, #fields, 2 do
  local f = fields[i]
  if string.sub(f, 2, 2) == ':' then
    local b = tonumber(string.sub(f, 3))
    if b <= bucket - 10 then redis.call('HDEL', h, f)
    elseif string.sub(f, 1, 1) == 'c' then total = total + tonumber(fields[i + 1])
    else fails = fails + tonumber(fields[i + 1]) end
  end
end
if total >= minimum and fails / total >= share then enter('open', now + after, fails) end
return answer(0)
`);
