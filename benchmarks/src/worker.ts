// One engine's worker process: `node worker.mjs ENGINE` loads that engine alone (TensorFlow.js and
// jax-js register global backends, so each peer lives in its own process), then answers the
// suite's requests (protocol.ts) one at a time until told to exit. Whatever the libraries print
// goes to stderr; stdout carries the replies only.

import { createInterface } from 'node:readline';
import { ENGINES, ENGINE_IDS, type NodeEngineId } from './engines.js';
import type { Engine, PreparedCase } from './engines/engine.js';
import { loadEngine } from './loadEngine.js';
import { readFileSync } from 'node:fs';
import { decodeInputs } from './inputs.js';
import { type HelloResult, type PrepareResult, REPLY_PREFIX, type Reply, type Request, type StepResult } from './protocol.js';
import { hasRelaxedSimd } from './simdPeak.js';

/** The engines whose worker is this script, from the one engine table. */
const NODE_ENGINE_IDS = ENGINE_IDS.filter((id): id is NodeEngineId => ENGINES[id].worker.runtime === 'node');

async function main(): Promise<void> {
  const id = process.argv[2] as NodeEngineId;
  const write = process.stdout.write.bind(process.stdout);
  // Libraries log greetings and warnings with console.*: keep them off the reply channel.
  for (const name of ['log', 'info', 'warn', 'debug'] as const) console[name] = (...args: unknown[]) => console.error(...args);
  const reply = (message: Reply) => write(`${REPLY_PREFIX}${JSON.stringify(message)}\n`);

  if (!NODE_ENGINE_IDS.includes(id)) {
    console.error(`worker: unknown engine '${id}'; expected one of ${NODE_ENGINE_IDS.join(', ')}`);
    process.exit(2);
  }
  let engine: Engine | undefined;
  let prepared: PreparedCase | undefined;

  const handle = async (request: Request): Promise<unknown> => {
    switch (request.op) {
      case 'hello': {
        engine = await loadEngine(id);
        const hello = await engine.hello();
        // Checked here, in the worker's own process: the flags it was started with decide it (an
        // engine that computes elsewhere, in a browser, says itself).
        return (hello.available ? { ...hello, relaxedSimd: hello.relaxedSimd ?? hasRelaxedSimd() } : hello) satisfies HelloResult;
      }
      case 'prepare': {
        if (!engine) throw new Error('prepare before hello');
        prepared?.dispose();
        prepared = undefined;
        const inputs = decodeInputs(readFileSync(request.inputs));
        const next = await engine.prepare(request.spec, inputs);
        const start = performance.now();
        const value = await next.value();
        const valueMs = performance.now() - start;
        prepared = next;
        return { value, valueMs } satisfies PrepareResult;
      }
      case 'step': {
        if (!prepared) throw new Error('step before prepare');
        const start = performance.now();
        const measured = await prepared.step();
        const ms = typeof measured === 'number' ? measured : performance.now() - start;
        return { ms, counters: prepared.counters?.() } satisfies StepResult;
      }
      case 'reference':
        throw new Error('reference values come from the PyTorch worker or the suite itself, not from a Node engine');
      case 'release':
        prepared?.dispose();
        prepared = undefined;
        return null;
      case 'exit':
        prepared?.dispose();
        prepared = undefined;
        await engine?.close?.();
        return null;
    }
  };

  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const request = JSON.parse(line) as Request;
    try {
      reply({ id: request.id, ok: true, result: await handle(request) });
    } catch (e) {
      const error = e as Error;
      console.error(error.stack ?? error.message);
      reply({ id: request.id, ok: false, error: error.message });
    }
    if (request.op === 'exit') break;
  }
  process.exit(0);
}

await main();
