import { defaultWorkerCount } from '../compute/stages.js';
import { MODEL_NAMES, type ModelName } from '../serve/face-models.js';
import { loadModelThreads } from '../serve/model-threads.js';
import { type AnswerStyle, startModelServer } from '../serve/server.js';
import { type Command, EXIT_OK, optionalString, UsageError, untilSignal } from './command.js';

export const serveModelCommand: Command = {
  summary: 'serve a bundled pretrained model over the SageMaker container contract',
  usage: `clarify-images serve-model --model NAME [--port P] [--host H] [--style clarify|mask_rcnn] [--threads N]

  --model NAME    ${MODEL_NAMES.join(' | ')}
                    face-detector: tiny face detector (answers rows [0, score, x0, y0, x1, y1], class 0 = face)
                    face-expression: face expression classifier on a face crop
                    (scores for neutral, happy, sad, angry, fearful, disgusted, surprised)
  --port P        port (default 8080; 0 picks a free one)
  --host H        address to listen on (default 127.0.0.1)
  --style S       detector answers: clarify (default) or mask_rcnn ({"labels": ["face 97%"], "boxes": [[x1, y1, x2, y2]]})
  --threads N     copies of the model, each on its own thread, answering at once (default: one per core, here ${defaultWorkerCount()})
  -h, --help      show this help

GET /ping, POST /invocations with image/jpeg, image/png or application/x-npy ((H, W, 3) or a batch
(N, H, W, 3)); answers application/json (a batch: a list) or application/jsonlines (a line per
image). The detector also answers image/jpeg or image/png (boxes drawn), chosen by Accept or by the
custom attribute {"response_type": "jpeg" | "png" | "json"}. Weights ship inside the
@vladmandic/face-api npm package; nothing is downloaded. Stops on SIGINT / SIGTERM.`,
  options: { model: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, style: { type: 'string' }, threads: { type: 'string' } },
  async run(values, io) {
    const name = optionalString(values, 'model');
    if (!name || !(MODEL_NAMES as readonly string[]).includes(name)) throw new UsageError(`--model must be one of ${MODEL_NAMES.join(', ')}`);
    const port = Number(optionalString(values, 'port') ?? '8080');
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port must be an integer 0–65535');
    const style = optionalString(values, 'style') ?? 'clarify';
    if (style !== 'clarify' && style !== 'mask_rcnn') throw new UsageError('--style must be clarify or mask_rcnn');
    const threads = Number(optionalString(values, 'threads') ?? String(defaultWorkerCount()));
    if (!Number.isInteger(threads) || threads < 1 || threads > 64) throw new UsageError('--threads must be an integer 1–64');
    const model = await loadModelThreads(name as ModelName, threads);
    const server = await startModelServer({ model, port, host: optionalString(values, 'host'), style: style as AnswerStyle });
    io.out(`serving ${model.name} (${model.kind}, labels: ${model.labels.join(', ')}) at ${server.url}/invocations on ${threads} thread${threads === 1 ? '' : 's'}`);
    const signal = await untilSignal();
    io.err(`${signal}: stopping after ${server.invocations()} invocations`);
    await server.close();
    await model.close();
    return EXIT_OK;
  },
};
