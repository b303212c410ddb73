import { writeFile } from 'node:fs/promises';
import { compareRuns } from '../compare/compare.js';
import { renderJunit, renderMarkdown } from '../compare/render.js';
import { configDifferences, readRun } from '../compare/runs.js';
import { DEFAULT_THRESHOLDS, loadThresholds } from '../compare/thresholds.js';
import { ConfigError, errorMessage } from '../errors.js';
import { type Command, EXIT_FAILURES, EXIT_OK, EXIT_USAGE, optionalString, printConfigError, requireString } from './command.js';

export const compareCommand: Command = {
  summary: 'compare two runs and fail on a regression (for CI)',
  usage: `clarify-images compare --baseline URI --candidate URI [--thresholds FILE] [--markdown FILE] [--junit FILE]

  --baseline URI     output of the reference run (s3:// prefix or local folder)
  --candidate URI    output of the run to check
  --thresholds FILE  JSON overriding any default threshold:
                       ${JSON.stringify(DEFAULT_THRESHOLDS)}
  --markdown FILE    write a summary fit for a pull-request comment (worst images first)
  --junit FILE       write JUnit XML, one test case per image
  -h, --help         show this help

Exit 0 when every image is within tolerance, 1 when a regression is found, 2 on a usage or input
error (including runs made with different configs: the differing fields are named).`,
  options: { baseline: { type: 'string' }, candidate: { type: 'string' }, thresholds: { type: 'string' }, markdown: { type: 'string' }, junit: { type: 'string' } },
  async run(values, io) {
    const baselineUri = requireString(values, 'baseline');
    const candidateUri = requireString(values, 'candidate');
    try {
      const thresholds = await loadThresholds(optionalString(values, 'thresholds')).catch((error: unknown) => {
        throw new ConfigError([{ path: '--thresholds', message: errorMessage(error) }]);
      });
      const [baseline, candidate] = await Promise.all([readRun(baselineUri, 'baseline'), readRun(candidateUri, 'candidate')]);
      const differences = configDifferences(baseline.config, candidate.config);
      if (differences.length > 0) {
        io.err('clarify-images compare: the runs were made with different configs, so they cannot be compared:');
        for (const d of differences) io.err(`  ${d.path}: baseline ${JSON.stringify(d.baseline)}, candidate ${JSON.stringify(d.candidate)}`);
        return EXIT_USAGE;
      }
      const comparison = compareRuns(baseline, candidate, thresholds);
      const markdownFile = optionalString(values, 'markdown');
      if (markdownFile) await writeFile(markdownFile, renderMarkdown(comparison, baselineUri, candidateUri, thresholds, markdownFile));
      const junitFile = optionalString(values, 'junit');
      if (junitFile) await writeFile(junitFile, renderJunit(comparison));
      io.out(`${comparison.images.length} images compared, ${comparison.regressions} regressed`);
      for (const image of comparison.images.filter((i) => i.problems.length > 0).slice(0, 20)) io.out(`  REGRESSION ${image.key}: ${image.problems.join('; ')}`);
      return comparison.regressions > 0 ? EXIT_FAILURES : EXIT_OK;
    } catch (error) {
      if (error instanceof ConfigError) {
        printConfigError(error, io);
        return EXIT_USAGE;
      }
      throw error;
    }
  },
};
