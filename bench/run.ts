/**
 * `npm run bench`: runs every benchmark once and writes BENCHMARKS.md. Results are ratios measured
 * in the same run, never absolute limits; spreads are over seeds or repeated runs, as stated.
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SIZE_SAMPLING } from '../src/explain/kernel-shap.js';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { runAccuracy } from './accuracy.js';
import { runMemory } from './memory.js';
import { runBatching, runClientCost, runSaturation } from './throughput.js';

const exp = (v: number): string => v.toExponential(2);

async function main(): Promise<void> {
  const started = Date.now();
  const lines: string[] = [];
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  lines.push('# Benchmarks', '');
  lines.push(`Written by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: ${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}.`, '');
  lines.push('Every figure is measured in one run of `npm run bench`; results are ratios or errors, not wall-clock limits.', '');

  process.stderr.write('accuracy per call …\n');
  const accuracy = runAccuracy(20, DEFAULT_SIZE_SAMPLING);
  lines.push('## Accuracy per model call (Kernel SHAP vs plain Kernel SHAP)', '');
  lines.push(
    `Relative squared error ‖φ̂ − φ‖² / ‖φ‖² against exact Shapley values (all 2^${accuracy.features} coalitions enumerated), ` +
      `M = ${accuracy.features} segments, mean ± standard deviation over ${accuracy.seeds} seeds. ` +
      'Game: the test endpoint\'s region model (a softmax of a non-linear function of the mean colours of a 3×3 grid of regions) on a 4×4 block image, segments masked to gray, first class. ' +
      `"Ours" (the default, sizes sampled ${accuracy.sizeSampling === 'uniform' ? 'uniformly: leverage scores' : 'by kernel mass'}) enumerates the coalition sizes the budget justifies and samples the rest in complement pairs without repeats, with importance weights; ` +
      `the "${accuracy.alternativeSampling}" column is the same estimator with sizes sampled ${accuracy.alternativeSampling === 'kernel' ? 'by kernel mass (the shap library\'s KernelExplainer)' : 'uniformly'}; ` +
      '"plain" draws sizes from the Shapley kernel with no pairing, enumeration or de-duplication (bench/plain-kernel-shap.ts).',
    '',
  );
  lines.push(`| calls | ours | ours, ${accuracy.alternativeSampling} sizes | plain | plain ÷ ours |`, '| ---: | ---: | ---: | ---: | ---: |');
  for (const row of accuracy.rows) {
    lines.push(
      `| ${row.calls} | ${exp(row.ours.mean)} ± ${exp(row.ours.sd)} | ${exp(row.alternative.mean)} ± ${exp(row.alternative.sd)} | ${exp(row.plain.mean)} ± ${exp(row.plain.sd)} | ${(row.plain.mean / row.ours.mean).toFixed(1)}× |`,
    );
  }
  lines.push('');
  const ratio = accuracy.plainAt2050 / accuracy.oursAt2050;
  lines.push(`- At 2050 calls: ours ${exp(accuracy.oursAt2050)}, plain ${exp(accuracy.plainAt2050)}: **${ratio.toFixed(1)}× lower error** (goal ≥ 2.5×: ${ratio >= 2.5 ? 'met' : 'missed'}).`);
  lines.push(
    `- Calls ours needs to match plain Kernel SHAP at 2050 calls: **${accuracy.callsToMatchPlain2050 ?? '> 2050'}** (smallest on the grid ${accuracy.grid.map((g) => g.calls).join(', ')}; goal ≤ 600: ${accuracy.callsToMatchPlain2050 !== undefined && accuracy.callsToMatchPlain2050 <= 600 ? 'met' : 'missed'}).`,
  );
  lines.push('');
  const work = await mkdtemp(path.join(os.tmpdir(), 'clarify-bench-'));
  const goal = (met: boolean): string => (met ? 'met' : '**missed**');

  process.stderr.write('saturation …\n');
  const saturation = await runSaturation(work);
  lines.push('## Endpoint saturation', '');
  lines.push(
    'A local endpoint (bench/latency-server.ts, its own process) answers after L ms and serves at most C requests at once, so its capacity is C/L calls per second. ' +
      'The job (max_concurrency = C, NPY payloads, 12 images of 64×64, about 4 s of calls at capacity) runs end to end: listing, decoding, SLIC, every masked image, heatmaps and outputs. Achieved = endpoint calls ÷ wall time of the whole job.',
    '',
  );
  lines.push('| L | C | capacity (calls/s) | achieved (calls/s) | achieved ÷ capacity | goal ≥ 0.95 |', '| ---: | ---: | ---: | ---: | ---: | --- |');
  for (const r of saturation) lines.push(`| ${r.latencyMs} ms | ${r.cap} | ${r.capacity.toFixed(0)} | ${r.achieved.toFixed(0)} | ${r.ratio.toFixed(3)} | ${goal(r.ratio >= 0.95)} |`);
  lines.push('');

  process.stderr.write('client cost …\n');
  const cost = await runClientCost(work);
  lines.push('## Client cost per perturbed sample', '');
  lines.push('Against an instant endpoint (latency 0, no cap): perturbed samples (masked images sent and answered) per CPU-second of the job process (user + system, all its threads: masking, encoding, HTTP, parsing, solving), and per wall-clock second. 2 images per row, 50 segments requested.', '');
  lines.push('| image | payload | samples per CPU-second | samples per second | goal |', '| --- | --- | ---: | ---: | --- |');
  for (const r of cost) {
    const isGoal = r.size === '224×224' && r.contentType === 'image/jpeg';
    lines.push(`| ${r.size} | ${r.contentType} | ${r.samplesPerCpuSecond.toFixed(0)} | ${r.samplesPerSecond.toFixed(0)} | ${isGoal ? `≥ 1000: ${goal(r.samplesPerCpuSecond >= 1000)}` : ''} |`);
  }
  lines.push('');

  process.stderr.write('batching …\n');
  const batching = await runBatching(work);
  lines.push('## NPY batching', '');
  lines.push('An endpoint that costs 20 ms per request plus 0.5 ms per image and serves 4 requests at once; the job sends (N, H, W, 3) NPY batches (96×96 images).', '');
  lines.push('| batch size | calls (images) per second | requests per second | calls ÷ batch-1 calls |', '| ---: | ---: | ---: | ---: |');
  for (const r of batching) lines.push(`| ${r.batch} | ${r.callsPerSecond.toFixed(0)} | ${r.requestsPerSecond.toFixed(1)} | ${(r.callsPerSecond / batching[0]!.callsPerSecond).toFixed(1)}× |`);
  lines.push('');

  process.stderr.write('memory …\n');
  const memory = await runMemory();
  lines.push('## Memory with dataset size', '');
  lines.push('Peak RSS of a whole job in its own process, listing small images (24×24 PNG) from the test S3 server (s3rver), explaining each with num_samples 6 and writing every output locally.', '');
  lines.push('| images | peak RSS | job time | goal < 400 MB |', '| ---: | ---: | ---: | --- |');
  for (const r of memory) lines.push(`| ${r.images} | ${r.maxRssMb.toFixed(0)} MB | ${r.seconds.toFixed(1)} s | ${goal(r.maxRssMb < 400)} |`);
  const growth = memory.at(-1)!.maxRssMb / memory[0]!.maxRssMb;
  lines.push('', `Largest ÷ smallest peak RSS: ${growth.toFixed(2)}× for ${(memory.at(-1)!.images / memory[0]!.images).toFixed(0)}× the images.`, '');
  await rm(work, { recursive: true, force: true });
  lines.push(`Benchmark run time: ${((Date.now() - started) / 1000).toFixed(1)} s.`, '');
  const file = fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url));
  await writeFile(file, `${lines.join('\n')}\n`);
  process.stderr.write(`wrote ${file}\n`);
}

await main();
