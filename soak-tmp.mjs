import { runSoak } from '/work/main/dist/bench/soak.js';
import { mkdtemp } from 'node:fs/promises';
const w = await mkdtemp('/tmp/soak-');
const t = Date.now();
console.log(JSON.stringify(await runSoak(w, Number(process.argv[2])), null, 1), (Date.now()-t)/1000);
