import { defineScript } from '../redis/scripts.js';

/**
 * Lua scripts for every campaign state change, so the CLI, the API and any
 * number of workers agree on one state even when they race.
 * KEYS[1] is always the campaign hash.
 */

/**
 * ARGV: version, held reason ('' = not held), now ISO.
 * → 'sending' | 'resume' (planning was interrupted; plan again, idempotently) | 'held' | 'stale' | <other status>
 */
export const BEGIN = defineScript(
  'campaign_begin',
  `
local s = redis.call('HGET', KEYS[1], 'status')
if not s then return 'missing' end
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] then return 'stale' end
if s == 'sending' then return 'resume' end
if s ~= 'scheduled' then return s end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'status', 'held', 'reason', ARGV[2], 'updated_at', ARGV[3])
  return 'held'
end
redis.call('HSET', KEYS[1], 'status', 'sending', 'started_at', ARGV[3], 'updated_at', ARGV[3])
return 'sending'
`,
);

/** A sending campaign stops where it is (the pre-election period began). ARGV: reason, now ISO. → 1 if held. */
export const HOLD_SENDING = defineScript(
  'campaign_hold_sending',
  `
if redis.call('HGET', KEYS[1], 'status') ~= 'sending' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'held', 'reason', ARGV[1], 'updated_at', ARGV[2])
return 1
`,
);

/** ARGV: now ISO. → 'ok' | <status that cannot be cancelled> */
export const CANCEL = defineScript(
  'campaign_cancel',
  `
local s = redis.call('HGET', KEYS[1], 'status')
if not s then return 'missing' end
if s == 'draft' or s == 'awaiting_approval' or s == 'scheduled' or s == 'held' or s == 'sending' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'updated_at', ARGV[1], 'previous_status', s)
  redis.call('HINCRBY', KEYS[1], 'version', 1)
  return 'ok'
end
return s
`,
);

/**
 * Puts a failed or partially failed campaign's failed deliveries back to pending:
 * each leaves the done set and the failures hash, its channel's failed count
 * drops, and the campaign is sending again (FINISH decides its status anew).
 * Each gets a fresh budget of tries.
 * KEYS: campaign, counts, failures, tries, then one done set per channel.
 * ARGV: now ISO, then the channel names in the order of their done sets.
 * A channel whose planning failed ('-plan') is unplanned again, for the plan job to run once more.
 * → {'sending', deliveries put back, retry number, channels (',' joined), 1 if planning must run again}
 *   or {refusal, 0, 0, '', 0}
 */
export const RETRY_FAILED = defineScript(
  'campaign_retry_failed',
  `
local s = redis.call('HGET', KEYS[1], 'status')
if not s then return {'missing', 0, 0, '', 0} end
if s ~= 'failed' and s ~= 'partially_failed' then return {'refused:' .. s, 0, 0, '', 0} end
local doneKey = {}
for j = 2, #ARGV do doneKey[ARGV[j]] = KEYS[j + 3] end
local n, touched, seen, replan = 0, {}, {}, 0
local all = redis.call('HGETALL', KEYS[3])
for i = 1, #all, 2 do
  local ch, id = string.match(all[i], '^([^:]+):(.*)$')
  if ch and doneKey[ch] and redis.call('SREM', doneKey[ch], id) == 1 then
    redis.call('HINCRBY', KEYS[2], ch .. ':failed', -1)
    redis.call('HDEL', KEYS[4], all[i])
    if id == '-plan' then
      -- planning failed for this channel: it is planned again (the caller re-runs the plan job)
      redis.call('HINCRBY', KEYS[2], ch .. ':total', -1)
      redis.call('HDEL', KEYS[2], ch .. ':planned')
      replan = 1
    end
    n = n + 1
    if not seen[ch] then seen[ch] = true; touched[#touched + 1] = ch end
  end
end
if n == 0 then return {'refused:nothing', 0, 0, '', 0} end
redis.call('DEL', KEYS[3])
for _, ch in ipairs(touched) do redis.call('HDEL', KEYS[2], ch .. ':error') end
redis.call('HSET', KEYS[1], 'status', 'sending', 'updated_at', ARGV[1])
local r = redis.call('HINCRBY', KEYS[1], 'retries', 1)
return {'sending', n, r, table.concat(touched, ','), replan}
`,
);

