import { endpointTarget } from '../config/config.js';
import { ConfigError } from '../errors.js';
import { type Command, EXIT_OK, EXIT_USAGE, loadCheckedConfig, printConfigError, requireString } from './command.js';

export const validateCommand: Command = {
  summary: 'check an analysis config and print the effective config with defaults',
  usage: `clarify-images validate --config FILE

  --config FILE   analysis_config.json to check
  -h, --help      show this help

Prints the effective config (every default filled in) on success, exit 0; otherwise lists each
problem by its JSON path, exit 2.`,
  options: { config: { type: 'string' } },
  async run(values, io) {
    const file = requireString(values, 'config');
    try {
      const config = await loadCheckedConfig(file, io);
      io.out(JSON.stringify(config, null, 2));
      try {
        endpointTarget(config);
      } catch (error) {
        if (error instanceof ConfigError) io.err(`note: ${error.message} — needed by 'run'.`);
      }
      return EXIT_OK;
    } catch (error) {
      if (error instanceof ConfigError) {
        printConfigError(error, io, file);
        return EXIT_USAGE;
      }
      throw error;
    }
  },
};
