// The Lua scripts of the shared gate (`gate.ts`): its layout in Redis, the heartbeat that makes,
// sizes and sweeps it, and the check of a slot given back after the limit was lowered.
import { script } from './store.js';

/**
 * Lua: `resize(base, limit, ttl)` makes the gate whose keys start with `base` hold `limit` slots
 * in all (`'inf'`: no slots, every job runs unheld), counting those the processes of
 * `<base>:procs` hold (their `<base>:held:<id>` lists, tombstones' included): the free list
 * `<base>:slots` gets what is left. When the processes hold more than `limit`, the surplus is
 * written as a debt (`<base>:debt`), and every slot held then is marked `old:` in its holder's
 * list: whoever gives one back (knowing of the new limit or not) gives back a marked slot, and
 * the process that takes it from the free list checks the debt first ({@link CLAIM}), so a
 * slot that must pay the debt never lets a task start. Keys expire `ttl` ms on (none when
 * `ttl` <= 0). Run by the heartbeat when it makes the gate, and, in the same script, by every
 * write of the shared limit.
 * @internal
 */
export const RESIZE = `
local function resize(base, limit, ttl)
  local held, lists = 0, {}
  for _, member in ipairs(redis.call('ZRANGE', base .. ':procs', 0, -1)) do
    if string.sub(member, 1, 5) == 'dead:' then member = string.sub(member, 6) end
    local list = base .. ':held:' .. member
    local n = redis.call('LLEN', list)
    if n > 0 then lists[#lists + 1] = list end
    held = held + n
  end
  redis.call('DEL', base .. ':slots')
  local free, debt = 0, 0
  if limit ~= 'inf' then
    local n = tonumber(limit)
    if n > held then free = n - held else debt = held - n end
  end
  local i = 0
  while i < free do
    local chunk = {}
    for j = 1, math.min(1000, free - i) do chunk[j] = tostring(i + j) end
    i = i + #chunk
    redis.call('RPUSH', base .. ':slots', unpack(chunk))
  end
  if debt > 0 then
    redis.call('SET', base .. ':debt', debt)
    for _, list in ipairs(lists) do
      local slots = redis.call('LRANGE', list, 0, -1)
      for j, slot in ipairs(slots) do
        if string.sub(slot, 1, 4) ~= 'old:' then slots[j] = 'old:' .. slot end
      end
      redis.call('DEL', list)
      redis.call('RPUSH', list, unpack(slots))
      if ttl > 0 then redis.call('PEXPIRE', list, ttl) end
    end
  else redis.call('DEL', base .. ':debt') end
  redis.call('SET', base .. ':limit', limit)
  if ttl > 0 then
    redis.call('PEXPIRE', base .. ':limit', ttl)
    redis.call('PEXPIRE', base .. ':slots', ttl)
    redis.call('PEXPIRE', base .. ':debt', ttl)
  end
end
`;

/**
 * The bookkeeping of the shared gate, one script run by each process when it joins, every
 * `refreshInterval` while it holds or wants slots (its heartbeat), and when it leaves.
 *
 * The gate is a list of free slots (`<base>:slots`), `<base>:limit` of them in all (see
 * {@link RESIZE}: the shared limit's writes add and remove slots). Taking one is a BLMOVE from that
 * list to the process's own list (`<base>:held:<id>`), made on a connection of its own, so a
 * process waiting for a slot sends nothing until Redis hands it one: Redis serves blocked
 * clients first come, first served, and a release (an LMOVE back) wakes exactly one of them.
 * Two commands per task, whatever the number of processes.
 *
 * What this script does, under Redis's clock (TIME), in `<base>:procs` (a sorted set of the
 * processes by their last heartbeat, in µs):
 * - makes the slots when the gate does not exist (first use, or Redis restarted empty), as many
 *   as the shared limit says (KEYS[6], when the gate follows one), else ARGV[1];
 * - `join`: registers the process, and gives back what its list holds beyond what it counts
 *   (a slot taken by a request whose answer was lost with its connection);
 * - `beat`: refreshes the process; one found missing (others took it for dead, or Redis lost
 *   it) registers again and answers `lost`;
 * - `leave`: the same giving back, unregisters when it holds nothing, and sets the free list's
 *   expiry again (a slot given back to an empty list made the list anew, with none; the other
 *   keys keep theirs);
 * - reclaims the slots of processes silent for `leaseTime` (killed, or stalled past it): their
 *   lists go back to the slots, and a tombstone `dead:<id>` keeps sweeping that list for a while
 *   (a request a dead host had left blocked may still land there);
 * - pays what is left of a debt (a lowered limit) with free slots (given back while no process
 *   waited to take and check them);
 * - keeps every key expiring `ttl` ms after the last refresh, so an idle gate is forgotten.
 *
 * Answers `{ lost, next, held, debt }`: `next` the ms until the oldest live process would count
 * as silent (`-1` when none), so a waiting process looks again then instead of a full period
 * later; `held` the length of the process's list after a join or a loss (else `-1`); `debt` the
 * slots still to drop.
 *
 * KEYS: limit, slots, procs, own held list, debt, [the shared limit]. ARGV: concurrency, id, mode, slots counted here,
 * leaseTime, tombstone life (ms), ttl (ms), refresh the ttl ('1'/'0'), waiting ('1'/'0': answer
 * `next`).
 */
