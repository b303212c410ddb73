/** One estimator-benchmark game in its own process (so games run on every core): prints its result as JSON. */
import { runEstimatorGame } from './estimators.js';

const [name, seeds] = process.argv.slice(2);
if (name === undefined) throw new Error('usage: estimators-child <game> [seeds]');
process.stdout.write(JSON.stringify(await runEstimatorGame(name, Number(seeds ?? 20))));
