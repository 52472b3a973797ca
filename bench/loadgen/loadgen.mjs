// The load generator of bench/: one Node process, on its own core, measuring
// one server with one clock (performance.now()).
//
//   node loadgen.mjs <plan.json>
//
// The plan (written by python -m bench) names a scenario, a target and what
// to do; the result is one JSON line on stdout. A run whose deliveries are
// wrong (a seq missing, repeated or out of order; an error frame; a failed
// request) prints {"ok": false, "error": ...} and exits 1.
//
// Targets:
//   graphql  Parley: graphql-transport-ws frames over /graphql, sendMessage over HTTP.
//   raw      the baselines (bench/broadcaster.py): WebSocket /r/<room> receives
//            frames of the same shape, POST /r/<room> publishes one and answers its seq.
//
// Every result carries loadgen_cpu (this process's CPU time over the wall
// time of the measured window, from process.cpuUsage: near 1.0 the load
// generator is the bottleneck) and server_cpu (the same for the server
// process, from /proc/<pid>/stat).

import { readFileSync } from "node:fs";
import http from "node:http";
import { performance } from "node:perf_hooks";
import WebSocket from "ws";

const plan = JSON.parse(readFileSync(process.argv[2], "utf8"));
const base = new URL(plan.base);
const wsBase = `ws://${base.host}`;
const now = () => performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// Open-loop sending: wait for a message's due time. A send that starts late is
// measured from when it was due (its lateness counts against the latency, as it
// would for a client); timers may also fire a little early, and then the send
// is measured from when it began.
const onTime = (due) => (due > now() ? sleep(due - now()) : undefined);
const sentAt = (due) => Math.min(due, now());

class Failure extends Error {}

function fail(message) {
  throw new Failure(message);
}

// ------------------------------------------------------------------ measuring

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function latencySummary(latencies) {
  const sorted = Float64Array.from(latencies).sort();
  const round = (x) => (x === null ? null : Math.round(x * 10) / 10);
  return {
    samples: sorted.length,
    p50_ms: round(percentile(sorted, 0.5)),
    p99_ms: round(percentile(sorted, 0.99)),
    max_ms: round(sorted.length ? sorted[sorted.length - 1] : null),
  };
}

