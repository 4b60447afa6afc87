// How much work a step needs right before it to run at its loop speed, after the machine has
// done other work: the measurement behind the suite's lead-in (Plan.leadInMs; benchmarks/NOTES.md,
// "A lead-in before each timed step: 100 ms of steps, not one"). The bench's own scorch CPU engine
// on the bench's inputs; for each lead-in: 15 times a 300 ms pause (the rounds' other engines),
// untimed steps back to back for that long (at least one), then a timed step; prints the medians.
// Usage: node scripts/run.mjs benchmarks/leadIn.ts ssmvr|dsm [threads: 1 | default]

import { scorchEngine } from './src/engines/scorch.js';
import { makeInputs } from './src/inputs.js';
import { summarize } from './src/stats.js';
import { DSM_CASE, SSMVR_CASE } from './src/workloads.js';

const [workload = 'ssmvr', threads = 'default'] = process.argv.slice(2);
if (!['ssmvr', 'dsm'].includes(workload) || !['1', 'default'].includes(threads)) {
  console.error(`usage: node scripts/run.mjs benchmarks/leadIn.ts ssmvr|dsm [1|default] (got '${workload}' '${threads}')`);
  process.exit(2);
}
const spec = workload === 'dsm' ? DSM_CASE : SSMVR_CASE;
const engine = scorchEngine('cpu', threads === '1' ? {} : { threads: 'default' });
await engine.hello();
const prepared = await engine.prepare(spec, makeInputs(spec));
await prepared.value();
for (let i = 0; i < 40; i++) await prepared.step();

const cells: string[] = [];
// A negative lead-in: no pause at all, steps in a loop.
for (const leadMs of [0, 1, 30, 60, 100, 200, -1]) {
  const times: number[] = [];
  for (let r = 0; r < 15; r++) {
    if (leadMs >= 0) await new Promise((resolve) => setTimeout(resolve, 300));
    const start = performance.now();
    for (let n = 0; leadMs > 0 && (n === 0 || performance.now() - start < leadMs); n++) await prepared.step();
    const t0 = performance.now();
    await prepared.step();
    times.push(performance.now() - t0);
  }
  cells.push(`${leadMs < 0 ? 'loop' : `lead-in ${leadMs} ms`}: ${summarize(times).median.toFixed(1)}`);
}
console.log(`${spec.id}, ${threads === '1' ? 'one thread' : 'default threads'} (ms, median of 15): ${cells.join(' | ')}`);
prepared.dispose();
process.exit(0);