/** ARGV: new send_at ISO, now ISO. → {status, version} or {error status} */
export const RESCHEDULE = defineScript(
  'campaign_reschedule',
  `
local s = redis.call('HGET', KEYS[1], 'status')
if not s then return {'missing', 0} end
if s == 'scheduled' or s == 'held' or s == 'draft' or s == 'awaiting_approval' then
  local next = s
  if s == 'held' then next = 'scheduled' end
  redis.call('HSET', KEYS[1], 'send_at', ARGV[1], 'status', next, 'reason', '', 'updated_at', ARGV[2])
  local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
  return {next, v}
end
return {'refused:' .. s, 0}
`,
);

/** ARGV: approver, now ISO. → {status, version} */
export const APPROVE = defineScript(
  'campaign_approve',
  `
local s = redis.call('HGET', KEYS[1], 'status')
if not s then return {'missing', 0} end
if s == 'awaiting_approval' then
  redis.call('HSET', KEYS[1], 'status', 'scheduled', 'approved_by', ARGV[1], 'reason', '', 'updated_at', ARGV[2])
  local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
  return {'scheduled', v}
end
return {'refused:' .. s, 0}
`,
);

/**
 * An approver releases an essential campaign held by the pre-election period.
 * The release names the windows it was given for, so it never carries over to
 * another window. ARGV: approver, windows (',' joined), now ISO. → {status, version}
 */
export const RELEASE = defineScript(
  'campaign_release',
  `
local s = redis.call('HGET', KEYS[1], 'status')
if not s then return {'missing', 0} end
if s ~= 'held' then return {'refused:' .. s, 0} end
if redis.call('HGET', KEYS[1], 'essential') ~= '1' then return {'refused:not-essential', 0} end
redis.call('HSET', KEYS[1], 'status', 'scheduled', 'released_by', ARGV[1], 'released_for', ARGV[2], 'released_at', ARGV[3], 'reason', '', 'updated_at', ARGV[3])
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
return {'scheduled', v}
`,
);

/**
 * Registers one batch of a channel's plan exactly once and adds its size to the total;
 * the first registration's ids are the batch for good.
 * KEYS: campaign, counts, batches. ARGV: channel, batch, ids (',' joined).
 */
export const ADD_BATCH = defineScript(
  'campaign_add_batch',
  `
if redis.call('HSETNX', KEYS[3], ARGV[1] .. ':' .. ARGV[2], ARGV[3]) == 1 then
  local n = 1
  for _ in string.gmatch(ARGV[3], ',') do n = n + 1 end
  redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':total', n)
end
return 1
`,
);

/**
 * Decides the campaign's final status once every channel is planned and every
 * delivery has an outcome. Shared by MARK and PLANNED. Expects KEYS[1] campaign, KEYS[2] counts.
 */
const FINISH = `
local function finish(now)
  if redis.call('HGET', KEYS[1], 'status') ~= 'sending' then return '' end
  local list = redis.call('HGET', KEYS[1], 'channels_list') or ''
  local sent, failed, skipped, total = 0, 0, 0, 0
  for ch in string.gmatch(list, '[^,]+') do
    if redis.call('HGET', KEYS[2], ch .. ':planned') ~= '1' then return '' end
    local t = tonumber(redis.call('HGET', KEYS[2], ch .. ':total') or '0')
    local a = tonumber(redis.call('HGET', KEYS[2], ch .. ':sent') or '0')
    local f = tonumber(redis.call('HGET', KEYS[2], ch .. ':failed') or '0')
    local k = tonumber(redis.call('HGET', KEYS[2], ch .. ':skipped') or '0')
    if a + f + k < t then return '' end
    sent = sent + a; failed = failed + f; skipped = skipped + k; total = total + t
  end
  local status = 'sent'
  if failed > 0 and sent == 0 then status = 'failed' elseif failed > 0 then status = 'partially_failed' end
  redis.call('HSET', KEYS[1], 'status', status, 'finished_at', now, 'updated_at', now)
  return status
end
`;