function serverTicks() {
  // utime + stime, fields 14 and 15 of /proc/<pid>/stat (after the command name).
  const stat = readFileSync(`/proc/${plan.serverPid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

function serverRssKib() {
  const status = readFileSync(`/proc/${plan.serverPid}/status`, "utf8");
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!match) fail("no VmRSS in /proc/<pid>/status");
  return Number(match[1]);
}

// The CPU both processes used between start() and stop(), as shares of one core.
class Window {
  start() {
    this.wall = now();
    this.cpu = process.cpuUsage();
    this.ticks = serverTicks();
    return this;
  }

  stop() {
    const wallMs = now() - this.wall;
    const cpu = process.cpuUsage(this.cpu);
    const ticks = serverTicks() - this.ticks;
    return {
      seconds: Math.round(wallMs) / 1000,
      loadgen_cpu: Math.round(((cpu.user + cpu.system) / 1000 / wallMs) * 100) / 100,
      server_cpu: Math.round(((ticks / plan.clkTck) * 1000 / wallMs) * 100) / 100,
    };
  }
}

// ----------------------------------------------------------------------- HTTP

// uvicorn closes a keep-alive connection after 5 s without a request. The
// agent drops its idle sockets after 4 s (the timeout only destroys sockets
// in the free pool), so it never sends on one the server is closing. If it
// ever does anyway, the request fails with ECONNRESET on a reused socket
// before the server read it, and is sent once more (Node's documented remedy).
const IDLE_MS = 4000;

function client(maxSockets) {
  const agent = new http.Agent({ keepAlive: true, maxSockets, timeout: IDLE_MS });
  const once = (method, path, payload, headers) =>
    new Promise((resolve, reject) => {
      const request = http.request(
        {
          host: base.hostname,
          port: base.port,
          path,
          method,
          agent,
          headers: {
            ...(payload ? { "content-type": "application/json", "content-length": payload.length } : {}),
            ...headers,
          },
        },
        (response) => {
          const chunks = [];
          response.on("data", (chunk) => chunks.push(chunk));
          response.on("end", () =>
            resolve({ status: response.statusCode, text: Buffer.concat(chunks).toString("utf8") }),
          );
          response.on("error", reject);
        },
      );
      request.on("error", (error) => {
        error.stale = request.reusedSocket && error.code === "ECONNRESET";
        reject(error);
      });
      request.end(payload);
    });
  return async (method, path, body, headers = {}) => {
    const payload = body === undefined ? undefined : Buffer.from(body);
    try {
      return await once(method, path, payload, headers);
    } catch (error) {
      if (!error.stale) throw error;
      return once(method, path, payload, headers);
    }
  };
}

const bearer = (token) => (token ? { authorization: `Bearer ${token}` } : {});

async function graphql(post, token, query, variables) {
  const response = await post("POST", "/graphql", JSON.stringify({ query, variables }), bearer(token));
  let body;
  try {
    body = JSON.parse(response.text);
  } catch {
    fail(`HTTP ${response.status}: ${response.text.slice(0, 200)}`);
  }
  if (response.status !== 200 || body.errors) {
    fail(`HTTP ${response.status}: ${JSON.stringify(body.errors ?? body).slice(0, 300)}`);
  }
  return body.data;
}

// --------------------------------------------------------------------- targets

const EVENTS = `subscription ($id: ID!, $after: Int) {
  conversationEvents(conversationId: $id, afterSeq: $after) {
    seq conversationId at
    ... on MessageAdded { message { id seq body author { id username } createdAt } }
  }
}`;
const SEND = "mutation ($i: SendMessageInput!) { sendMessage(input: $i) { seq } }";
const LAST_SEQ = "query ($id: ID!) { conversation(id: $id) { lastSeq } }";
const BODY = plan.body ?? "x".repeat(40);

// A subscriber: calls onSeq(seq, time) for every event, onFail(message) once on
// an error, a completion or a close it did not ask for.
class Subscriber {
  constructor(target, room, token, after, onSeq, onFail) {
    this.closing = false;
    const graphqlTarget = target === "graphql";
    const url = graphqlTarget ? `${wsBase}/graphql` : `${wsBase}/r/${room}`;
    this.ready = new Promise((resolve, reject) => {
      let settled = false;
      const settle = (error) => {
        if (settled) return;
        settled = true;
        if (error) reject(error);
        else resolve(this);
      };
      const failed = (message) => {
        if (!settled) settle(new Failure(message));
        else if (!this.closing) onFail(message);
      };
      const ws = (this.ws = new WebSocket(url, graphqlTarget ? ["graphql-transport-ws"] : [], {
        perMessageDeflate: false,
        // The frames are JSON.parse'd at once, which fails on bad text anyway;
        // ws's own pure-JS UTF-8 check would only add client CPU.
        skipUTF8Validation: true,
        handshakeTimeout: 60_000,
      }));
      ws.on("open", () => {
        if (!graphqlTarget) return settle();
        ws.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } }));
      });
      ws.on("message", (data) => {
        const at = now();
        const frame = JSON.parse(data);
        switch (frame.type) {
          case "next": {
            const events = frame.payload?.data?.conversationEvents;
            if (!events) return failed(`a next frame without an event: ${data.toString().slice(0, 300)}`);
            return onSeq(events.seq, at);
          }
          case "connection_ack":
            ws.send(
              JSON.stringify({
                id: "1",
                type: "subscribe",
                payload: { query: EVENTS, variables: { id: room, after } },
              }),
            );
            return settle();
          case "ping":
            return ws.send(JSON.stringify({ type: "pong" }));
          case "pong":
            return undefined;
          default:
            return failed(`subscription ended: ${data.toString().slice(0, 300)}`);
        }
      });
      ws.on("error", (error) => failed(`socket error: ${error.message}`));
      ws.on("close", (code, reason) => failed(`socket closed: ${code} ${reason}`));
    });
  }

  close() {
    this.closing = true;
    this.ws.close(1000);
  }
}

// What a target does: subscribe, send (answering the new seq), read the last seq.
function makeTarget(kind, maxSockets) {
  const post = client(maxSockets);
  if (kind === "graphql") {
    return {
      post,
      async send(room, token) {
        const data = await graphql(post, token, SEND, { i: { conversationId: room, body: BODY } });
        return data.sendMessage.seq;
      },
      async lastSeq(room, token) {
        return (await graphql(post, token, LAST_SEQ, { id: room })).conversation.lastSeq;
      },
    };
  }
  return {
    post,
    async send(room) {
      const response = await post("POST", `/r/${room}`, JSON.stringify({ body: BODY }));
      if (response.status !== 200) fail(`HTTP ${response.status} from the broadcaster`);
      return JSON.parse(response.text).seq;
    },
    async lastSeq() {
      return null; // no replay: a raw subscriber sees what is published after it connects
    },
  };
}

// Open sockets `limit` at a time (the server's accept backlog is finite).
async function openAll(count, limit, open) {
  const opened = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      opened[index] = await open(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  return opened;
}

// Subscribers of rooms that record every (seq, time) they get; `failures`
// collects what went wrong on any of them.
class Audience {
  constructor(timeoutMs) {
    this.timeoutMs = timeoutMs;
    this.members = [];
    this.failures = [];
    this.done = 0;
    this.settle = null;
  }

  async open(specs, concurrency = 64) {
    // specs: [{room, token, after}]
    this.members = await openAll(specs.length, concurrency, async (index) => {
      const member = { ...specs[index], seqs: [], times: [], need: Infinity };
      member.subscriber = await new Subscriber(
        plan.target,
        member.room,
        member.token,
        member.after,
        (seq, at) => {
          member.seqs.push(seq);
          member.times.push(at);
          if (member.seqs.length === member.need) this.arrived();
        },
        (message) => {
          this.failures.push(message);
          if (this.settle) this.settle();
        },
      ).ready;
      return member;
    });
  }

  arrived() {
    this.done++;
    if (this.settle && this.done === this.members.length) this.settle();
  }

  // Wait until every member holds need(member) events (or one failed, or the time is up).
  async until(need, what) {
    const needOf = typeof need === "function" ? need : () => need;
    this.done = 0;
    for (const member of this.members) {
      member.need = needOf(member);
      if (member.seqs.length >= member.need) this.done++;
    }
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const got = this.members.reduce((sum, m) => sum + Math.min(m.seqs.length, m.need), 0);
        const wanted = this.members.reduce((sum, m) => sum + m.need, 0);
        reject(new Failure(`${what}: timed out after ${this.timeoutMs} ms with ${got} of ${wanted} deliveries`));
      }, this.timeoutMs);
      this.settle = () => {
        clearTimeout(timer);
        resolve();
      };
      if (this.failures.length || this.done === this.members.length) this.settle();
    });
    this.settle = null;
    for (const member of this.members) member.need = Infinity;
    if (this.failures.length) fail(this.failures[0]);
  }

  // A moment more, in which a duplicate or a late error would show.
  async quiet() {
    await sleep(plan.graceMs ?? 250);
    if (this.failures.length) fail(this.failures[0]);
  }

  close() {
    for (const member of this.members) member.subscriber.close();
  }
}

function checkExact(member, expected, what) {
  const got = member.seqs;
  const same = got.length === expected.length && got.every((seq, i) => seq === expected[i]);
  if (!same) {
    fail(
      `${what}: a subscriber of ${member.room} got [${got.slice(0, 12)}${got.length > 12 ? ",…" : ""}] ` +
        `(${got.length}), not [${expected.slice(0, 12)}${expected.length > 12 ? ",…" : ""}] (${expected.length})`,
    );
  }
}

// One probe message per room, received by every member: every subscription is
// running (replayed and live) before anything is measured.
async function probe(target, audience, rooms) {
  const probes = new Map();
  await Promise.all(rooms.map(async (room) => probes.set(room.key, await target.send(room.key, room.sender))));
  await audience.until(1, "the probe");
  for (const member of audience.members) checkExact(member, [probes.get(member.room)], "the probe");
  return probes;
}

// ------------------------------------------------------------------ scenarios

// One room, N subscribers, M messages: 4 in flight (plan.inFlight) or at plan.rate per second.
async function fanout() {
  const target = makeTarget(plan.target, Math.max(plan.inFlight ?? 0, 64));
  const room = plan.room;
  const after = await target.lastSeq(room.key, room.sender);
  const audience = new Audience(plan.timeoutMs);
  await audience.open(plan.subscribers.map((token) => ({ room: room.key, token, after })));
  const probes = await probe(target, audience, [room]);
  const sent = new Map(); // seq -> time the send began
  const window = new Window().start();
  const first = now();
  if (plan.rate) {
    await Promise.all(
      Array.from({ length: plan.messages }, async (_, i) => {
        const due = first + (i * 1000) / plan.rate;
        await onTime(due);
        // From when the message was due: a late send counts against the latency.
        const began = sentAt(due);
        sent.set(await target.send(room.key, room.sender), began);
      }),
    );
  } else {
    let issued = 0;
    await Promise.all(
      Array.from({ length: plan.inFlight }, async () => {
        while (issued < plan.messages) {
          issued++;
          const began = now();
          sent.set(await target.send(room.key, room.sender), began);
        }
      }),
    );
  }
  await audience.until(plan.messages + 1, "fan-out");
  const measured = window.stop();
  await audience.quiet();
  const expected = [probes.get(room.key), ...[...sent.keys()].sort((a, b) => a - b)];
  const latencies = [];
  let last = first;
  for (const member of audience.members) {
    checkExact(member, expected, "fan-out");
    for (let i = 1; i < member.seqs.length; i++) {
      latencies.push(member.times[i] - sent.get(member.seqs[i]));
      if (member.times[i] > last) last = member.times[i];
    }
  }
  audience.close();
  return {
    deliveries: latencies.length,
    deliveries_per_s: Math.round(latencies.length / ((last - first) / 1000)),
    ...latencySummary(latencies),
    ...measured,
  };
}

// Many small rooms, each with its own sender, at plan.rate messages per second in all.
async function rooms() {
  const target = makeTarget(plan.target, 128);
  const afters = new Map();
  await Promise.all(plan.rooms.map(async (room) => afters.set(room.key, await target.lastSeq(room.key, room.sender))));
  const audience = new Audience(plan.timeoutMs);
  await audience.open(
    plan.rooms.flatMap((room) => room.members.map((token) => ({ room: room.key, token, after: afters.get(room.key) }))),
  );
  const probes = await probe(target, audience, plan.rooms);
  const total = Math.round(plan.rate * plan.seconds);
  const sent = new Map(plan.rooms.map((room) => [room.key, new Map()])); // room -> seq -> due
  const window = new Window().start();
  const first = now();
  await Promise.all(
    Array.from({ length: total }, async (_, i) => {
      const room = plan.rooms[i % plan.rooms.length];
      const due = first + (i * 1000) / plan.rate;
      await onTime(due);
      const began = sentAt(due);
      sent.get(room.key).set(await target.send(room.key, room.sender), began);
    }),
  );
  const perRoom = new Map([...sent].map(([key, seqs]) => [key, [probes.get(key), ...[...seqs.keys()].sort((a, b) => a - b)]]));
  // Rooms receive different numbers of messages when total is not a multiple of their count.
  await audience.until((member) => perRoom.get(member.room).length, "rooms");
  const measured = window.stop();
  await audience.quiet();
  const latencies = [];
  let last = first;
  for (const member of audience.members) {
    checkExact(member, perRoom.get(member.room), "rooms");
    const due = sent.get(member.room);
    for (let i = 1; i < member.seqs.length; i++) {
      latencies.push(member.times[i] - due.get(member.seqs[i]));
      if (member.times[i] > last) last = member.times[i];
    }
  }
  audience.close();
  return {
    rate: plan.rate,
    messages: total,
    deliveries: latencies.length,
    deliveries_per_s: Math.round(latencies.length / ((last - first) / 1000)),
    ...latencySummary(latencies),
    ...measured,
  };
}

// Closed-loop HTTP: plan.concurrency requests in flight for plan.seconds, after
// plan.warmupSeconds unmeasured; every answer is checked (plan.check).
async function httpLoad() {
  const post = client(plan.concurrency);
  const checks = {
    trivial: (body) => body?.data?.__typename === "Query",
    history: (body) => body?.data?.messages?.edges?.length === plan.expectEdges,
    send: (body) => Number.isInteger(body?.data?.sendMessage?.seq),
  };
  const check = checks[plan.check];
  const seqs = [];
  const run = async (seconds, record) => {
    const latencies = [];
    const end = now() + seconds * 1000;
    let turn = 0;
    await Promise.all(
      Array.from({ length: plan.concurrency }, async () => {
        while (now() < end) {
          const request = plan.requests[turn++ % plan.requests.length];
          const began = now();
          const response = await post("POST", request.path, request.body, bearer(request.token));
          const took = now() - began;
          let body;
          try {
            body = JSON.parse(response.text);
          } catch {
            body = undefined;
          }
          if (response.status !== 200 || body?.errors || !check(body)) {
            fail(`${plan.check}: HTTP ${response.status}: ${response.text.slice(0, 300)}`);
          }
          if (plan.check === "send") seqs.push(body.data.sendMessage.seq);
          if (record) latencies.push(took);
        }
      }),
    );
    return latencies;
  };
  await run(plan.warmupSeconds, false);
  const window = new Window().start();
  const first = now();
  const latencies = await run(plan.seconds, true);
  const span = now() - first;
  const measured = window.stop();
  if (plan.check === "send" && new Set(seqs).size !== seqs.length) fail("send: two messages got one seq");
  return {
    requests: latencies.length,
    requests_per_s: Math.round(latencies.length / (span / 1000)),
    ...latencySummary(latencies),
    ...measured,
  };
}

// Server memory per open, subscribed socket: (RSS with N sockets - RSS before) / N.
async function idle() {
  const target = makeTarget(plan.target, 16);
  const room = plan.room;
  const specsFor = async (tokens) => {
    const after = await target.lastSeq(room.key, room.sender);
    return tokens.map((token) => ({ room: room.key, token, after }));
  };
  // A few sockets first, so that what the first socket costs once (code paths
  // run for the first time, caches) is not charged to every socket.
  const warm = new Audience(plan.timeoutMs);
  await warm.open(await specsFor(plan.subscribers.slice(0, plan.warmup)));
  await probe(target, warm, [room]);
  warm.close();
  await sleep(plan.settleMs);
  const before = serverRssKib();
  const audience = new Audience(plan.timeoutMs);
  const opening = now();
  await audience.open(await specsFor(plan.subscribers));
  await probe(target, audience, [room]);
  const openSeconds = (now() - opening) / 1000;
  await sleep(plan.settleMs);
  const withSockets = serverRssKib();
  audience.close();
  return {
    sockets: plan.subscribers.length,
    rss_before_kib: before,
    rss_with_kib: withSockets,
    kib_per_socket: Math.round(((withSockets - before) / plan.subscribers.length) * 100) / 100,
    open_seconds: Math.round(openSeconds * 10) / 10,
  };
}

// Mixed load for plan.seconds: senders at plan.rate messages/s over the rooms, and
// plan.churners clients that each subscribe to a room, stay a while, leave, and
// again. Server RSS before, at most during, and after everyone left (and a settle).
async function soak() {
  const target = makeTarget(plan.target, 64);
  const replay = plan.target === "graphql";
  const lastSeq = new Map();
  await Promise.all(plan.rooms.map(async (room) => lastSeq.set(room.key, await target.lastSeq(room.key, room.sender))));
  await sleep(plan.settleMs);
  const before = serverRssKib();
  let maxRss = before;
  const sampler = setInterval(() => {
    maxRss = Math.max(maxRss, serverRssKib());
  }, 250);
  const window = new Window().start();
  const start = now();
  const end = start + plan.seconds * 1000;
  const failures = [];
  let sentCount = 0;
  let subscriptions = 0;
  let deliveries = 0;

  const senders = (async () => {
    const pending = [];
    for (let i = 0; now() < end; i++) {
      const wait = start + (i * 1000) / plan.rate - now();
      if (wait > 0) await sleep(wait);
      const room = plan.rooms[Math.floor(Math.random() * plan.rooms.length)];
      pending.push(
        target.send(room.key, room.sender).then(
          (seq) => {
            sentCount++;
            if (replay && seq > lastSeq.get(room.key)) lastSeq.set(room.key, seq);
          },
          (error) => failures.push(`send: ${error.message}`),
        ),
      );
    }
    await Promise.all(pending);
  })();

  const churner = async (index) => {
    for (let round = 0; now() < end; round++) {
      const room = plan.rooms[(index + round * 7) % plan.rooms.length];
      const token = room.members[(index + round) % room.members.length];
      const after = lastSeq.get(room.key);
      const seqs = [];
      let lost = null;
      let subscriber;
      try {
        subscriber = await new Subscriber(plan.target, room.key, token, after, (seq) => seqs.push(seq), (m) => (lost ??= m)).ready;
      } catch (error) {
        failures.push(`subscribe: ${error.message}`);
        continue;
      }
      subscriptions++;
      const [low, high] = plan.stayMs;
      await sleep(low + Math.random() * (high - low));
      subscriber.close();
      if (lost) {
        failures.push(`soak: ${lost}`);
        continue;
      }
      deliveries += seqs.length;
      // Every seq once and in order: with a replay (after), from after + 1;
      // without one (raw), from the first one received.
      const from = after === null ? seqs[0] : after + 1;
      if (!seqs.every((seq, i) => seq === from + i)) {
        failures.push(`soak: a subscriber of ${room.key} after ${after} got [${seqs.slice(0, 12)}…]`);
      }
    }
  };
  await Promise.all([senders, ...Array.from({ length: plan.churners }, (_, i) => churner(i))]);
  const measured = window.stop();
  await sleep(plan.settleMs);
  clearInterval(sampler);
  const after = serverRssKib();
  const figures = {
    seconds: plan.seconds,
    messages: sentCount,
    subscriptions,
    deliveries,
    rss_before_kib: before,
    rss_max_kib: maxRss,
    rss_after_kib: after,
    after_over_before: Math.round((after / before) * 1000) / 1000,
    loadgen_cpu: measured.loadgen_cpu,
    server_cpu: measured.server_cpu,
    failed: failures.length,
  };
  // The soak goes on through failures, so that its memory figures are there
  // even when some subscriptions went wrong; the run fails all the same.
  if (failures.length) {
    const error = new Failure(`failures: ${failures.length}; the first: ${failures[0]}`);
    error.figures = figures;
    throw error;
  }
  return figures;
}

const scenarios = { fanout, rooms, http: httpLoad, idle, soak };

try {
  const result = await scenarios[plan.scenario]();
  process.stdout.write(JSON.stringify({ ok: true, ...result }) + "\n");
  process.exit(0);
} catch (error) {
  const message = error instanceof Failure ? error.message : (error.stack ?? String(error));
  process.stdout.write(JSON.stringify({ ok: false, error: message, figures: error.figures }) + "\n");
  process.exit(1);
}