export const BEAT = script(`${RESIZE}
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local id, mode, ttl = ARGV[2], ARGV[3], tonumber(ARGV[7])
local base = string.sub(KEYS[4], 1, #KEYS[4] - #id)
local state = redis.call('MGET', KEYS[1], KEYS[5])
if not state[1] then
  local limit = KEYS[6] and redis.call('GET', KEYS[6]) or ARGV[1]
  resize(string.sub(KEYS[1], 1, #KEYS[1] - 6), limit, ttl)
  state[2] = redis.call('GET', KEYS[5])
end
local held = -1
if mode ~= 'beat' then
  held = redis.call('LLEN', KEYS[4])
  for i = 1, held - tonumber(ARGV[4]) do
    redis.call('LMOVE', KEYS[4], KEYS[2], 'LEFT', 'RIGHT')
  end
  held = math.min(held, tonumber(ARGV[4]))
end
if mode == 'leave' then
  if tonumber(ARGV[4]) == 0 then redis.call('ZREM', KEYS[3], id) end
  -- A slot given back to an empty free list made it anew, with no expiry: set it again.
  redis.call('PEXPIRE', KEYS[2], ttl)
  return {0, -1, -1, 0}
end
local lost = 0
if mode == 'join' then
  redis.call('ZREM', KEYS[3], 'dead:' .. id)
  redis.call('ZADD', KEYS[3], now, id)
elseif redis.call('ZADD', KEYS[3], 'XX', 'CH', now, id) == 0 then
  lost = 1
  redis.call('ZREM', KEYS[3], 'dead:' .. id)
  redis.call('ZADD', KEYS[3], now, id)
end
local silent = now - tonumber(ARGV[5]) * 1000
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', silent, 'WITHSCORES')
for i = 1, #expired, 2 do
  local member, score = expired[i], tonumber(expired[i + 1])
  local tomb = string.sub(member, 1, 5) == 'dead:'
  local list = base .. (tomb and string.sub(member, 6) or member)
  local slots = redis.call('LRANGE', list, 0, -1)
  if #slots > 0 then
    redis.call('RPUSH', KEYS[2], unpack(slots))
    redis.call('DEL', list)
  end
  if not tomb then
    redis.call('ZREM', KEYS[3], member)
    redis.call('ZADD', KEYS[3], -now, 'dead:' .. member)
  elseif -score < now - tonumber(ARGV[6]) * 1000 then
    redis.call('ZREM', KEYS[3], member)
  end
end
local debt = tonumber(state[2] or '0')
if debt > 0 then
  local popped = redis.call('RPOP', KEYS[2], debt)
  if popped then debt = debt - #popped end
  if debt > 0 then redis.call('SET', KEYS[5], debt, 'KEEPTTL') else redis.call('DEL', KEYS[5]) end
end
if ARGV[8] == '1' then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
  redis.call('PEXPIRE', KEYS[4], ttl)
  redis.call('PEXPIRE', KEYS[5], ttl)
end
if lost == 1 then held = redis.call('LLEN', KEYS[4]) end
local next = -1
if ARGV[9] == '1' and #expired == 0 then
  local oldest = redis.call('ZRANGEBYSCORE', KEYS[3], '(0', '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #oldest == 2 then next = math.ceil((tonumber(oldest[2]) - silent) / 1000) end
end
return {lost, next, held, debt}
`);

/**
 * A marked slot (`old:<n>`, held when the limit was lowered; see {@link RESIZE}) just taken from
 * the free list into this process's list: while a debt is left it pays it (dropped, answers 0:
 * ask again), else it is kept, unmarked (answers 1).
 *
 * A release of this process (an LMOVE of its list's first slot) may have given this very slot
 * back before this script ran, in place of the one its task held: that one then stands for it,
 * and is the one dropped or kept (kept, the marked slot is unmarked in the free list if it still
 * lies there). Without it, the slot standing in would stay in this process's list, counted by
 * nobody, until the process leaves the gate. An empty list has nothing standing in (Redis lost
 * it): answers 0.
 *
 * KEYS: own held list, debt, free list. ARGV: the slot.
 */
export const CLAIM = script(`
local debt = tonumber(redis.call('GET', KEYS[2]) or '0')
local slot = ARGV[1]
local here = redis.call('LREM', KEYS[1], 1, slot) == 1
if not here and redis.call('LLEN', KEYS[1]) == 0 then return 0 end
if debt > 0 then
  if not here then redis.call('LPOP', KEYS[1]) end
  if debt > 1 then redis.call('SET', KEYS[2], debt - 1, 'KEEPTTL') else redis.call('DEL', KEYS[2]) end
  return 0
end
if here then redis.call('RPUSH', KEYS[1], string.sub(slot, 5))
elseif redis.call('LREM', KEYS[3], 1, slot) == 1 then redis.call('RPUSH', KEYS[3], string.sub(slot, 5)) end
return 1
`);