/**
 * May this recipient be sent to now? Read just before each send: 'stop' (the
 * campaign is no longer sending), 'done' (it already has an outcome: another
 * run of the same batch got there first), 'skip' (unsubscribed, forgotten or
 * suppressed) or 'send'.
 */
const MAY_SEND_FN = `
local function may_send(campaign, subscriber, suppressed, hash, optout, legacy, done, id)
  if redis.call('HGET', campaign, 'status') ~= 'sending' then return 'stop' end
  if redis.call('SISMEMBER', done, id) == 1 then return 'done' end
  if redis.call('HGET', subscriber, 'status') ~= 'subscribed' or redis.call('SISMEMBER', suppressed, hash) == 1 then return 'skip' end
  if legacy and legacy ~= '' and redis.call('SISMEMBER', suppressed, legacy) == 1 then return 'skip' end
  if optout and optout ~= '' and redis.call('HEXISTS', subscriber, optout) == 1 then return 'skip' end
  return 'send'
end
`;

/**
 * KEYS: campaign, subscriber, suppression set, the channel's done set. ARGV: the subscriber's
 * suppression hash, the field recording an unsubscribe from the channel's list (unsub:<list>,
 * or ''), the unkeyed hash older versions wrote, and the recipient's id.
 */
export const MAY_SEND = defineScript(
  'campaign_may_send',
  `${MAY_SEND_FN}
return may_send(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], KEYS[4], ARGV[4])
`,
);

/**
 * Records one delivery's outcome exactly once and, in the same round trip, asks
 * MAY_SEND for the batch's next recipient.
 * KEYS: campaign, counts, done set, failures hash, sent-ids hash; then, optionally,
 * the next recipient's subscriber hash and the suppression set.
 * ARGV: channel, recipient, outcome (sent|failed|skipped), reason, now, network id ('' = none);
 * then, with the optional keys, the next recipient's suppression hash, list opt-out field, unkeyed hash and id.
 * Returns {final status if this was the last outcome else '', next verdict or ''}.
 */
export const MARK = defineScript(
  'campaign_mark',
  `${FINISH}${MAY_SEND_FN}
if redis.call('SADD', KEYS[3], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':' .. ARGV[3], 1)
  if ARGV[6] ~= '' then redis.call('HSET', KEYS[5], ARGV[1] .. ':' .. ARGV[2], ARGV[6]) end
  if ARGV[3] == 'failed' then
    redis.call('HSET', KEYS[4], ARGV[1] .. ':' .. ARGV[2], ARGV[4])
    redis.call('HSET', KEYS[2], ARGV[1] .. ':error', ARGV[4])
  end
end
local finished = finish(ARGV[5])
local verdict = ''
if #KEYS >= 7 then verdict = may_send(KEYS[1], KEYS[6], KEYS[7], ARGV[7], ARGV[8], ARGV[9], KEYS[3], ARGV[10]) end
return {finished, verdict}
`,
);

/** Marks a channel's planning complete. KEYS: campaign, counts. ARGV: channel, now. */
export const PLANNED = defineScript(
  'campaign_planned',
  `${FINISH}
redis.call('HSET', KEYS[2], ARGV[1] .. ':planned', '1')
return finish(ARGV[2])
`,
);

