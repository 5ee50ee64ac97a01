-- ARGV[1]: the step, the interval times the call's cost: one call takes all its permits here,
-- atomically (0: no limit). ARGV[5], ARGV[6] (optional): a lease, the most extra permits to
-- take beyond the call's own and the interval of one; 0 extra (or absent) is one call's check.
local step = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local pause = tonumber(ARGV[4])
local extra = tonumber(ARGV[5] or '0')
local interval = tonumber(ARGV[6] or '0')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if pause > 0 then
  if now + pause + tolerance > tat then tat = now + pause + tolerance end
  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
  return {1, 0, 0}
end
local wait = tat - now - tolerance
if wait < 0 then wait = 0 end
if max_wait >= 0 and wait > max_wait then return {0, wait, 0} end
tat = tat + step
-- A lease: the next `extra` permits of the schedule, taken with a call admitted at once, as if
-- the call cost that much more (the schedule stays a strict GCRA of weighted admissions).
local granted = 0
if wait == 0 and extra > 0 and interval > 0 then
  granted = extra
  tat = tat + granted * interval
end
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
return {1, wait, granted}
