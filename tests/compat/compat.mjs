// Drives the real BullMQ 6.7.0 against a queue that prematch-queue also reads and writes.
// Usage: node compat.mjs <add|inspect|retry|worker|board|bench> --port P --queue Q [--prefix bull] ...
// Every command prints one JSON document on stdout; the Rust tests in tests/tests/compat_*.rs assert on it.
import { Queue, Worker, Job, FlowProducer } from 'bullmq';

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--')) throw new Error(`unexpected argument ${argv[i]}`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  return out;
}

const [cmd, ...rest] = process.argv.slice(2);
const args = parseArgs(rest);
const connection = { host: '127.0.0.1', port: Number(args.port), maxRetriesPerRequest: null };
const prefix = args.prefix ?? 'bull';
const name = args.queue;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function describe(queue, id) {
  const job = await Job.fromId(queue, id);
  if (!job) return null;
  return {
    id: job.id,
    name: job.name,
    data: job.data,
    opts: job.opts,
    state: await job.getState(),
    attemptsMade: job.attemptsMade,
    attemptsStarted: job.attemptsStarted,
    stalledCounter: job.stalledCounter,
    returnvalue: job.returnvalue,
    failedReason: job.failedReason ?? null,
    stacktrace: job.stacktrace,
    progress: job.progress,
    timestamp: job.timestamp,
    processedOn: job.processedOn ?? null,
    finishedOn: job.finishedOn ?? null,
    delay: job.delay,
    priority: job.priority,
  };
}

// The echo semantics of prematch-queue's echo_worker example, as a BullMQ processor.
async function echo(job) {
  if (job.data && job.data.sleep_ms) await sleep(job.data.sleep_ms);
  if (job.data && job.attemptsMade < (job.data.fail_times ?? 0)) throw new Error('requested failure');
  return { echo: job.data };
}

async function idleFor(queue, ms) {
  let since = Date.now();
  for (;;) {
    const c = await queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized');
    const busy = c.waiting + c.delayed + c.active + c.prioritized;
    if (busy > 0) since = Date.now();
    else if (Date.now() - since >= ms) return;
    await sleep(50);
  }
}