/**
 * A delivery job failed for good (attempts used up, stalled too often, an
 * unexpected error): every recipient of its batch without an outcome is
 * marked failed with the reason, so the campaign can finish.
 * KEYS: campaign, counts, done set, failures, batches. ARGV: channel, batch field, reason, now.
 * Returns {final status or '', recipients marked}.
 */
export const FAIL_REST = defineScript(
  'campaign_fail_rest',
  `${FINISH}
local ids = redis.call('HGET', KEYS[5], ARGV[2]) or ''
local n = 0
for id in string.gmatch(ids, '[^,]+') do
  if redis.call('SADD', KEYS[3], id) == 1 then
    redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':failed', 1)
    redis.call('HSET', KEYS[4], ARGV[1] .. ':' .. id, ARGV[3])
    n = n + 1
  end
end
if n > 0 then redis.call('HSET', KEYS[2], ARGV[1] .. ':error', ARGV[3]) end
return {finish(ARGV[4]), n}
`,
);

/**
 * Planning failed for good: each channel not yet planned is closed with one
 * failed delivery ('-plan') carrying the reason; what was planned goes on.
 * `campaign retry` plans such a channel again.
 * KEYS: campaign, counts, failures, then one done set per channel. ARGV: reason, now, channel names.
 * Returns the final status or ''.
 */
export const FAIL_PLAN = defineScript(
  'campaign_fail_plan',
  `${FINISH}
if redis.call('HGET', KEYS[1], 'status') ~= 'sending' then return '' end
for j = 3, #ARGV do
  local ch = ARGV[j]
  if redis.call('HGET', KEYS[2], ch .. ':planned') ~= '1' then
    if redis.call('SADD', KEYS[j + 1], '-plan') == 1 then
      redis.call('HINCRBY', KEYS[2], ch .. ':total', 1)
      redis.call('HINCRBY', KEYS[2], ch .. ':failed', 1)
      redis.call('HSET', KEYS[3], ch .. ':-plan', ARGV[1])
    end
    redis.call('HSET', KEYS[2], ch .. ':planned', '1', ch .. ':error', ARGV[1])
  end
end
return finish(ARGV[2])
`,
);

/**
 * Registers the batches lo..hi-1 of one page of a channel's plan, as ADD_BATCH does for one:
 * the first registration of a batch is the batch for good and adds its size to the channel's
 * total. ids_of(b) gives batch b's ids (',' joined) and their number, or nil when the page
 * kept nobody in it. → recipients kept, then the batches that need a delivery job: those with
 * recipients, and those registered earlier (an interrupted plan) that now have none, so their
 * job is added all the same and the campaign can finish.
 */
const REGISTER_FN = `
local function register(batches, counts, ch, lo, hi, ids_of)
  local kept, jobs = 0, {}
  for b = lo, hi - 1 do
    local field = ch .. ':' .. string.format('%.0f', b)
    local ids, n = ids_of(b)
    if ids then
      if redis.call('HSETNX', batches, field, ids) == 1 then redis.call('HINCRBY', counts, ch .. ':total', n) end
      kept = kept + n
      jobs[#jobs + 1] = b
    elseif redis.call('HEXISTS', batches, field) == 1 then
      jobs[#jobs + 1] = b
    end
  end
  return kept, jobs
end
`;

/**
 * One page of a channel's plan, read, filtered and registered in one round trip, so nothing
 * per recipient crosses the wire. Batch n is the list members with sequence number in
 * (n·size, (n+1)·size]; a page is the PAGE batches from the batch of the first member after
 * AFTER (so gaps left by removed members are jumped in the same call).
 * Kept: status 'subscribed', not opted out of the list, a phone number when one is needed,
 * and the area and topics asked for (trimmed, case-insensitive, as audienceFilter in
 * audience.ts). Only ASCII values are matched here; JavaScript's Unicode case mapping decides
 * for any other, so a page holding one comes back unregistered, for the caller to decide and
 * register with REGISTER_PAGE.
 * When the audience's exclusion sets are complete (KEYS[4] exists, see audienceKeys().exclusionsIndexed)
 * and only status and list opt-out decide (no phone, area or topic), the page is read with
 * ZRANGEBYSCORE and the unsubscribed and opted-out are found in those two sets (SMISMEMBER),
 * without reading each member's hash: about a third of redis-server's time per member
 * (bench/plan-memory.ts). Otherwise every member's fields are read with SORT ... GET.
 * KEYS: list zset, batches, counts, the exclusions-indexed marker, the unsubscribed set, the list's
 * opt-out set.
 * ARGV: AFTER, PAGE, size, subscriber key prefix, list opt-out field ('' = none), '1' if a phone
 * is needed, '1' to register, channel, number of areas, the areas, number of topics, the topics
 * (areas and topics trimmed and lower-cased by audienceFilterSets).
 * → {''} when no member is left after AFTER; else {next AFTER, 'registered', first batch,
 * recipients kept, batches needing a job...} or {next AFTER, 'members', first batch, then
 * (id, batch, 1 | 2 if undecided, area, topics) per member kept or undecided, area and topics
 * given only when undecided}.
 */