async function main() {
  const queue = new Queue(name, { connection, prefix });
  let out;
  switch (cmd) {
    case 'add': {
      // One job of every option kind our worker must understand.
      const ids = {};
      ids.plain = (await queue.add('plain', { n: 1 })).id;
      ids.delayed = (await queue.add('delayed', { n: 2 }, { delay: 400 })).id;
      ids.prioritized = (await queue.add('prioritized', { n: 3 }, { priority: 3 })).id;
      ids.lifo = (await queue.add('lifo', { n: 4 }, { lifo: true })).id;
      ids.retried = (await queue.add('retried', { n: 5, fail_times: 2 }, { attempts: 3, backoff: { type: 'exponential', delay: 100 } })).id;
      ids.failed = (await queue.add('failed', { n: 6, fail_times: 2 }, { attempts: 2, backoff: 50 })).id;
      ids.custom = (await queue.add('custom', { n: 7 }, { jobId: 'my-custom-id' })).id;
      ids.removed = (await queue.add('removed', { n: 8 }, { removeOnComplete: true })).id;
      ids.kept = (await queue.add('kept', { n: 9 }, { removeOnComplete: { age: 3600, count: 10 }, removeOnFail: 5 })).id;
      ids.jitter = (await queue.add('jitter', { n: 10, fail_times: 1 }, { attempts: 2, backoff: { type: 'fixed', delay: 80, jitter: 0.5 } })).id;
      const bulk = await queue.addBulk([{ name: 'bulk', data: { n: 11 } }, { name: 'bulk', data: { n: 12 }, opts: { priority: 1 } }]);
      ids.bulk1 = bulk[0].id;
      ids.bulk2 = bulk[1].id;
      out = ids;
      break;
    }
    case 'flow': {
      // A parent with two children, and a parent whose child fails it (failParentOnFailure).
      const flows = new FlowProducer({ connection, prefix });
      const ok = await flows.add({ name: 'parent', queueName: name, data: { p: 1 }, children: [
        { name: 'child', queueName: name, data: { c: 1 } },
        { name: 'child', queueName: name, data: { c: 2 } },
      ] });
      const bad = await flows.add({ name: 'parent-bad', queueName: name, data: { p: 2 }, children: [
        { name: 'child-bad', queueName: name, data: { fail_times: 9 }, opts: { failParentOnFailure: true } },
      ] });
      await flows.close();
      out = { parent: ok.job.id, children: ok.children.map((c) => c.job.id), badParent: bad.job.id, badChild: bad.children[0].job.id };
      break;
    }
    case 'children': {
      const job = await Job.fromId(queue, args.id);
      out = { state: await job.getState(), values: await job.getChildrenValues(), failedReason: job.failedReason ?? null };
      break;
    }
    case 'inspect': {
      const ids = args.ids ? args.ids.split(',') : [];
      const jobs = {};
      for (const id of ids) jobs[id] = await describe(queue, id);
      const list = async (t) => (await queue.getJobs([t], 0, -1)).map((j) => j.id);
      out = {
        counts: await queue.getJobCounts(),
        isPaused: await queue.isPaused(),
        completed: await list('completed'),
        failed: await list('failed'),
        waiting: await list('waiting'),
        delayed: await list('delayed'),
        prioritized: await list('prioritized'),
        jobs,
      };
      break;
    }
    case 'retry': {
      const job = await Job.fromId(queue, args.id);
      await job.retry('failed');
      out = { state: await job.getState() };
      break;
    }
    case 'worker': {
      const failedEvents = {};
      const completed = [];
      const worker = new Worker(name, echo, { connection, prefix, concurrency: Number(args.concurrency ?? 1) });
      worker.on('failed', (job) => { failedEvents[job.id] = (failedEvents[job.id] ?? 0) + 1; });
      worker.on('completed', (job) => completed.push(job.id));
      await idleFor(queue, Number(args['idle-ms'] ?? 1500));
      await worker.close();
      out = { completed, failedEvents };
      break;
    }
    case 'board': {
      const express = (await import('express')).default;
      const { createBullBoard } = await import('@bull-board/api');
      const { BullMQAdapter } = await import('@bull-board/api/bullMQAdapter');
      const { ExpressAdapter } = await import('@bull-board/express');
      const serverAdapter = new ExpressAdapter();
      serverAdapter.setBasePath('/admin/queues');
      createBullBoard({ queues: [new BullMQAdapter(queue)], serverAdapter });
      const app = express();
      app.use('/admin/queues', serverAdapter.getRouter());
      const server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
      const base = `http://127.0.0.1:${server.address().port}/admin/queues/api/queues`;
      out = {};
      for (const status of ['completed', 'failed', 'waiting', 'delayed']) {
        const r = await fetch(`${base}?activeQueue=${encodeURIComponent(name)}&status=${status}&page=1`);
        out[status] = await r.json();
      }
      server.close();
      break;
    }
    case 'bench': {
      // --mode add: one addBulk per 5000 no-op jobs; --mode drain: a Worker drains `count` jobs
      // already in the queue (added by the Rust bench, the same for both sides).
      const count = Number(args.count ?? 20000);
      const concurrency = Number(args.concurrency ?? 1);
      if (args.mode === 'add') {
        const jobs = Array.from({ length: count }, (_, i) => ({ name: 'noop', data: { i } }));
        const t0 = performance.now();
        for (let i = 0; i < jobs.length; i += 5000) await queue.addBulk(jobs.slice(i, i + 5000));
        out = { count, add_per_s: count / ((performance.now() - t0) / 1000) };
        break;
      }
      let done = 0;
      let finish;
      const finished = new Promise((r) => { finish = r; });
      const t1 = performance.now();
      const worker = new Worker(name, async () => null, { connection, prefix, concurrency });
      worker.on('completed', () => { if (++done === count) finish(); });
      await finished;
      const drainMs = performance.now() - t1;
      await worker.close();
      out = { count, concurrency, jobs_per_s: count / (drainMs / 1000), drain_ms: drainMs };
      break;
    }
    default:
      throw new Error(`unknown command ${cmd}`);
  }
  await queue.close();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