export const PLAN_PAGE = defineScript(
  'campaign_plan_page',
  `${REGISTER_FN}
local size = tonumber(ARGV[3])
local first = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #first == 0 then return {''} end
local lo = math.floor((tonumber(first[2]) - 1) / size)
local hi = lo + tonumber(ARGV[2])
local function fmt(x) return string.format('%.0f', x) end
-- One SORT reads the page's ids and their fields (GET sub:*->field, in the list's order): far cheaper than a
-- call per member. Its ranks are the page's sequence numbers, counted per batch with ZCOUNT.
local pattern = ARGV[4] .. '*->'
local gets = {'GET', '#', 'GET', pattern .. 'status'}
local function want(name) gets[#gets + 1] = 'GET'; gets[#gets + 1] = pattern .. name; return #gets / 2 end
local phone_at = ARGV[6] == '1' and want('phone')
local optout_at = ARGV[5] ~= '' and want(ARGV[5])
local na = tonumber(ARGV[9])
local nt = tonumber(ARGV[10 + na])
local areas, topics
if na > 0 then areas = {}; for i = 1, na do areas[ARGV[9 + i]] = true end end
if nt > 0 then topics = {}; for i = 1, nt do topics[ARGV[10 + na + i]] = true end end
local area_at = areas and want('area')
local topics_at = topics and want('topics')
local stride = #gets / 2
local function trim(s) return (string.match(s, '^%s*(.-)%s*$')) end
local function ascii(s) return not string.find(s, '[\\128-\\255]') end
-- 1 keep, 0 leave out, 2 undecided (a value outside ASCII)
local function area_ok(a)
  if not areas then return 1 end
  if not ascii(a) then return 2 end
  if areas[string.lower(trim(a))] then return 1 end
  return 0
end
local function topics_ok(t)
  if not topics then return 1 end
  if not ascii(t) then return 2 end
  for one in string.gmatch(t, '[^;]+') do
    one = trim(one)
    if one ~= '' and topics[string.lower(one)] then return 1 end
  end
  return 0
end
local register_now = ARGV[7] == '1'
-- the members in order, needed unless the page is registered here for sure (no area or topic to decide)
local keep_order = not register_now or areas or topics
local by_batch, order, undecided = {}, {}, {}
local function add(id, b, keep)
  if register_now then
    local ids = by_batch[b]
    if not ids then ids = {}; by_batch[b] = ids end
    ids[#ids + 1] = id
  end
  if keep_order then
    order[#order + 1] = id
    order[#order + 1] = b
    order[#order + 1] = keep
  end
end
if not phone_at and not areas and not topics and redis.call('EXISTS', KEYS[4]) == 1 then
  local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. fmt(lo * size), fmt(hi * size), 'WITHSCORES')
  local ids = {}
  for i = 1, #rows, 2 do ids[#ids + 1] = rows[i] end
  -- In slices, as unpack is bounded by Lua's stack.
  local function members_of(set)
    if #ids == 0 or redis.call('SCARD', set) == 0 then return nil end
    local found = {}
    for from = 1, #ids, 1000 do
      local part = redis.call('SMISMEMBER', set, unpack(ids, from, math.min(#ids, from + 999)))
      for j = 1, #part do found[from + j - 1] = part[j] end
    end
    return found
  end
  local unsub = members_of(KEYS[5])
  local opted = ARGV[5] ~= '' and members_of(KEYS[6])
  for j = 1, #ids do
    if not (unsub and unsub[j] == 1) and not (opted and opted[j] == 1) then
      add(ids[j], math.floor((tonumber(rows[2 * j]) - 1) / size), 1)
    end
  end
else
  local in_batch, total = {}, 0
  for b = lo, hi - 1 do
    local c = redis.call('ZCOUNT', KEYS[1], '(' .. fmt(b * size), fmt((b + 1) * size))
    in_batch[b] = c
    total = total + c
  end
  local start = redis.call('ZCOUNT', KEYS[1], '-inf', fmt(lo * size))
  local raw = redis.call('SORT', KEYS[1], 'BY', 'nosort', 'LIMIT', start, total, unpack(gets))
  local at = 0
  for b = lo, hi - 1 do
    for _ = 1, in_batch[b] do
      local id, status = raw[at + 1], raw[at + 2]
      local phone, optout = phone_at and raw[at + phone_at], optout_at and raw[at + optout_at]
      if status == 'subscribed' and (not phone_at or (phone and phone ~= '')) and (not optout or optout == '') then
        local keep = 1
        if areas or topics then
          local a, t = (area_at and raw[at + area_at]) or '', (topics_at and raw[at + topics_at]) or ''
          local ka = area_ok(a)
          local kt = 0
          if ka ~= 0 then kt = topics_ok(t) end
          if ka == 0 or kt == 0 then keep = 0 elseif ka == 2 or kt == 2 then keep = 2; undecided[id] = {a, t} end
        end
        if keep ~= 0 then add(id, b, keep) end
      end
      at = at + stride
    end
  end
end
local next_after = fmt(hi * size)
if register_now and next(undecided) == nil then
  local kept, jobs = register(KEYS[2], KEYS[3], ARGV[8], lo, hi, function(b)
    local ids = by_batch[b]
    if ids then return table.concat(ids, ','), #ids end
    return nil
  end)
  local out = {next_after, 'registered', lo, kept}
  for _, b in ipairs(jobs) do out[#out + 1] = b end
  return out
end
local out = {next_after, 'members', lo}
for i = 1, #order, 3 do
  local id = order[i]
  local u = undecided[id]
  out[#out + 1] = id; out[#out + 1] = order[i + 1]; out[#out + 1] = order[i + 2]
  out[#out + 1] = (u and u[1]) or ''; out[#out + 1] = (u and u[2]) or ''
end
return out
`,
);

/**
 * Registers a page of a channel's plan decided by the caller (see PLAN_PAGE).
 * KEYS: batches, counts. ARGV: channel, first batch, batch after the last, then (batch, ids ',' joined) pairs.
 * → {recipients kept, batches needing a delivery job...}
 */
export const REGISTER_PAGE = defineScript(
  'campaign_register_page',
  `${REGISTER_FN}
local given = {}
for i = 4, #ARGV, 2 do given[tonumber(ARGV[i])] = ARGV[i + 1] end
local kept, jobs = register(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), function(b)
  local ids = given[b]
  if not ids then return nil end
  local n = 1
  for _ in string.gmatch(ids, ',') do n = n + 1 end
  return ids, n
end)
local out = {kept}
for _, b in ipairs(jobs) do out[#out + 1] = b end
return out
`,
);
